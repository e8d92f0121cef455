import Foundation

/// A channel on an `AMQPConnection`. Cheap to copy; all copies are the same channel.
public struct AMQPChannel: Sendable {
    public let connection: AMQPConnection
    public let id: UInt16

    public func declareExchange(
        _ name: String, type: String = "direct", durable: Bool = true, autoDelete: Bool = false,
        isInternal: Bool = false, arguments: [String: AMQPFieldValue] = [:]
    ) async throws {
        try await connection.perform { [id] core in
            try core.declareExchange(
                channel: id, name: name, type: type, durable: durable, autoDelete: autoDelete,
                isInternal: isInternal, arguments: arguments)
        }
    }

    public func deleteExchange(_ name: String) async throws {
        try await connection.perform { [id] core in try core.deleteExchange(channel: id, name: name) }
    }

    /// Declares a queue (or, with `passive`, checks that it exists). A queue that exists with
    /// other arguments closes the channel with 406 PRECONDITION_FAILED, thrown as `.channelClosed`.
    @discardableResult
    public func declareQueue(
        _ name: String, passive: Bool = false, durable: Bool = true, exclusive: Bool = false,
        autoDelete: Bool = false, arguments: [String: AMQPFieldValue] = [:]
    ) async throws -> AMQPQueueState {
        try await connection.perform { [id] core in
            try core.declareQueue(
                channel: id, name: name, passive: passive, durable: durable, exclusive: exclusive,
                autoDelete: autoDelete, arguments: arguments)
        }
    }

    public func unbindQueue(_ queue: String, exchange: String, routingKey: String, arguments: [String: AMQPFieldValue] = [:]) async throws {
        try await connection.perform { [id] core in
            try core.unbindQueue(channel: id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        }
    }

    public func bindQueue(_ queue: String, exchange: String, routingKey: String, arguments: [String: AMQPFieldValue] = [:]) async throws {
        try await connection.perform { [id] core in
            try core.bindQueue(channel: id, queue: queue, exchange: exchange, routingKey: routingKey, arguments: arguments)
        }
    }

    /// Deletes a queue and returns how many messages it held.
    @discardableResult
    public func deleteQueue(_ name: String) async throws -> UInt32 {
        try await connection.perform { [id] core in try core.deleteQueue(channel: id, name: name) }
    }

    @discardableResult
    public func purgeQueue(_ name: String) async throws -> UInt32 {
        try await connection.perform { [id] core in try core.purgeQueue(channel: id, name: name) }
    }

    /// Limits unacknowledged deliveries on this channel.
    public func setPrefetch(_ count: UInt16) async throws {
        try await connection.perform { [id] core in try core.qos(channel: id, prefetchCount: count) }
    }

    /// Publishes `messages` with up to `window` unconfirmed at a time and returns each one's
    /// outcome, in order, once the broker has answered for all of them. The channel must have
    /// been opened with `confirms: true`. Throws when the channel or connection fails first, or
    /// when the broker has not answered for every message within `confirmTimeout` (`.timeout`;
    /// the channel is then closed): no outcome is known and the caller must treat every message
    /// as unconfirmed.
    public func publish(
        _ messages: [AMQPPublish], window: Int = 1024, confirmTimeout: Duration = .seconds(60)
    ) async throws -> [AMQPPublishOutcome] {
        precondition(window > 0, "the confirm window must be positive")
        return try await connection.performDeferred { [id] core, complete in
            let batch = AMQPPublishBatch(items: messages, window: window, timeout: confirmTimeout) { complete($0) }
            do {
                try core.enqueuePublish(channel: id, batch: batch)
            } catch {
                batch.fail(error)
            }
        }
    }

    /// Starts a consumer. Deliveries arrive on the returned sequence until the consumer is
    /// cancelled (by us: the sequence ends; by the broker or a failure: it throws).
    public func consume(
        queue: String, consumerTag: String = "", exclusive: Bool = false,
        arguments: [String: AMQPFieldValue] = [:]
    ) async throws -> AMQPConsumer {
        let (stream, continuation) = AsyncThrowingStream<[AMQPDelivery], any Error>.makeStream()
        let tag = try await connection.perform { [id] core in
            try core.consume(
                channel: id, queue: queue, consumerTag: consumerTag, exclusive: exclusive,
                arguments: arguments, sink: AMQPConsumerSink(continuation))
        }
        return AMQPConsumer(channel: self, tag: tag, deliveries: stream)
    }

    public func ack(_ deliveryTag: UInt64, multiple: Bool = false) async throws {
        try await settle(.ack(deliveryTag, multiple: multiple))
    }

    public func nack(_ deliveryTag: UInt64, multiple: Bool = false, requeue: Bool = true) async throws {
        try await settle(.nack(deliveryTag, multiple: multiple, requeue: requeue))
    }

    public func reject(_ deliveryTag: UInt64, requeue: Bool) async throws {
        try await settle(.reject(deliveryTag, requeue: requeue))
    }

    private func settle(_ settlement: AMQPSettlement) async throws {
        try await connection.perform { [id] core in try core.settle(channel: id, settlement) }
    }

    /// Closes the channel; unacknowledged deliveries go back to their queues.
    public func close() async throws {
        try await connection.perform { [id] core in try core.closeChannel(id) }
    }
}

/// A running consumer: iterate it for deliveries, `cancel()` to stop.
public struct AMQPConsumer: AsyncSequence, Sendable {
    public typealias Element = AMQPDelivery
    public let channel: AMQPChannel
    public let tag: String
    let deliveries: AsyncThrowingStream<[AMQPDelivery], any Error>

    /// The deliveries as they arrive from the connection's thread, several at a time: what a
    /// consumer that batches anyway takes, without a wake-up per delivery.
    public var batches: AsyncThrowingStream<[AMQPDelivery], any Error> { deliveries }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var batches: AsyncThrowingStream<[AMQPDelivery], any Error>.AsyncIterator
        var current: [AMQPDelivery] = []
        var index = 0

        public mutating func next() async throws -> AMQPDelivery? {
            while index == current.count {
                guard let batch = try await batches.next() else { return nil }
                current = batch
                index = 0
            }
            defer { index += 1 }
            return current[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(batches: deliveries.makeAsyncIterator())
    }

    /// Sends basic.cancel. Deliveries the broker sent before it confirmed the cancel still
    /// arrive on the sequence, which then ends; they stay unacknowledged until settled or
    /// until the channel closes.
    public func cancel() async throws {
        try await channel.connection.perform { [channel, tag] core in try core.cancel(channel: channel.id, consumerTag: tag) }
    }
}
