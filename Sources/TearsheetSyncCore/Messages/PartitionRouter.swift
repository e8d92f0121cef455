import StableHashing

/// Picks an integration's partition: FNV-1a (64-bit) of the integration id's UTF-8 bytes,
/// modulo the partition count. Stable across processes, machines, restarts and Swift versions
/// (`hashValue` is seeded per process and would scatter an integration over partitions).
public struct PartitionRouter: Sendable {
    public let partitions: [Topology.Partition]

    public init(topology: Topology) {
        partitions = topology.partitions
    }

    public static func hash(_ integrationID: String) -> UInt64 {
        FNV1a.hash(integrationID.utf8)
    }

    public func partition(for integrationID: String) -> Topology.Partition {
        partitions[Int(Self.hash(integrationID) % UInt64(partitions.count))]
    }
}
