import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// The publisher's marks (what it handled inside the overlap window) against the real
/// database: kept in one row an integration, merged pass after pass, carried over from the
/// row-per-mark table of schema version 8.
@Suite struct PublisherMarksTests {
    private let base = Date(timeIntervalSince1970: 1_764_000_000)

    @Test func aPassKeepsEarlierMarksInsideTheWindowAndItsOwnWin() {
        var previous = PublisherMarks()
        previous.tearsheets = [1: base.addingTimeInterval(-700), 2: base.addingTimeInterval(-60), 3: base.addingTimeInterval(-30)]
        previous.members = [10: base.addingTimeInterval(-601), 11: base.addingTimeInterval(-599)]
        var handled = PublisherMarks()
        handled.tearsheets = [3: base, 4: base.addingTimeInterval(-800)]
        handled.members = [12: base]
        let kept = previous.merged(with: handled, keepingAfter: base.addingTimeInterval(-600))
        #expect(kept.tearsheets == [2: base.addingTimeInterval(-60), 3: base], "1 and 4 are older than the window; 3 is the pass's version")
        #expect(kept.members == [11: base.addingTimeInterval(-599), 12: base])
    }

    @Test func tenThousandMarksRoundTripAndAreMergedByTheNextPass() async throws {
        try await withMigratedDatabase(upTo: nil) { pool in
            var first = PublisherMarks()
            for id in Int64(1)...10_000 { first.members[id] = base.addingTimeInterval(-Double(id % 250)) }
            first.tearsheets = [6: base.addingTimeInterval(-500), 7: base]
            try await PublisherMarks.commit(integrationID: "acme", newest: base, previous: PublisherMarks(), handled: first, overlap: .seconds(300), pool: pool)
            let loaded = try await PublisherMarks.load(integrationID: "acme", pool: pool)
            #expect(loaded.members == first.members)
            #expect(loaded.tearsheets == first.tearsheets)
            #expect(try await IntegrationStore(pool: pool).watermark(of: "acme") == base)

            // Five minutes on: marks older than two overlaps before the new watermark go (6).
            let later = base.addingTimeInterval(300)
            var second = PublisherMarks()
            second.tearsheets = [8: later]
            try await PublisherMarks.commit(integrationID: "acme", newest: later, previous: loaded, handled: second, overlap: .seconds(300), pool: pool)
            let after = try await PublisherMarks.load(integrationID: "acme", pool: pool)
            #expect(after.tearsheets == [7: base, 8: later])
            #expect(after.members == first.members)
            #expect(try await pool.query("SELECT count(*) FROM publisher_mark_sets").scalar(Int.self) == 1)
            #expect(try await PublisherMarks.load(integrationID: "other", pool: pool).members.isEmpty)
        }
    }

    @Test func marksKeptARowEachAreCarriedIntoTheirIntegrationsRow() async throws {
        try await withMigratedDatabase(upTo: 8) { pool in
            try await pool.query(
                """
                INSERT INTO publisher_marks (integration_id, kind, entity_id, version)
                VALUES ('acme', 'tearsheet', 5, \(base)), ('acme', 'member', 9, \(base)), ('acme', 'member', 8, \(base.addingTimeInterval(-1)))
                """)
            try await pool.withConnection { try await SchemaMigrator().migrate($0) }
            let carried = try await PublisherMarks.load(integrationID: "acme", pool: pool)
            #expect(carried.tearsheets == [5: base])
            #expect(carried.members == [9: base, 8: base.addingTimeInterval(-1)])
            #expect(try await pool.query("SELECT to_regclass('publisher_marks') IS NULL").scalar(Bool.self))
        }
    }

    /// A fresh database migrated to `version` (nil: the latest) with integration "acme".
    private func withMigratedDatabase(upTo version: Int?, _ body: (PostgresPool) async throws -> Void) async throws {
        try await TestServices.withDatabase("tsync_marks") { url in
            let pool = PostgresPool(connectionString: url, maxConnections: 2)
            do {
                let migrations = SchemaMigrations.all.filter { version == nil || $0.version <= version! }
                try await pool.withConnection { try await SchemaMigrator(migrations: migrations).migrate($0) }
                try await pool.query("INSERT INTO integrations (id) VALUES ('acme')")
                try await body(pool)
            } catch {
                await pool.close()
                throw error
            }
            await pool.close()
        }
    }
}
