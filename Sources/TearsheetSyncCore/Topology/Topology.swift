/// The project's view of `topology.json`: where pairs are published, the partition queues in
/// order, and the dead-letter queue.
///
/// Conventions: pairs go to the direct exchange `tearsheet.pairs`; partition `i` is the queue
/// bound to it with routing key `pNN` (two digits); dead letters land in `tearsheet.dead-letter`.
/// The partition count is the number of such bindings, so it lives in one place.
public struct Topology: Sendable {
    public static let pairsExchange = "tearsheet.pairs"
    public static let deadLetterExchange = "tearsheet.dead-letter"
    public static let deadLetterQueue = "tearsheet.dead-letter"

    public struct Partition: Sendable, Equatable {
        public let index: Int
        public let queue: String
        public let routingKey: String
    }

    public let definitions: TopologyDefinitions
    public let partitions: [Partition]

    public init(definitions: TopologyDefinitions) throws {
        self.definitions = definitions
        var partitions: [Partition] = []
        for binding in definitions.bindings where binding.source == Self.pairsExchange {
            guard binding.routing_key.hasPrefix("p"), let index = Int(binding.routing_key.dropFirst()) else {
                throw ConfigurationError(
                    setting: Settings.topologyVariable,
                    "binding of \(binding.destination) to \(Self.pairsExchange) must use routing key pNN, not \(binding.routing_key)")
            }
            partitions.append(Partition(index: index, queue: binding.destination, routingKey: binding.routing_key))
        }
        partitions.sort { $0.index < $1.index }
        guard !partitions.isEmpty, partitions.map(\.index) == Array(0..<partitions.count) else {
            throw ConfigurationError(
                setting: Settings.topologyVariable,
                "partition bindings of \(Self.pairsExchange) must be numbered p00, p01, … without gaps")
        }
        let queueNames = Set(definitions.queues.map(\.name))
        for partition in partitions where !queueNames.contains(partition.queue) {
            throw ConfigurationError(setting: Settings.topologyVariable, "partition queue \(partition.queue) is bound but not declared")
        }
        guard queueNames.contains(Self.deadLetterQueue) else {
            throw ConfigurationError(setting: Settings.topologyVariable, "the dead-letter queue \(Self.deadLetterQueue) is not declared")
        }
        self.partitions = partitions
    }

    public static func load(path: String) throws -> Topology {
        try Topology(definitions: TopologyDefinitions.load(path: path))
    }
}
