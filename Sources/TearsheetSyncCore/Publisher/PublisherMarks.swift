import Foundation
import PostgresClient

/// The tearsheet versions and member additions a publisher handled within the overlap window,
/// kept with the watermark so that re-reading the window republishes nothing already sent.
public struct PublisherMarks: Sendable {
    public var tearsheets: [Int64: Date] = [:]
    public var members: [Int64: Date] = [:]

    public init() {}

    public static func load(integrationID: String, pool: PostgresPool) async throws -> PublisherMarks {
        var marks = PublisherMarks()
        for row in try await pool.query("SELECT kind, entity_id, version FROM publisher_marks WHERE integration_id = \(integrationID)").rows {
            let id = try row.decode("entity_id", as: Int64.self)
            let version = try row.decode("version", as: Date.self)
            if try row.decode("kind", as: String.self) == "tearsheet" { marks.tearsheets[id] = version } else { marks.members[id] = version }
        }
        return marks
    }

    /// True when this exact tearsheet version was already published.
    func handled(tearsheet id: Int64, version: Date) -> Bool {
        guard let seen = tearsheets[id] else { return false }
        return abs(seen.timeIntervalSince(version)) < 0.001
    }

    /// Moves the watermark and replaces the marks in one transaction; marks older than the
    /// next pass's window are dropped.
    static func commit(
        integrationID: String, newest: Date, handled: PublisherMarks, overlap: Duration, pool: PostgresPool
    ) async throws {
        let keepAfter = newest.addingTimeInterval(-2 * overlap.timeInterval)
        let tearsheets = handled.tearsheets.filter { $0.value > keepAfter }
        let members = handled.members.filter { $0.value > keepAfter }
        try await pool.withTransaction { tx in
            try await tx.query(
                """
                UPDATE integrations
                   SET tearsheets_last_synced_at = GREATEST(coalesce(tearsheets_last_synced_at, '-infinity'::timestamptz), \(newest)),
                       updated_at = now()
                 WHERE id = \(integrationID)
                """)
            try await tx.query("DELETE FROM publisher_marks WHERE integration_id = \(integrationID) AND version <= \(keepAfter)")
            for (kind, entries) in [("tearsheet", tearsheets), ("member", members)] where !entries.isEmpty {
                try await tx.query(
                    """
                    INSERT INTO publisher_marks (integration_id, kind, entity_id, version)
                    SELECT \(integrationID), \(kind), * FROM unnest(\(Array(entries.keys))::bigint[], \(Array(entries.values))::timestamptz[])
                    ON CONFLICT (integration_id, kind, entity_id) DO UPDATE SET version = EXCLUDED.version
                    """)
            }
        }
    }
}
