import CRabbitMQ

/// Channel-level AMQP methods, run on the connection's thread.
extension AMQPConnectionCore {
    func usableChannel(_ id: UInt16) throws -> (amqp_connection_state_t, AMQPChannelState) {
        try checkUsable()
        guard let channel = channels[id], let state else {
            throw AMQPError(.closed, "channel \(id) is not open")
        }
        if let error = channel.closeError { throw error }
        return (state, channel)
    }

    /// Opens a channel on a free id and returns the id.
    func openChannel(confirms: Bool) throws -> UInt16 {
        guard state != nil else { throw AMQPError(.closed, "the connection is closed") }
        let id = try allocateChannelID()
        let channel = AMQPChannelState(id: id)
        channels[id] = channel
        do {
            var open = amqp_channel_open_t(out_of_band: amqp_empty_bytes)
            try check(call(channel: id, tsync_method_channel_open, &open, replyID: tsync_method_channel_open_ok), channel: id, "open channel \(id)")
            if confirms {
                var select = amqp_confirm_select_t(nowait: 0)
                try check(
                    call(channel: id, tsync_method_confirm_select, &select, replyID: tsync_method_confirm_select_ok), channel: id,
                    "enable publisher confirms")
                channel.confirms = true
            }
        } catch {
            forgetChannel(id)
            throw error
        }
        return id
    }

    /// The next id after the last one handed out that no open channel uses. Ids go round
    /// rather than lowest-first: frames of a just-closed channel that librabbitmq queued while
    /// waiting for its close-ok are handled later, and must not land on a new channel.
    private func allocateChannelID() throws -> UInt16 {
        let highest = channelMax == 0 ? UInt16.max : channelMax  // 0 means "no limit" in AMQP
        for _ in 0..<Int(highest) {
            lastChannelID = lastChannelID >= highest ? 1 : lastChannelID + 1
            if channels[lastChannelID] == nil { return lastChannelID }
        }
        throw AMQPError(.closed, "all \(highest) channels of the connection are in use")
    }

    func closeChannel(_ id: UInt16) throws {
        let (state, channel) = try usableChannel(id)
        channel.fail(AMQPError(.closed, "channel \(id) was closed"))
        defer { forgetChannel(id) }
        try check(amqp_channel_close(state, id, AMQP_REPLY_SUCCESS), channel: id, "close channel \(id)")
    }

    func declareExchange(
        channel id: UInt16, name: String, type: String, durable: Bool, autoDelete: Bool,
        isInternal: Bool, arguments: [String: AMQPFieldValue]
    ) throws {
        let (state, _) = try usableChannel(id)
        let arena = CArena()
        amqp_exchange_declare(
            state, id, arena.bytes(name), arena.bytes(type), 0, durable ? 1 : 0, autoDelete ? 1 : 0,
            isInternal ? 1 : 0, arena.table(arguments))
        try check(amqp_get_rpc_reply(state), channel: id, "declare exchange \(name)")
    }

    func deleteExchange(channel id: UInt16, name: String) throws {
        let (state, _) = try usableChannel(id)
        let arena = CArena()
        amqp_exchange_delete(state, id, arena.bytes(name), 0)
        try check(amqp_get_rpc_reply(state), channel: id, "delete exchange \(name)")
    }

    func declareQueue(
        channel id: UInt16, name: String, passive: Bool, durable: Bool, exclusive: Bool,
        autoDelete: Bool, arguments: [String: AMQPFieldValue]
    ) throws -> AMQPQueueState {
        _ = try usableChannel(id)
        let arena = CArena()
        var declare = amqp_queue_declare_t(
            ticket: 0, queue: arena.bytes(name), passive: passive ? 1 : 0, durable: durable ? 1 : 0, exclusive: exclusive ? 1 : 0,
            auto_delete: autoDelete ? 1 : 0, nowait: 0, arguments: arena.table(arguments))
        let reply = call(channel: id, tsync_method_queue_declare, &declare, replyID: tsync_method_queue_declare_ok)
        try check(reply, channel: id, "declare queue \(name)")
        guard let ok = reply.reply.decoded?.assumingMemoryBound(to: amqp_queue_declare_ok_t.self).pointee else {
            throw AMQPError(.unexpectedFrame, "declare queue \(name): no declare-ok")
        }
        return AMQPQueueState(name: CDecode.string(ok.queue), messageCount: ok.message_count, consumerCount: ok.consumer_count)
    }

