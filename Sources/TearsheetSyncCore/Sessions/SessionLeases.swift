import Foundation
import PostgresClient

/// Session leases: one PostgreSQL session per worker holds an advisory lock per integration
/// whose session it has accepted. A worker that dies loses its connection, and with it every
/// lease, at once; its heartbeat row expires a few seconds later, and the survivors' fair
/// share grows. Only the worker's lease loop uses the connection, one call at a time.
public final class SessionLeases: Sendable {
    public let workerID: String
    private let connection: PostgresConnection
    /// A worker not seen for this long is gone.
    public let heartbeatExpiry: Duration

    public static func key(_ integrationID: String) -> Int64 {
        AdvisoryLockKey.key("tearsheet-sync.session", integrationID)
    }

    public init(workerID: String, connection: PostgresConnection, heartbeatExpiry: Duration = .seconds(6)) {
        self.workerID = workerID
        self.connection = connection
        self.heartbeatExpiry = heartbeatExpiry
    }

    /// The fleet as the heartbeats show it.
    public struct Fleet: Sendable, Equatable {
        public let liveWorkers: Int
        /// Sessions the live workers hold, together.
        public let sessionsHeld: Int
    }

    /// Records that this worker is alive and which sessions it holds; returns the live fleet.
    public func heartbeat(holding sessions: [String]) async throws -> Fleet {
        let host = ProcessInfo.processInfo.hostName
        try await connection.query(
            """
            INSERT INTO worker_heartbeats (worker_id, host, sessions) VALUES (\(workerID), \(host), \(sessions)::text[])
            ON CONFLICT (worker_id) DO UPDATE SET last_seen = now(), sessions = EXCLUDED.sessions
            """)
        let row = try await connection.query(
            """
            SELECT count(*), coalesce(sum(cardinality(sessions)), 0) FROM worker_heartbeats
             WHERE last_seen > now() - make_interval(secs => \(heartbeatExpiry.timeInterval))
            """
        ).rows[0]
        return Fleet(liveWorkers: try row.decode(at: 0), sessionsHeld: try row.decode(at: 1))
    }

    public func tryAcquire(_ integrationID: String) async throws -> Bool {
        try await connection.tryAdvisoryLock(Self.key(integrationID))
    }

    /// Releases the lease; false when this session did not hold it.
    @discardableResult
    public func release(_ integrationID: String) async throws -> Bool {
        try await connection.advisoryUnlock(Self.key(integrationID))
    }

    /// Leaving cleanly: the row goes at once, so the others need not wait for it to expire.
    public func resign() async {
        _ = try? await connection.query("DELETE FROM worker_heartbeats WHERE worker_id = \(workerID)")
        await connection.close()
    }

    /// The sessions this worker should hold: an even share of those with work (rounded up, at
    /// least one), never more than its limit.
    public static func share(waitingSessions: Int, liveWorkers: Int, limit: Int) -> Int {
        let workers = max(liveWorkers, 1)
        return min(limit, max(1, (waitingSessions + workers - 1) / workers))
    }
}
