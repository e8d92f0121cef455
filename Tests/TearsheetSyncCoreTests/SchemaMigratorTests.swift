import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// `migrate` against the real PostgreSQL server, each test in a fresh database.
@Suite struct SchemaMigratorTests {
    private func withFreshDatabase(_ body: (String) async throws -> Void) async throws {
        try await TestServices.withDatabase("tsync_migrate", body)
    }

    @Test func createsTheContractTablesAndIsIdempotent() async throws {
        try await withFreshDatabase { url in
            let db = try await PostgresConnection.connect(url)
            let migrator = SchemaMigrator()
            #expect(try await migrator.currentVersion(db) == 0)
            #expect(try await migrator.migrate(db) == SchemaMigrations.all.map(\.version))
            #expect(try await migrator.migrate(db).isEmpty)
            #expect(try await migrator.currentVersion(db) == SchemaMigrations.all.last!.version)
            for (table, column) in [
                ("integrations", "tearsheets_last_synced_at"), ("campaigns", "ats_job_id"),
                ("candidates", "indexed_at"), ("campaign_candidates", "ats_application_id"),
            ] {
                let found = try await db.query(
                    "SELECT count(*) FROM information_schema.columns WHERE table_name = \(table) AND column_name = \(column)"
                ).scalar(Int.self)
                #expect(found == 1, "\(table).\(column)")
            }
            // The contract's primary key: one row per (campaign, candidate).
            try await db.query("INSERT INTO integrations (id) VALUES ('acme')")
            try await db.query("INSERT INTO campaign_candidates (campaign_id, ats_candidate_id, integration_id, source, added_at) VALUES (1, 2, 'acme', 'TEARSHEETS', now())")
            await #expect(throws: PostgresError.self) {
                try await db.query("INSERT INTO campaign_candidates (campaign_id, ats_candidate_id, integration_id, source, added_at) VALUES (1, 2, 'acme', 'TEARSHEETS', now())")
            }
            await db.close()
        }
    }

    @Test func concurrentMigratorsApplyEachVersionOnce() async throws {
        try await withFreshDatabase { url in
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        let db = try await PostgresConnection.connect(url)
                        let versions = try await SchemaMigrator().migrate(db)
                        await db.close()
                        return versions
                    }
                }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
            #expect(applied.flatMap { $0 }.sorted() == SchemaMigrations.all.map(\.version))
            let db = try await PostgresConnection.connect(url)
            #expect(try await db.query("SELECT count(*) FROM schema_migrations").scalar(Int.self) == SchemaMigrations.all.count)
            await db.close()
        }
    }

    @Test func keepsTheHostApplicationsOwnColumns() async throws {
        try await withFreshDatabase { url in
            let db = try await PostgresConnection.connect(url)
            try await db.executeScript(unsafeSQL: """
                CREATE TABLE integrations (id text PRIMARY KEY, tenant_name text NOT NULL DEFAULT 'x');
                INSERT INTO integrations (id, tenant_name) VALUES ('host-made', 'Acme Staffing');
                """)
            try await SchemaMigrator().migrate(db)
            let row = try #require(try await db.query("SELECT tenant_name, active, tearsheets_last_synced_at FROM integrations").rows.first)
            #expect(try row.decode("tenant_name", as: String.self) == "Acme Staffing")
            #expect(try row.decode("active", as: Bool.self))
            #expect(try row.decode("tearsheets_last_synced_at", as: String?.self) == nil)
            await db.close()
        }
    }
}
