import AMQPClient
import Foundation

/// Looking at and replaying `tearsheet.dead-letter`.
public struct DeadLetterQueue: Sendable {
    let broker: AMQPConnection
    let topology: Topology

    public init(broker: AMQPConnection, topology: Topology) {
        self.broker = broker
        self.topology = topology
    }

    /// A dead-lettered message, as `dlq list` shows it.
    public struct Entry: Sendable, Codable {
        public let messageID: String
        public let integrationID: String?
        public let reason: String
        public let deadLetteredAt: Date?
        /// Decodes as a pair: replayable.
        public let replayable: Bool
    }

    /// Up to `limit` messages, oldest first, left in the queue (they are read, then given back).
    public func list(limit: Int) async throws -> [Entry] {
        let (channel, deliveries) = try await take(limit: limit)
        try await channel.close()  // unacknowledged: back to the queue, in order
        return deliveries.map(Self.entry)
    }

    /// Puts up to `limit` replayable messages (of `integrationID`, if given) back in their
    /// session, confirmed, tells the workers that those sessions have work, then removes them
    /// from the dead-letter queue. Others stay.
    public func replay(limit: Int, integrationID: String? = nil, sessionWork: SessionWorkStore) async throws -> (replayed: Int, kept: Int) {
        let (channel, deliveries) = try await take(limit: limit)
        var chosen: [(AMQPDelivery, PairMessage)] = []
        for delivery in deliveries {
            guard let pair = try? PairMessage.decode(Self.original(delivery.message)) else { continue }
            if let integrationID, pair.integrationId != integrationID { continue }
            chosen.append((delivery, pair))
        }
        let sessions = Set(chosen.map { SessionQueue(integrationID: $0.1.integrationId) })
        for session in sessions { try await session.declare(on: broker) }
        let publisher = try await broker.openChannel(confirms: true)
        let outcomes = try await publisher.publish(chosen.map { delivery, pair in
            AMQPPublish(
                exchange: Topology.pairsExchange, routingKey: SessionQueue(integrationID: pair.integrationId).routingKey, mandatory: true,
                message: Self.original(delivery.message))
        })
        try await publisher.close()
        for ((_, pair), outcome) in zip(chosen, outcomes) where outcome.isConfirmed {
            try await sessionWork.markPublished(pair.integrationId)
        }
        var replayed = 0
        for ((delivery, _), outcome) in zip(chosen, outcomes) where outcome.isConfirmed {
            try await channel.ack(delivery.deliveryTag)
            replayed += 1
        }
        try await channel.close()
        return (replayed, deliveries.count - replayed)
    }

    /// Reads up to `limit` deliveries without settling them.
    private func take(limit: Int) async throws -> (AMQPChannel, [AMQPDelivery]) {
        let channel = try await broker.openChannel()
        let waiting = Int(try await channel.declareQueue(Topology.deadLetterQueue, passive: true).messageCount)
        return (channel, try await take(wanted: min(limit, waiting), on: channel))
    }

    /// Up to `wanted` deliveries, or fewer once none has come for `quiet`: the count read
    /// before consuming can be stale (another `dlq` process, a consumer of the operator's),
    /// and waiting for messages that will not come would never end (issue 11, finding 8).
    func take(wanted: Int, on channel: AMQPChannel, quiet: Duration = .seconds(2)) async throws -> [AMQPDelivery] {
        guard wanted > 0 else { return [] }
        try await channel.setPrefetch(UInt16(min(wanted, 65_535)))
        let consumer = try await channel.consume(queue: Topology.deadLetterQueue)
        let (buffer, pump) = DeliveryBuffer.filled(from: consumer, as: { $0 })
        defer { pump.cancel() }
        var deliveries: [AMQPDelivery] = []
        while deliveries.count < wanted {
            guard let batch = try await buffer.nextBatch(max: wanted - deliveries.count, wait: quiet, quiet: quiet, idle: quiet), !batch.isEmpty
            else { break }
            deliveries += batch
        }
        try await consumer.cancel()
        // Deliveries that raced the cancel are in the buffer: they stay unacknowledged, and go
        // back to the queue with the channel.
        return deliveries
    }

    /// The message as first published: our dead-letter headers and the broker's removed.
    static func original(_ message: AMQPMessage) -> AMQPMessage {
        var copy = message
        for header in [SessionConsumer.reasonHeader, SessionConsumer.sessionHeader, SessionConsumer.deadLetteredAtHeader, "x-tsync-partition", "x-death", "x-first-death-exchange",
                       "x-first-death-queue", "x-first-death-reason", "x-delivery-count"] {
            copy.properties.headers[header] = nil
        }
        return copy
    }

    static func entry(_ delivery: AMQPDelivery) -> Entry {
        let headers = delivery.message.properties.headers
        var reason = headers[SessionConsumer.reasonHeader]?.stringValue
        var at: Date?
        if case .timestamp(let seconds) = headers[SessionConsumer.deadLetteredAtHeader] { at = Date(timeIntervalSince1970: Double(seconds)) }
        if reason == nil, case .array(let deaths) = headers["x-death"], case .table(let first) = deaths.first {
            // Dead-lettered by the broker itself (delivery limit, rejection).
            reason = "broker: \(first["reason"]?.stringValue ?? "?") from \(first["queue"]?.stringValue ?? "?")"
            if case .timestamp(let seconds) = first["time"] { at = Date(timeIntervalSince1970: Double(seconds)) }
        }
        return Entry(
            messageID: delivery.message.properties.messageID ?? "?", integrationID: headers["session-id"]?.stringValue,
            reason: reason ?? "unknown", deadLetteredAt: at,
            replayable: (try? PairMessage.decode(original(delivery.message))) != nil)
    }
}
