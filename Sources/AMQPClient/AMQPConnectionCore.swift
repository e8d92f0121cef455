import CRabbitMQ
import Foundation

/// The librabbitmq connection and all per-channel state; touched only on the connection's
/// thread (which is what makes the `@unchecked Sendable` sound).
final class AMQPConnectionCore: @unchecked Sendable {
    let configuration: AMQPConfiguration
    let inbox: AMQPCommandInbox
    private(set) var state: amqp_connection_state_t?
    private var socketFD: Int32 = -1
    /// Open channels only: a channel is forgotten once closed by either side.
    var channels: [UInt16: AMQPChannelState] = [:]
    /// The broker's channel limit, from the tune negotiation.
    private(set) var channelMax: UInt16 = 0
    var lastChannelID: UInt16 = 0
    /// Set once the connection is unusable; every later command fails with it.
    private(set) var failure: AMQPError?
    private var closing = false
    /// Consumers with deliveries gathered since the last hand-over.
    private var sinksToHandOver: [AMQPConsumerSink] = []
    /// Frames were handled while an RPC's queued frames were still waiting, so their channels'
    /// buffers were kept: released all at once when the queue is empty (see `releaseBuffers`).
    private var buffersKept = false
    /// Consumer tags, routing keys, content types and header names of the deliveries read here.
    private var recurring = RecurringStrings()
    /// Messages whose content frames are still arriving, by channel. Kept when a channel is
    /// forgotten: its last content may still come, and is then dropped with it (a channel id
    /// used again starts afresh with its first basic.deliver).
    private var contentInProgress: [UInt16: AMQPContentInProgress] = [:]

    init(configuration: AMQPConfiguration, inbox: AMQPCommandInbox) {
        self.configuration = configuration
        self.inbox = inbox
    }

    // MARK: - Opening

    func open() throws {
        guard let state = amqp_new_connection() else {
            throw AMQPError(.transport, "cannot allocate a connection")
        }
        self.state = state
        do {
            try openSocket(state)
            let reply = tsync_amqp_login_plain(
                state, configuration.virtualHost, 2047, Int32(configuration.frameMax),
                Int32(configuration.heartbeatSeconds), configuration.username, configuration.password)
            try checkLogin(reply)
            // Every RPC from now on has a deadline (issue 11, finding 4).
            var deadline = timeval(configuration.rpcTimeout)
            guard amqp_set_rpc_timeout(state, &deadline) == AMQP_STATUS_OK.rawValue else {
                throw AMQPError(.invalidConfiguration, "cannot set the RPC timeout")
            }
            socketFD = amqp_get_sockfd(state)
            channelMax = UInt16(clamping: amqp_get_channel_max(state))
        } catch {
            amqp_destroy_connection(state)
            self.state = nil
            throw error
        }
    }

    private func openSocket(_ state: amqp_connection_state_t) throws {
        let socket: OpaquePointer?
        if configuration.useTLS {
            socket = amqp_ssl_socket_new(state)
            if let socket {
                amqp_ssl_socket_set_verify_peer(socket, configuration.verifyPeer ? 1 : 0)
                amqp_ssl_socket_set_verify_hostname(socket, configuration.verifyPeer ? 1 : 0)
                if let path = configuration.caCertificatePath,
                    amqp_ssl_socket_set_cacert(socket, path) != AMQP_STATUS_OK.rawValue
                {
                    throw AMQPError(.invalidConfiguration, "cannot read the CA certificate file \(path)")
                }
            }
        } else {
            socket = amqp_tcp_socket_new(state)
        }
        guard let socket else { throw AMQPError(.transport, "cannot create a socket") }
        var timeout = timeval(configuration.connectTimeout)
        let status = amqp_socket_open_noblock(socket, configuration.host, Int32(configuration.port), &timeout)
        if status != AMQP_STATUS_OK.rawValue {
            throw AMQPError(
                .transport,
                "cannot connect to \(configuration.host):\(configuration.port): \(String(cString: amqp_error_string2(status)))")
        }
    }

