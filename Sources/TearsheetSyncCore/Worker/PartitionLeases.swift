import Foundation
import PostgresClient

/// Partition leases: one PostgreSQL session per worker holds an advisory lock per partition it
/// consumes. A worker that dies loses its connection, and with it every lease, at once; its
/// heartbeat row expires a few seconds later, and the survivors' fair share grows.
public final class PartitionLeases: Sendable {
    public let workerID: String
    private let connection: PostgresConnection
    /// A worker not seen for this long is gone.
    public let heartbeatExpiry: Duration

    public static func key(_ partition: Int) -> Int64 {
        AdvisoryLockKey.key("tearsheet-sync.partition", String(partition))
    }

    public init(workerID: String, connection: PostgresConnection, heartbeatExpiry: Duration = .seconds(6)) {
        self.workerID = workerID
        self.connection = connection
        self.heartbeatExpiry = heartbeatExpiry
    }

    /// Records that this worker is alive and what it holds; returns how many workers are live.
    public func heartbeat(holding partitions: [Int]) async throws -> Int {
        let host = ProcessInfo.processInfo.hostName
        try await connection.query(
            """
            INSERT INTO worker_heartbeats (worker_id, host, partitions) VALUES (\(workerID), \(host), \(partitions.map(Int32.init))::integer[])
            ON CONFLICT (worker_id) DO UPDATE SET last_seen = now(), partitions = EXCLUDED.partitions
            """)
        return try await connection.query(
            "SELECT count(*) FROM worker_heartbeats WHERE last_seen > now() - make_interval(secs => \(heartbeatExpiry.timeInterval))"
        ).scalar(Int.self)
    }

    public func tryAcquire(_ partition: Int) async throws -> Bool {
        try await connection.tryAdvisoryLock(Self.key(partition))
    }

    public func release(_ partition: Int) async throws {
        try await connection.advisoryUnlock(Self.key(partition))
    }

    /// Leaving cleanly: the row goes at once, so the others need not wait for it to expire.
    public func resign() async {
        _ = try? await connection.query("DELETE FROM worker_heartbeats WHERE worker_id = \(workerID)")
        await connection.close()
    }

    /// The partitions this worker should hold: an even share, rounded up.
    public static func share(partitions: Int, liveWorkers: Int) -> Int {
        let workers = max(liveWorkers, 1)
        return (partitions + workers - 1) / workers
    }
}
