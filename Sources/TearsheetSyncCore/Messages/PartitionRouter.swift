/// Picks an integration's partition: FNV-1a (64-bit) of the integration id's UTF-8 bytes,
/// modulo the partition count. Stable across processes, machines, restarts and Swift versions
/// (`hashValue` is seeded per process and would scatter an integration over partitions).
public struct PartitionRouter: Sendable {
    public let partitions: [Topology.Partition]

    public init(topology: Topology) {
        partitions = topology.partitions
    }

    public static func hash(_ integrationID: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in integrationID.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    public func partition(for integrationID: String) -> Topology.Partition {
        partitions[Int(Self.hash(integrationID) % UInt64(partitions.count))]
    }
}