    private func checkLogin(_ reply: amqp_rpc_reply_t) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION where reply.reply.id == tsync_method_connection_close:
            let close = reply.reply.decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            let text = CDecode.string(close.reply_text)
            let code: AMQPError.Code = close.reply_code == 403 || close.reply_code == 530 ? .authentication : .connectionClosed
            throw AMQPError(code, "login as \(configuration.username) to vhost \(configuration.virtualHost) refused: \(text)", replyCode: close.reply_code)
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            // RabbitMQ drops the socket on bad PLAIN credentials instead of sending a close.
            let detail = String(cString: amqp_error_string2(reply.library_error))
            if reply.library_error == AMQP_STATUS_CONNECTION_CLOSED.rawValue
                || reply.library_error == AMQP_STATUS_SOCKET_CLOSED.rawValue
            {
                throw AMQPError(.authentication, "login as \(configuration.username) to vhost \(configuration.virtualHost) refused (\(detail))")
            }
            throw AMQPError(.transport, "login to \(configuration.host):\(configuration.port) failed: \(detail)")
        default:
            throw AMQPError(.transport, "login to \(configuration.host):\(configuration.port) got no reply")
        }
    }

    // MARK: - The loop

    func runLoop() {
        while failure == nil {
            for command in inbox.take() { command(self) }
            guard failure == nil else { break }
            pumpPublishes()
            expireOverduePublishes()
            guard failure == nil else { break }
            // Frames already buffered (or queued by an RPC) are handled before sleeping.
            var handled = 0
            while failure == nil, handled < 256, let state,
                amqp_frames_enqueued(state) != 0 || amqp_data_in_buffer(state) != 0
            {
                if !readFrame() { break }
                handled += 1
            }
            handOverDeliveries()
            if handled > 0 { continue }
            waitForActivity()
            if failure == nil { _ = readFrame() }  // also sends and checks heartbeats
            handOverDeliveries()
        }
        shutDown()
    }

    /// Handles the frames librabbitmq queued during an RPC, and no more.
    func handleQueuedFrames() {
        while failure == nil, let state, amqp_frames_enqueued(state) != 0 {
            if !readFrame() { break }
        }
        handOverDeliveries()
    }

    /// Hands each consumer the deliveries read since the last hand-over, together.
    private func handOverDeliveries() {
        guard !sinksToHandOver.isEmpty else { return }
        for sink in sinksToHandOver { sink.handOver() }
        sinksToHandOver.removeAll(keepingCapacity: true)
    }

    /// Sleeps until the socket is readable, a command arrives, or a short tick passes.
    private func waitForActivity() {
        var fds = [
            pollfd(fd: socketFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: inbox.wakeReadFD, events: Int16(POLLIN), revents: 0),
        ]
        // TLS may hold decrypted bytes the socket no longer shows: keep its tick short.
        let tick: Int32 = configuration.useTLS ? 5 : 100
        _ = poll(&fds, 2, tick)
        if fds[1].revents != 0 { inbox.drainWakeups() }
    }

    /// Reads and handles one frame if one is ready; false when none was.
    @discardableResult
    private func readFrame() -> Bool {
        guard let state else { return false }
        var frame = amqp_frame_t()
        var zero = timeval(tv_sec: 0, tv_usec: 0)
        let status = amqp_simple_wait_frame_noblock(state, &frame, &zero)
        if status == AMQP_STATUS_TIMEOUT.rawValue { return false }
        guard status == AMQP_STATUS_OK.rawValue else {
            fail(AMQPError(.transport, "connection to \(configuration.host):\(configuration.port) lost: \(String(cString: amqp_error_string2(status)))"))
            return false
        }
        return handle(frame, state: state)
    }

    /// Sends a synchronous method and waits for its reply, handling every other frame as it is
    /// read meanwhile, as the loop would. librabbitmq's own RPC queues them instead, and a
    /// queued frame keeps its channel's pool from being recycled: a worker starting 200
    /// sessions one RPC after another, while the sessions already consuming got their first
    /// windows, held those windows in 200 pools. The reply is returned as librabbitmq's RPCs
    /// return theirs (for `check`); its decoded method stays valid until the channel's next
    /// frame.
    func call(
        channel id: UInt16, _ methodID: amqp_method_number_t, _ method: UnsafeMutableRawPointer, replyID: amqp_method_number_t
    ) -> amqp_rpc_reply_t {
        func libraryError(_ status: Int32) -> amqp_rpc_reply_t {
            amqp_rpc_reply_t(reply_type: AMQP_RESPONSE_LIBRARY_EXCEPTION, reply: amqp_method_t(id: 0, decoded: nil), library_error: status)
        }
        guard failure == nil, let state else { return libraryError(AMQP_STATUS_CONNECTION_CLOSED.rawValue) }
        let sent = amqp_send_method(state, id, methodID, method)
        guard sent == AMQP_STATUS_OK.rawValue else { return libraryError(sent) }
        let deadline = ContinuousClock.now + configuration.rpcTimeout
        while failure == nil {
            var timeout = timeval(max(deadline - ContinuousClock.now, .zero))
            var frame = amqp_frame_t()
            let status = amqp_simple_wait_frame_noblock(state, &frame, &timeout)
            if status == AMQP_STATUS_TIMEOUT.rawValue {
                if ContinuousClock.now >= deadline { return libraryError(status) }
                continue
            }
            guard status == AMQP_STATUS_OK.rawValue else { return libraryError(status) }
            if frame.frame_type == UInt8(AMQP_FRAME_METHOD), frame.channel == id || frame.channel == 0 {
                let reply = frame.payload.method
                if reply.id == replyID, frame.channel == id {
                    return amqp_rpc_reply_t(reply_type: AMQP_RESPONSE_NORMAL, reply: reply, library_error: 0)
                }
                if reply.id == tsync_method_channel_close || reply.id == tsync_method_connection_close {
                    return amqp_rpc_reply_t(reply_type: AMQP_RESPONSE_SERVER_EXCEPTION, reply: reply, library_error: 0)
                }
            }
            _ = handle(frame, state: state)
        }
        return libraryError(AMQP_STATUS_CONNECTION_CLOSED.rawValue)
    }

    /// Handles one frame read; false when it failed the connection.
    private func handle(_ frame: amqp_frame_t, state: amqp_connection_state_t) -> Bool {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            handleMethod(frame.payload.method, channel: frame.channel)
        case AMQP_FRAME_HEADER:
            let header = frame.payload.properties
            guard contentInProgress[frame.channel] != nil, let decoded = header.decoded else {
                // Content still in flight on a channel we closed is dropped with the channel.
                guard channels[frame.channel] == nil else {
                    fail(AMQPError(.transport, "a content header on channel \(frame.channel) that no delivery announced"))
                    return false
                }
                break
            }
            let properties = CDecode.properties(decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee, strings: &recurring)
            if let message = contentInProgress[frame.channel]!.header(properties, bodySize: header.body_size) {
                contentArrived(message, channel: frame.channel)
            }
        case AMQP_FRAME_BODY:
            guard contentInProgress[frame.channel]?.properties != nil else {
                guard channels[frame.channel] == nil else {
                    fail(AMQPError(.transport, "a content body on channel \(frame.channel) that no header announced"))
                    return false
                }
                break
            }
            if let message = contentInProgress[frame.channel]!.bodyFragment(frame.payload.body_fragment) {
                contentArrived(message, channel: frame.channel)
            }
        default:
            break  // heartbeats: librabbitmq has already noted them
        }
        releaseBuffers(after: frame.channel, state: state)
        return true
    }

    /// Gives back the memory librabbitmq decoded a frame into: its channel's pool.
    ///
    /// Not `amqp_maybe_release_buffers`: it visits every channel and, for each, every frame an
    /// RPC queued (a channel's pool is kept while one of its frames waits). A worker holding
    /// 200 sessions has 400 channels, and thousands of deliveries arrive while it waits for one
    /// `basic.cancel-ok`: draining them cost that product per frame, stalled the connection's
    /// thread for tens of seconds and the broker closed it for missed heartbeats. Here a frame
    /// releases its own channel's pool when nothing is queued (one lookup), and the frames
    /// handled while the queue drains release theirs together once it is empty.
    private func releaseBuffers(after channel: amqp_channel_t, state: amqp_connection_state_t) {
        guard amqp_frames_enqueued(state) == 0 else {
            buffersKept = true
            return
        }
        if buffersKept {
            buffersKept = false
            amqp_maybe_release_buffers(state)
        } else {
            amqp_maybe_release_buffers_on_channel(state, channel)
        }
    }

    private func handleMethod(_ method: amqp_method_t, channel: UInt16) {
        switch method.id {
        case tsync_method_basic_deliver:
            let deliver = method.decoded!.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
            contentInProgress[channel] = AMQPContentInProgress(
                .delivery(
                    consumerTag: recurring.string(deliver.consumer_tag), deliveryTag: deliver.delivery_tag, redelivered: deliver.redelivered != 0,
                    exchange: recurring.string(deliver.exchange), routingKey: recurring.string(deliver.routing_key)))
        case tsync_method_basic_return:
            let returned = method.decoded!.assumingMemoryBound(to: amqp_basic_return_t.self).pointee
            contentInProgress[channel] = AMQPContentInProgress(.returned(replyCode: returned.reply_code, replyText: CDecode.string(returned.reply_text)))
        case tsync_method_basic_ack:
            let ack = method.decoded!.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
            channels[channel]?.confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, nacked: false)
        case tsync_method_basic_nack:
            let nack = method.decoded!.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
            channels[channel]?.confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, nacked: true)
        case tsync_method_basic_cancel:
            let cancel = method.decoded!.assumingMemoryBound(to: amqp_basic_cancel_t.self).pointee
            let tag = CDecode.string(cancel.consumer_tag)
            if let sink = channels[channel]?.consumers.removeValue(forKey: tag) {
                sink.finish(throwing: AMQPError(.consumerCancelled, "the broker cancelled consumer \(tag)"))
            }
        case tsync_method_channel_close:
            let close = method.decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
            acknowledgeChannelClose(channel, close)
        case tsync_method_connection_close:
            let close = method.decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
            acknowledgeConnectionClose(close)
        default:
            break  // connection.blocked/unblocked and the like need no action here
        }
    }

    /// A delivered or returned message whose last content frame has been read.
    private func contentArrived(_ message: AMQPMessage, channel: UInt16) {
        guard let content = contentInProgress.removeValue(forKey: channel) else { return }
        switch content.kind {
        case .delivery(let tag, let deliveryTag, let redelivered, let exchange, let routingKey):
            let delivery = AMQPDelivery(
                deliveryTag: deliveryTag, redelivered: redelivered, exchange: exchange, routingKey: routingKey, consumerTag: tag, message: message)
            if let open = channels[channel], open.closeError == nil {
                if let sink = open.consumers[tag] {
                    if sink.add(delivery) { sinksToHandOver.append(sink) }
                } else if let state {
                    // A delivery that raced our basic.cancel: give it back to the queue.
                    _ = amqp_basic_reject(state, channel, deliveryTag, 1)
                }
            }
            // Otherwise the channel is closing or closed: the broker requeues what it had
            // delivered there, and any method we sent on it would close the whole connection.
        case .returned(let code, let text):
            channels[channel]?.recordReturn(messageID: message.properties.messageID ?? "", code: code, text: text)
        }
    }

    // MARK: - Publishing

    /// Sends queued messages while each channel's confirm window has room.
    private func pumpPublishes() {
        guard let state else { return }
        let arena = CArena()
        // Corked while a round is written: the kernel sends full segments rather than one per
        // message (librabbitmq writes each frame with its own send), and the broker, on the
        // same cores, reads fewer and larger chunks. Uncorking sends the rest at once.
        var corked = false
        defer { if corked { setCork(false) } }
        for channel in channels.values where !channel.outbox.isEmpty && channel.closeError == nil {
            while let batch = channel.outbox.first, failure == nil {
                while batch.nextIndex < batch.items.count, channel.pendingCount < batch.window {
                    let index = batch.nextIndex
                    let item = batch.items[index]
                    defer { arena.reset() }
                    if !corked {
                        setCork(true)
                        corked = true
                    }
                    var properties = arena.properties(item.message.properties)
                    let status = item.message.body.withUnsafeBufferPointer { body in
                        // The body is read in place: librabbitmq is done with it when the call returns.
                        amqp_basic_publish(
                            state, channel.id, arena.bytes(item.exchange), arena.bytes(item.routingKey),
                            item.mandatory ? 1 : 0, 0, &properties, amqp_bytes_t(len: body.count, bytes: UnsafeMutableRawPointer(mutating: body.baseAddress)))
                    }
                    guard status == AMQP_STATUS_OK.rawValue else {
                        fail(AMQPError(.transport, "publish on channel \(channel.id) failed: \(String(cString: amqp_error_string2(status)))"))
                        return
                    }
                    channel.track(batch: batch, index: index, messageID: item.message.properties.messageID ?? "")
                    batch.nextIndex += 1
                }
                guard batch.nextIndex == batch.items.count else { break }  // window full
                channel.outbox.removeFirst()
            }
        }
    }

    private func setCork(_ on: Bool) {
        var value: Int32 = on ? 1 : 0
        _ = setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    // MARK: - Failure and shutdown

    func checkUsable() throws {
        if let failure { throw failure }
        if closing { throw AMQPError(.closed, "the connection is closing") }
    }

    /// Checks an RPC reply; a broker close is acknowledged and becomes a typed error.
    func check(_ reply: amqp_rpc_reply_t, channel: UInt16, _ context: @autoclosure () -> String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == tsync_method_channel_close {
                let close = reply.reply.decoded!.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw acknowledgeChannelClose(channel, close, context: context())
            }
            if reply.reply.id == tsync_method_connection_close {
                let close = reply.reply.decoded!.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw acknowledgeConnectionClose(close)
            }
            throw fail(AMQPError(.unexpectedFrame, "\(context()): unexpected method \(reply.reply.id)"))
        case AMQP_RESPONSE_LIBRARY_EXCEPTION where reply.library_error == AMQP_STATUS_TIMEOUT.rawValue:
            // The broker did not answer in time: the connection's state is unknown, so it goes.
            throw fail(AMQPError(.timeout, "\(context()): no answer from the broker within \(configuration.rpcTimeout)"))
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw fail(AMQPError(.transport, "\(context()): \(String(cString: amqp_error_string2(reply.library_error)))"))
        default:
            throw fail(AMQPError(.transport, "\(context()): no reply"))
        }
    }

    @discardableResult
    private func acknowledgeChannelClose(_ channel: UInt16, _ close: amqp_channel_close_t, context: String? = nil) -> AMQPError {
        let text = CDecode.string(close.reply_text)
        let error = AMQPError(
            .channelClosed, context.map { "\($0): \(text)" } ?? "channel \(channel) closed by the broker: \(text)",
            replyCode: close.reply_code)
        if let state {
            var ok = amqp_channel_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, channel, tsync_method_channel_close_ok, &ok)
        }
        channels[channel]?.fail(error)
        forgetChannel(channel)
        return error
    }

    @discardableResult
    private func acknowledgeConnectionClose(_ close: amqp_connection_close_t) -> AMQPError {
        let text = CDecode.string(close.reply_text)
        if let state {
            var ok = amqp_connection_close_ok_t(dummy: 0)
            _ = amqp_send_method(state, 0, tsync_method_connection_close_ok, &ok)
        }
        return fail(AMQPError(.connectionClosed, "the broker closed the connection: \(text)", replyCode: close.reply_code))
    }

    func forgetChannel(_ id: UInt16) {
        channels.removeValue(forKey: id)
    }

    /// Marks the connection dead and fails everything waiting on it.
    @discardableResult
    func fail(_ error: AMQPError) -> AMQPError {
        if failure == nil { failure = error }
        for channel in channels.values { channel.fail(error) }
        return failure!
    }

    func closeGracefully() {
        guard failure == nil, let state else { return }
        closing = true
        for channel in channels.values where channel.closeError == nil {
            channel.fail(AMQPError(.closed, "the connection was closed"))
        }
        _ = amqp_connection_close(state, AMQP_REPLY_SUCCESS)
        let reason = fail(AMQPError(.closed, "the connection was closed"))
        // Closed for everyone by the time `close()` returns, not when this thread next comes
        // round to `shutDown`: a caller that checked `isOpen` right after closing could see it
        // still open (CI did, under load). Commands already queued see `failure` and fail.
        for command in inbox.close(reason: reason) { command(self) }
    }

    private func shutDown() {
        let reason = failure ?? AMQPError(.closed, "the connection was closed")
        for command in inbox.close(reason: reason) { command(self) }  // they see `failure` and fail
        if let state { amqp_destroy_connection(state) }
        state = nil
    }
}

extension timeval {
    /// `duration` to the microsecond, as librabbitmq's timeouts take it.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self.init(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }
}
