import Foundation
import PostgresClient

/// Session leases: one PostgreSQL session per worker holds an advisory lock per integration
/// whose session it has accepted, and one for the worker itself. A worker that dies loses its
/// connection, and with it every lease and its own lock, at once: the others see it gone on
/// their next tick (its heartbeat row, which also expires, says what it held). Only the
/// worker's lease loop uses the connection, one call at a time.
public final class SessionLeases: Sendable {
    public let workerID: String
    private let connection: PostgresConnection
    /// A worker not seen for this long is gone.
    public let heartbeatExpiry: Duration

    public static func key(_ integrationID: String) -> Int64 {
        AdvisoryLockKey.key("tearsheet-sync.session", integrationID)
    }

    /// The lock a live worker holds on its lease connection.
    public static func workerKey(_ workerID: String) -> Int64 {
        AdvisoryLockKey.key("tearsheet-sync.worker", workerID)
    }

    /// How long a call on the lease connection may go unanswered before the connection is
    /// given up (and the server's own limit on its statements): a silent database must not
    /// freeze the lease loop, and with it the worker's view of the fleet.
    public static let answerDeadline = Duration.seconds(10)

    /// Opens the lease session: a connection under `answerDeadline`.
    public static func connect(workerID: String, databaseURL: String, heartbeatExpiry: Duration) async throws -> SessionLeases {
        let connection = try await PostgresConnection.connect(
            databaseURL, applicationName: "tearsheet-sync worker", answerDeadline: answerDeadline)
        return SessionLeases(workerID: workerID, connection: connection, heartbeatExpiry: heartbeatExpiry)
    }

    /// Takes the worker's own lock and listens for sessions that get work: call once, right
    /// after connecting.
    ///
    /// When the lock is taken, it is this worker's previous lease session, whose connection
    /// went silent rather than closed: the server still thinks it alive and keeps its leases
    /// until its keepalives give up. That session is ended here, so the worker gets its leases
    /// back now. Returns how many such sessions were ended.
    @discardableResult
    public func register() async throws -> Int {
        let key = Self.workerKey(workerID)
        var ended = 0
        if try await !connection.tryAdvisoryLock(key) {
            ended = try await connection.terminateOtherHolders(of: key)
            guard try await connection.tryAdvisoryLock(key) else {
                throw PostgresError(.connection, "worker \(workerID)'s earlier lease session still holds its lock")
            }
        }
        try await connection.listen(SessionWorkStore.notificationChannel)
        return ended
    }

    /// Waits up to `timeout`, less when a session gets work; returns those sessions.
    public func waitForWork(upTo timeout: Duration) async throws -> [String] {
        try await connection.notifications(waitingUpTo: timeout)
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
        /// Advisory-lock keys held right now (see `heldKeys`).
        public let heldKeys: Set<Int64>
    }

    /// The live worker that says it holds the session (a fresh heartbeat row: a SIGKILLed
    /// worker's row stays behind), for `trace`.
    public static func holder(of integrationID: String, pool: PostgresPool, heartbeatExpiry: Duration = .seconds(6)) async throws -> String? {
        try await pool.query(
            """
            SELECT worker_id FROM worker_heartbeats
             WHERE \(integrationID) = ANY(sessions) AND last_seen > now() - make_interval(secs => \(heartbeatExpiry.timeInterval))
             ORDER BY last_seen DESC LIMIT 1
            """
        ).rows.first?.decode(at: 0)
    }

    /// Records that this worker is alive and which sessions it holds; returns the live fleet.
    public func heartbeat(holding sessions: [String]) async throws -> Fleet {
        let host = ProcessInfo.processInfo.hostName
        try await connection.query(
            """
            INSERT INTO worker_heartbeats (worker_id, host, sessions) VALUES (\(workerID), \(host), \(sessions)::text[])
            ON CONFLICT (worker_id) DO UPDATE SET last_seen = now(), sessions = EXCLUDED.sessions
            """)
        let held = try await heldKeys()
        // Live: a fresh heartbeat and the worker's lock still held (a SIGKILLed worker's lock
        // goes with its connection, long before its row expires).
        var live = 0
        var sessionsHeld = 0
        for row in try await connection.query(
            """
            SELECT worker_id, cardinality(sessions) FROM worker_heartbeats
             WHERE last_seen > now() - make_interval(secs => \(heartbeatExpiry.timeInterval))
            """
        ).rows where held.contains(Self.workerKey(try row.decode(at: 0))) {
            live += 1
            sessionsHeld += try row.decode(at: 1, as: Int.self)
        }
        return Fleet(liveWorkers: live, sessionsHeld: sessionsHeld, heldKeys: held)
    }

    /// The advisory-lock keys any session of this database holds now: which leases are taken
    /// (a dead worker's go the moment its connection does, sooner than its heartbeat row).
    public func heldKeys() async throws -> Set<Int64> {
        try await connection.heldAdvisoryLocks()
    }

    public func tryAcquire(_ integrationID: String) async throws -> Bool {
        try await connection.tryAdvisoryLock(Self.key(integrationID))
    }

    /// Releases the lease; false when this session did not hold it.
    @discardableResult
    public func release(_ integrationID: String) async throws -> Bool {
        try await connection.advisoryUnlock(Self.key(integrationID))
    }

    /// Out of the fleet's count for now (no broker to work with): the row goes; the next
    /// heartbeat brings it back.
    public func withdraw() async throws {
        try await connection.query("DELETE FROM worker_heartbeats WHERE worker_id = \(workerID)")
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
