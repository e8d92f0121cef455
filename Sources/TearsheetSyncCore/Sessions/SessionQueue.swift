import AMQPClient

/// An integration's session: its own durable quorum queue, bound to `tearsheet.pairs` with
/// the integration id as routing key, consumed by one worker at a time.
///
/// Only what RabbitMQ 3.10 accepts solely as queue arguments is set here (the queue type and
/// single-active-consumer); everything that may change later (delivery limit, dead-lettering,
/// overflow) comes from the topology's session policy, so it can change without redeclaring.
public struct SessionQueue: Sendable, Hashable {
    public static let prefix = "tearsheet.session."
    static let arguments: [String: AMQPFieldValue] = ["x-queue-type": .string("quorum"), "x-single-active-consumer": .bool(true)]

    public let integrationID: String

    public init(integrationID: String) {
        self.integrationID = integrationID
    }

    public static func queueName(for integrationID: String) -> String { prefix + integrationID }

    public var queue: String { Self.queueName(for: integrationID) }
    public var routingKey: String { integrationID }

    /// Declares the queue and its binding; idempotent (a redeclaration with the same arguments
    /// is a no-op), so the publisher, `integration add`, `dlq replay` and workers all call it.
    public func declare(on channel: AMQPChannel) async throws {
        _ = try await channel.declareQueue(queue, durable: true, autoDelete: false, arguments: Self.arguments)
        try await channel.bindQueue(queue, exchange: Topology.pairsExchange, routingKey: routingKey)
    }

    /// Declares on a channel of its own (a refused declaration closes its channel).
    public func declare(on connection: AMQPConnection) async throws {
        let channel = try await connection.openChannel()
        do {
            try await declare(on: channel)
        } catch {
            try? await channel.close()
            throw error
        }
        try await channel.close()
    }
}
