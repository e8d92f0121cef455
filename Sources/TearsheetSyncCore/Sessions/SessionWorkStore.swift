import Foundation
import PostgresClient

/// `session_work`: which sessions have messages waiting, so that workers take sessions with
/// work first ("accept next available session") instead of watching thousands of queues.
///
/// The race that matters: a worker drains a session while the publisher publishes to it. The
/// publisher marks only after the broker confirmed its messages; the worker reads the mark's
/// sequence *before* it checks that the queue is empty and records only that sequence as
/// drained. A publish confirmed before the check is in the queue (not empty: nothing is
/// recorded); one confirmed after it bumps the sequence past what the worker read. Either
/// way the session stays waiting.
public struct SessionWorkStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// A session with work, and the sequence to hand to `drained` when its queue is empty.
    public struct Waiting: Sendable, Equatable {
        public let integrationID: String
        public let sequence: Int64
    }

    /// The channel on which `markPublished` notifies the workers (payload: the integration id).
    public static let notificationChannel = "tsync_session_work"

    /// Records that messages for the session were confirmed by the broker, and wakes the
    /// workers that wait for work (NOTIFY) rather than leaving it to their next tick.
    public func markPublished(_ integrationID: String) async throws {
        try await pool.query(
            """
            WITH marked AS (
                INSERT INTO session_work AS w (integration_id, published_seq, waiting_since) VALUES (\(integrationID), 1, now())
                ON CONFLICT (integration_id) DO UPDATE SET
                    published_seq = w.published_seq + 1,
                    waiting_since = CASE WHEN w.published_seq > w.drained_seq THEN w.waiting_since ELSE now() END
                RETURNING integration_id)
            SELECT pg_notify(\(Self.notificationChannel), integration_id) FROM marked
            """)
    }

    /// Sessions with work, longest waiting first.
    public func waiting(limit: Int) async throws -> [Waiting] {
        try await pool.query(
            """
            SELECT integration_id, published_seq FROM session_work WHERE published_seq > drained_seq
            ORDER BY waiting_since LIMIT \(Int64(limit))
            """
        ).rows.map { Waiting(integrationID: try $0.decode("integration_id"), sequence: try $0.decode("published_seq")) }
    }

    /// How many sessions have work: for each worker's fair share.
    public func waitingCount() async throws -> Int {
        try await pool.query("SELECT count(*) FROM session_work WHERE published_seq > drained_seq").scalar(Int.self)
    }

    /// Which of `integrationIDs` still have work: published beyond what was drained.
    public func withWork(_ integrationIDs: [String]) async throws -> Set<String> {
        guard !integrationIDs.isEmpty else { return [] }
        let rows = try await pool.query(
            "SELECT integration_id FROM session_work WHERE integration_id = ANY(\(integrationIDs)) AND published_seq > drained_seq"
        ).rows
        return Set(try rows.map { try $0.decode(at: 0, as: String.self) })
    }

    /// The session's current sequence (read before checking that its queue is empty).
    public func sequence(of integrationID: String) async throws -> Int64 {
        try await pool.query("SELECT published_seq FROM session_work WHERE integration_id = \(integrationID)").rows.first?
            .decode("published_seq") ?? 0
    }

    /// A session given back with work left goes behind those waiting now.
    public func sendToBack(_ integrationID: String) async throws {
        try await pool.query(
            "UPDATE session_work SET waiting_since = now() WHERE integration_id = \(integrationID) AND published_seq > drained_seq")
    }

    /// Records that the queue was empty after `sequence` was read; a later mark keeps it waiting.
    public func drained(_ integrationID: String, through sequence: Int64) async throws {
        try await pool.query(
            "UPDATE session_work SET drained_seq = greatest(drained_seq, \(sequence)) WHERE integration_id = \(integrationID)")
    }
}
