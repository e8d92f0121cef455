import Foundation

/// The project's view of `topology.json`: where pairs are published, the policy that governs
/// the session queues, and the dead-letter queue.
///
/// Conventions: pairs go to the direct exchange `tearsheet.pairs` with the integration id as
/// routing key; each integration (session) has its own quorum queue `tearsheet.session.{id}`,
/// declared by the publisher and the worker (`SessionQueue`), not listed in the file; the
/// settings that may change later live in the one policy whose pattern matches those names;
/// dead letters land in `tearsheet.dead-letter`.
public struct Topology: Sendable {
    public static let pairsExchange = "tearsheet.pairs"
    public static let deadLetterExchange = "tearsheet.dead-letter"
    public static let deadLetterQueue = "tearsheet.dead-letter"

    public let definitions: TopologyDefinitions
    /// The virtual host the file's entities name, if they name one.
    public let virtualHost: String?
    /// The policy that applies to session queues.
    public let sessionPolicy: TopologyDefinitions.Policy
    /// Matched as text when it is plain text between anchors, else as a Swift `Regex`
    /// (`QueueNamePattern`); never an `NSRegularExpression`, which runs on ICU's regex engine:
    /// every process compiled this pattern at start, and ICU's pages in an idle worker's
    /// resident memory went from 3.7 to 3.2 MiB without it (`/proc/PID/smaps`).
    private let sessionPattern: QueueNamePattern

    public init(definitions: TopologyDefinitions) throws {
        self.definitions = definitions
        let named = Set(
            definitions.exchanges.map(\.vhost) + definitions.queues.map(\.vhost) + definitions.bindings.map(\.vhost)
                + (definitions.policies ?? []).map(\.vhost)
        ).compactMap { $0 }
        guard named.count <= 1 else {
            throw ConfigurationError(setting: Settings.topologyVariable, "names several virtual hosts (\(named.sorted().joined(separator: ", "))); the fleet lives in one")
        }
        virtualHost = named.first
        guard definitions.exchanges.contains(where: { $0.name == Self.pairsExchange && $0.type == "direct" }) else {
            throw ConfigurationError(setting: Settings.topologyVariable, "the direct exchange \(Self.pairsExchange) is not declared")
        }
        guard definitions.queues.contains(where: { $0.name == Self.deadLetterQueue }) else {
            throw ConfigurationError(setting: Settings.topologyVariable, "the dead-letter queue \(Self.deadLetterQueue) is not declared")
        }
        let example = SessionQueue.queueName(for: "example")
        var matching: [(policy: TopologyDefinitions.Policy, pattern: QueueNamePattern)] = []
        for policy in definitions.policies ?? [] where policy.applyTo ?? "all" != "exchanges" {
            guard let pattern = QueueNamePattern(policy.pattern) else {
                throw ConfigurationError(setting: Settings.topologyVariable, "policy \(policy.name) has an invalid pattern \(policy.pattern)")
            }
            if pattern.matches(example) { matching.append((policy, pattern)) }
        }
        // RabbitMQ applies one policy per queue (the highest priority): exactly one must match.
        guard matching.count == 1, let (policy, pattern) = matching.first else {
            throw ConfigurationError(
                setting: Settings.topologyVariable,
                "exactly one queue policy must match the session queues (\(SessionQueue.queueName(for: "ID"))), found \(matching.count)")
        }
        guard case .string(Self.deadLetterExchange)? = policy.definition["dead-letter-exchange"],
            case .int? = policy.definition["delivery-limit"]
        else {
            throw ConfigurationError(
                setting: Settings.topologyVariable,
                "policy \(policy.name) must set delivery-limit and dead-letter-exchange \(Self.deadLetterExchange)")
        }
        sessionPolicy = policy
        sessionPattern = pattern
    }

    /// The file and the broker URL must name the same virtual host: `rabbitmqctl
    /// import_definitions` of the file puts everything in the one the file names, and `topology
    /// apply` in the URL's; where they differ, the fleet would look for its queues in the wrong one.
    public func checkVirtualHost(_ urlVirtualHost: String) throws {
        guard let virtualHost, virtualHost != urlVirtualHost else { return }
        throw ConfigurationError(
            setting: Settings.topologyVariable,
            "names virtual host \(virtualHost) but \(Settings.amqpURLVariable) names \(urlVirtualHost): make them the same")
    }

    public static func load(path: String) throws -> Topology {
        try Topology(definitions: TopologyDefinitions.load(path: path))
    }

    /// The session policy's delivery limit: deliveries of a message (crashes, lost
    /// connections) before the broker dead-letters it.
    public var deliveryLimit: Int {
        if case .int(let limit)? = sessionPolicy.definition["delivery-limit"] { return Int(limit) }
        return 5
    }

    /// Whether the session policy governs a queue of this name: how tools tell session queues
    /// from others bound to the pairs exchange.
    public func isSessionQueue(_ name: String) -> Bool {
        sessionPattern.matches(name)
    }
}
