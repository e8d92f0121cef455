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
        let rows = try await pool.query(
            """
            SELECT true AS tearsheet, m.entity_id, m.version
              FROM publisher_mark_sets s, unnest(s.tearsheet_ids, s.tearsheet_versions) AS m (entity_id, version)
             WHERE s.integration_id = \(integrationID)
            UNION ALL
            SELECT false, m.entity_id, m.version
              FROM publisher_mark_sets s, unnest(s.member_ids, s.member_versions) AS m (entity_id, version)
             WHERE s.integration_id = \(integrationID)
            """
        ).rows
        for row in rows {
            let id = try row.decode("entity_id", as: Int64.self)
            let version = try row.decode("version", as: Date.self)
            if try row.decode("tearsheet", as: Bool.self) { marks.tearsheets[id] = version } else { marks.members[id] = version }
        }
        return marks
    }

    /// True when this exact tearsheet version was already published.
    func handled(tearsheet id: Int64, version: Date) -> Bool {
        guard let seen = tearsheets[id] else { return false }
        return abs(seen.timeIntervalSince(version)) < 0.001
    }

    /// The marks to keep after a pass: those of earlier passes and this one's (which win),
    /// less those older than the next pass's window (`keepAfter`).
    func merged(with handled: PublisherMarks, keepingAfter keepAfter: Date) -> PublisherMarks {
        func kept(_ earlier: [Int64: Date], _ now: [Int64: Date]) -> [Int64: Date] {
            earlier.filter { $0.value > keepAfter }.merging(now.filter { $0.value > keepAfter }) { _, handled in handled }
        }
        var marks = PublisherMarks()
        marks.tearsheets = kept(tearsheets, handled.tearsheets)
        marks.members = kept(members, handled.members)
        return marks
    }

    /// Moves the watermark and writes the marks (`previous`, those loaded at the pass's start
    /// under its lock, merged with what the pass `handled`) in one transaction. The lock keeps
    /// other passes of the integration from writing meanwhile; were it lost mid-pass, the
    /// marks of one pass would be lost, and a pass after would republish what they covered
    /// (pairs the workers find already added), nothing worse.
    static func commit(
        integrationID: String, newest: Date, previous: PublisherMarks, handled: PublisherMarks, overlap: Duration, pool: PostgresPool
    ) async throws {
        let marks = previous.merged(with: handled, keepingAfter: newest.addingTimeInterval(-2 * overlap.timeInterval))
        let tearsheets = marks.tearsheets.sorted { $0.key < $1.key }
        let members = marks.members.sorted { $0.key < $1.key }
        try await pool.withTransaction { tx in
            try await tx.query(
                """
                UPDATE integrations
                   SET tearsheets_last_synced_at = GREATEST(coalesce(tearsheets_last_synced_at, '-infinity'::timestamptz), \(newest)),
                       updated_at = now()
                 WHERE id = \(integrationID)
                """)
            try await tx.query(
                """
                INSERT INTO publisher_mark_sets (integration_id, tearsheet_ids, tearsheet_versions, member_ids, member_versions)
                VALUES (\(integrationID), \(tearsheets.map(\.key))::bigint[], \(tearsheets.map(\.value))::timestamptz[],
                        \(members.map(\.key))::bigint[], \(members.map(\.value))::timestamptz[])
                ON CONFLICT (integration_id) DO UPDATE
                   SET tearsheet_ids = EXCLUDED.tearsheet_ids, tearsheet_versions = EXCLUDED.tearsheet_versions,
                       member_ids = EXCLUDED.member_ids, member_versions = EXCLUDED.member_versions
                """)
        }
    }
}