    func bindQueue(channel id: UInt16, queue: String, exchange: String, routingKey: String, arguments: [String: AMQPFieldValue]) throws {
        let (state, _) = try usableChannel(id)
        let arena = CArena()
        amqp_queue_bind(state, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
        try check(amqp_get_rpc_reply(state), channel: id, "bind queue \(queue) to \(exchange)")
    }

    func unbindQueue(channel id: UInt16, queue: String, exchange: String, routingKey: String, arguments: [String: AMQPFieldValue]) throws {
        let (state, _) = try usableChannel(id)
        let arena = CArena()
        amqp_queue_unbind(state, id, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
        try check(amqp_get_rpc_reply(state), channel: id, "unbind queue \(queue) from \(exchange)")
    }

    func deleteQueue(channel id: UInt16, name: String) throws -> UInt32 {
        let (state, _) = try usableChannel(id)
        let arena = CArena()
        let ok = amqp_queue_delete(state, id, arena.bytes(name), 0, 0)
        try check(amqp_get_rpc_reply(state), channel: id, "delete queue \(name)")
        return ok?.pointee.message_count ?? 0
    }

    func purgeQueue(channel id: UInt16, name: String) throws -> UInt32 {
        let (state, _) = try usableChannel(id)
        let arena = CArena()
        let ok = amqp_queue_purge(state, id, arena.bytes(name))
        try check(amqp_get_rpc_reply(state), channel: id, "purge queue \(name)")
        return ok?.pointee.message_count ?? 0
    }

    func qos(channel id: UInt16, prefetchCount: UInt16) throws {
        _ = try usableChannel(id)
        var qos = amqp_basic_qos_t(prefetch_size: 0, prefetch_count: prefetchCount, global: 0)
        try check(call(channel: id, tsync_method_basic_qos, &qos, replyID: tsync_method_basic_qos_ok), channel: id, "set prefetch \(prefetchCount)")
    }

    func consume(
        channel id: UInt16, queue: String, consumerTag: String, exclusive: Bool,
        arguments: [String: AMQPFieldValue],
        sink: AMQPConsumerSink
    ) throws -> String {
        let (_, channel) = try usableChannel(id)
        let arena = CArena()
        var consume = amqp_basic_consume_t(
            ticket: 0, queue: arena.bytes(queue), consumer_tag: arena.bytes(consumerTag), no_local: 0, no_ack: 0,
            exclusive: exclusive ? 1 : 0, nowait: 0, arguments: arena.table(arguments))
        let reply = call(channel: id, tsync_method_basic_consume, &consume, replyID: tsync_method_basic_consume_ok)
        try check(reply, channel: id, "consume from \(queue)")
        let ok = reply.reply.decoded?.assumingMemoryBound(to: amqp_basic_consume_ok_t.self).pointee
        let tag = ok.map { CDecode.string($0.consumer_tag) } ?? consumerTag
        channel.consumers[tag] = sink
        return tag
    }

    func cancel(channel id: UInt16, consumerTag: String) throws {
        let (state, channel) = try usableChannel(id)
        let arena = CArena()
        amqp_basic_cancel(state, id, arena.bytes(consumerTag))
        try check(amqp_get_rpc_reply(state), channel: id, "cancel consumer \(consumerTag)")
        // Deliveries the broker sent before its cancel-ok were queued by librabbitmq while it
        // waited for the answer: hand them to the consumer before its stream ends (rejecting
        // them would cost each a delivery on a quorum queue), then end it.
        handleQueuedFrames()
        channel.consumers.removeValue(forKey: consumerTag)?.finish()
    }

    func settle(channel id: UInt16, _ settlement: AMQPSettlement) throws {
        let (state, _) = try usableChannel(id)
        let status: Int32
        switch settlement {
        case .ack(let tag, let multiple):
            status = amqp_basic_ack(state, id, tag, multiple ? 1 : 0)
        case .nack(let tag, let multiple, let requeue):
            status = amqp_basic_nack(state, id, tag, multiple ? 1 : 0, requeue ? 1 : 0)
        case .reject(let tag, let requeue):
            status = amqp_basic_reject(state, id, tag, requeue ? 1 : 0)
        }
        guard status == AMQP_STATUS_OK.rawValue else {
            throw fail(AMQPError(.transport, "settling a delivery failed: \(String(cString: amqp_error_string2(status)))"))
        }
    }

    func enqueuePublish(channel id: UInt16, batch: AMQPPublishBatch) throws {
        let (_, channel) = try usableChannel(id)
        guard channel.confirms else {
            throw AMQPError(.closed, "channel \(id) was not opened with publisher confirms")
        }
        channel.outbox.append(batch)
        channel.unfinished.append(batch)
    }

    /// Fails publish calls whose confirms are overdue. Their channel's state on the broker is
    /// unknown (RabbitMQ can hold a connection in flow control indefinitely), so the channel
    /// is closed without waiting for the broker's answer, which would block this thread.
    func expireOverduePublishes() {
        guard let state else { return }
        let now = ContinuousClock.now
        for channel in channels.values where channel.closeError == nil {
            guard channel.overdueBatch(at: now) != nil else { continue }
            let error = AMQPError(.timeout, "publisher confirms on channel \(channel.id) did not arrive in time; the channel was closed")
            channel.fail(error)
            forgetChannel(channel.id)
            var close = amqp_channel_close_t(
                reply_code: UInt16(AMQP_REPLY_SUCCESS), reply_text: amqp_empty_bytes, class_id: 0, method_id: 0)
            _ = amqp_send_method(state, channel.id, tsync_method_channel_close, &close)
        }
    }
}

/// How a consumer settles a delivery.
enum AMQPSettlement: Sendable {
    case ack(UInt64, multiple: Bool)
    case nack(UInt64, multiple: Bool, requeue: Bool)
    case reject(UInt64, requeue: Bool)
}
