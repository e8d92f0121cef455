import AMQPClient

/// Declares `topology.json` on a broker, idempotently: declaring what exists with the same
/// arguments is a no-op. A queue or exchange that exists with other arguments is refused by
/// the broker (406 PRECONDITION_FAILED) and reported as `TopologyConflict`, naming it.
/// Policies (which AMQP cannot set) go through the management API; putting one again
/// replaces it, which is how a changed delivery limit reaches every session queue.
public struct TopologyApplier: Sendable {
    public let definitions: TopologyDefinitions

    public init(definitions: TopologyDefinitions) {
        self.definitions = definitions
    }

    public struct Summary: Sendable, Equatable {
        public var exchanges = 0
        public var queues = 0
        public var bindings = 0
        public var policies = 0
    }

    public func apply(on connection: AMQPConnection, management: RabbitMQManagement, virtualHost: String) async throws -> Summary {
        var summary = Summary()
        // A refused declaration closes its channel, so each step gets a fresh one on failure.
        var channel = try await connection.openChannel()
        func attempt(_ what: String, _ body: (AMQPChannel) async throws -> Void) async throws {
            do {
                try await body(channel)
            } catch let error as AMQPError where error.code == .channelClosed && error.replyCode == 406 {
                channel = try await connection.openChannel()
                throw TopologyConflict(entity: what, brokerSays: error.message)
            }
        }
        for exchange in definitions.exchanges {
            try await attempt("exchange \(exchange.name)") { channel in
                try await channel.declareExchange(
                    exchange.name, type: exchange.type, durable: exchange.durable, autoDelete: exchange.auto_delete,
                    isInternal: exchange.internal ?? false, arguments: exchange.arguments.fieldTable)
            }
            summary.exchanges += 1
        }
        for queue in definitions.queues {
            try await attempt("queue \(queue.name)") { channel in
                try await channel.declareQueue(
                    queue.name, durable: queue.durable, autoDelete: queue.auto_delete, arguments: queue.arguments.fieldTable)
            }
            summary.queues += 1
        }
        for binding in definitions.bindings where binding.destination_type == "queue" {
            try await attempt("binding \(binding.source) -> \(binding.destination)") { channel in
                try await channel.bindQueue(
                    binding.destination, exchange: binding.source, routingKey: binding.routing_key,
                    arguments: binding.arguments.fieldTable)
            }
            summary.bindings += 1
        }
        try? await channel.close()
        for policy in definitions.policies ?? [] {
            struct Body: Encodable {
                let pattern: String
                let definition: [String: JSONArgument]
                let priority: Int
                let applyTo: String
                enum CodingKeys: String, CodingKey {
                    case pattern, definition, priority
                    case applyTo = "apply-to"
                }
            }
            try await management.put(
                "/api/policies/\(RabbitMQManagement.segment(virtualHost))/\(RabbitMQManagement.segment(policy.name))",
                json: Body(pattern: policy.pattern, definition: policy.definition, priority: policy.priority ?? 0, applyTo: policy.applyTo ?? "all"))
            summary.policies += 1
        }
        return summary
    }
}

/// The broker holds an entity of the same name with different settings.
public struct TopologyConflict: Error, CustomStringConvertible, Sendable {
    public let entity: String
    public let brokerSays: String

    public var description: String {
        "\(entity) exists on the broker with different settings (\(brokerSays)); delete it (after draining) or change topology.json"
    }
}
