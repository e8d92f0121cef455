import Foundation
import IntegrationSupport
import PostgresClient
import Testing

/// Against the real PostgreSQL server, each test in a database of its own.
@Suite struct PostgresClientTests {
    private func withDatabase(_ body: (String, PostgresConnection) async throws -> Void) async throws {
        try await withScratchDatabase(body)
    }

    @Test func hostileStringsAreBoundNotSpliced() async throws {
        try await withDatabase { _, db in
            try await db.query("CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)")
            let hostile = [
                "Robert'); DROP TABLE notes;--", "\"quoted\" and 'single'", "a;b;c", "$1 $2 \\ \\x00",
                String(repeating: "x", count: 10_000), "emoji 🧑‍💻🇫🇷 and ünïcödé",
            ]
            for (index, text) in hostile.enumerated() {
                try await db.query("INSERT INTO notes (id, body) VALUES (\(index), \(text))")
            }
            let rows = try await db.query("SELECT id, body FROM notes ORDER BY id").rows
            #expect(try rows.map { try $0.decode("body", as: String.self) } == hostile)
            #expect(try await db.query("SELECT count(*) FROM notes WHERE body = \(hostile[0])").scalar(Int.self) == 1)
        }
    }

    @Test func aNulByteIsRefusedByTheServerNotTruncated() async throws {
        try await withDatabase { _, db in
            try await db.query("CREATE TABLE notes (body text)")
            await #expect {
                try await db.query("INSERT INTO notes (body) VALUES (\("before\u{0}after"))")
            } throws: { error in
                (error as? PostgresError)?.sqlState == "22021" && !"\(error)".contains("before")
            }
            #expect(try await db.query("SELECT count(*) FROM notes").scalar(Int.self) == 0)
        }
    }

    @Test func typesRoundTrip() async throws {
        try await withDatabase { _, db in
            let when = Date(timeIntervalSince1970: 1_764_070_842.123456)
            let row = try #require(
                try await db.query(
                    "SELECT \(Int64.max)::bigint AS big, \(true) AS flag, \(when) AS at, \(2.5) AS ratio, \(nil as String?)::text AS nothing, \([1, 2, 3])::bigint[] AS ids"
                ).rows.first)
            #expect(try row.decode("big", as: Int64.self) == Int64.max)
            #expect(try row.decode("flag", as: Bool.self))
            #expect(abs(try row.decode("at", as: Date.self).timeIntervalSince(when)) < 0.000_001)
            #expect(try row.decode("ratio", as: Double.self) == 2.5)
            #expect(try row.decode("nothing", as: String?.self) == nil)
            #expect(throws: PostgresError.self) { try row.decode("nothing", as: String.self) }
            #expect(try row.decode("ids", as: String.self) == "{1,2,3}")
        }
    }

    @Test func tenThousandRowsLandInOneBatch() async throws {
        try await withDatabase { _, db in
            try await db.query("CREATE TABLE pairs (campaign_id bigint, candidate_id bigint, source text, PRIMARY KEY (campaign_id, candidate_id))")
            let candidates = (1...10_000).map { Int64($0) }
            let campaigns = candidates.map { $0 % 7 }
            let sources = Array(repeating: "TEARSHEETS", count: candidates.count)
            let inserted = try await db.query(
                """
                INSERT INTO pairs (campaign_id, candidate_id, source)
                SELECT * FROM unnest(\(campaigns)::bigint[], \(candidates)::bigint[], \(sources)::text[])
                ON CONFLICT DO NOTHING
                """
            ).affectedRows
            #expect(inserted == 10_000)
            let again = try await db.query(
                "INSERT INTO pairs SELECT * FROM unnest(\(campaigns)::bigint[], \(candidates)::bigint[], \(sources)::text[]) ON CONFLICT DO NOTHING"
            ).affectedRows
            #expect(again == 0)
            #expect(try await db.query("SELECT count(DISTINCT candidate_id) FROM pairs").scalar(Int.self) == 10_000)
        }
    }

    @Test func copyLoadsRowsWithAwkwardCharacters() async throws {
        try await withDatabase { _, db in
            try await db.query("CREATE TABLE lines (id bigint, body text)")
            var rows: [[String?]] = (1...10_000).map { ["\($0)", "row \($0)"] }
            rows.append(["0", "tab\there, newline\nthere, backslash \\ and \\N"])
            rows.append(["-1", nil])
            let copied = try await db.copyIn(unsafeSQL: "COPY lines (id, body) FROM STDIN", rows: rows)
            #expect(copied == 10_002)
            #expect(try await db.query("SELECT body FROM lines WHERE id = 0").scalar(String.self) == "tab\there, newline\nthere, backslash \\ and \\N")
            #expect(try await db.query("SELECT body FROM lines WHERE id = -1").scalar(String?.self) == nil)
        }
    }

    @Test func aFailedTransactionLeavesNothing() async throws {
        try await withDatabase { _, db in
            try await db.query("CREATE TABLE items (id bigint PRIMARY KEY)")
            await #expect(throws: PostgresError.self) {
                try await db.withTransaction { tx in
                    try await tx.query("INSERT INTO items VALUES (\(1))")
                    try await tx.query("INSERT INTO items VALUES (\(2))")
                    try await tx.query("INSERT INTO items VALUES (\(1))")  // duplicate key
                }
            }
            #expect(try await db.query("SELECT count(*) FROM items").scalar(Int.self) == 0)
            // The connection is usable again after the rollback.
            try await db.withTransaction { tx in try await tx.query("INSERT INTO items VALUES (\(3))") }
            #expect(try await db.query("SELECT count(*) FROM items").scalar(Int.self) == 1)
        }
    }

    @Test func advisoryLocksExcludeOtherSessionsUntilReleased() async throws {
        try await withDatabase { url, first in
            let second = try await PostgresConnection.connect(url)
            let key = AdvisoryLockKey.key("test", "integration-7")
            #expect(try await first.tryAdvisoryLock(key))
            #expect(try await second.tryAdvisoryLock(key) == false)
            #expect(try await first.advisoryUnlock(key))
            #expect(try await second.tryAdvisoryLock(key))
            await second.close()
            // A closed session releases its locks once its backend has exited, a moment later.
            var acquired = false
            for _ in 0..<100 where !acquired {
                acquired = try await first.tryAdvisoryLock(key)
                if !acquired { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(acquired)
        }
    }

    @Test func advisoryLockKeysAreStable() {
        // FNV-1a of the single separator byte 0x00 is 0xaf63bd4c8601b7df: the key must not change
        // between processes, machines or releases.
        #expect(AdvisoryLockKey.key("publisher", "acme") == AdvisoryLockKey.key("publisher", "acme"))
        #expect(AdvisoryLockKey.key("publisher", "acme") != AdvisoryLockKey.key("publisher", "acme2"))
        #expect(AdvisoryLockKey.key("a", "bc") != AdvisoryLockKey.key("ab", "c"))
        #expect(AdvisoryLockKey.key("", "") == Int64(bitPattern: 0xaf63_bd4c_8601_b7df))
    }

    @Test func poolServesMoreCallersThanConnections() async throws {
        try await withDatabase { url, _ in
            let pool = PostgresPool(connectionString: url, maxConnections: 3)
            let pids = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<40 {
                    group.addTask { try await pool.query("SELECT pg_backend_pid(), pg_sleep(0.01)").rows[0].decode(at: 0, as: Int.self) }
                }
                return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
            }
            #expect(pids.count <= 3)
            #expect(pids.count >= 1)
            await pool.close()
            await #expect(throws: PostgresError.self) { try await pool.query("SELECT 1") }
        }
    }

    /// A warmed pool has its connections open before anyone asks, and hands them out rather
    /// than opening more; it never opens more than its bound.
    @Test func warmingOpensConnectionsUpToTheBound() async throws {
        try await withDatabase { url, connection in
            let pool = PostgresPool(connectionString: url, maxConnections: 3, applicationName: "tsync-warm-test")
            func open() async throws -> Int {
                try await connection.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tsync-warm-test'").scalar(Int.self)
            }
            try await pool.warm(2)
            #expect(try await open() == 2)
            let pids = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<2 { group.addTask { try await pool.query("SELECT pg_backend_pid(), pg_sleep(0.2)").rows[0].decode(at: 0, as: Int.self) } }
                return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
            }
            #expect(pids.count == 2)
            #expect(try await open() == 2, "two callers at once were served by the warmed connections")
            try await pool.warm(10)
            #expect(try await open() == 3)
            await pool.close()
        }
        let refused = PostgresPool(connectionString: "postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=2", maxConnections: 2)
        await #expect(throws: PostgresError.self) { try await refused.warm(2) }
    }

    /// A service shutting down cancels its tasks: one waiting for a connection must leave the
    /// line at once, and its place must not be lost to the others.
    @Test func aCallerWaitingForAConnectionLeavesTheLineWhenCancelled() async throws {
        try await withDatabase { url, _ in
            let pool = PostgresPool(connectionString: url, maxConnections: 1)
            // Held 6 s: waiting for it would take over 5 s more, far beyond the bound below,
            // which leaves room for two loaded cores.
            let holding = Task { try await pool.query("SELECT pg_sleep(6)") }
            try await Task.sleep(for: .milliseconds(300))  // the only connection is leased
            let waiting = Task { try await pool.query("SELECT 1") }
            try await Task.sleep(for: .milliseconds(200))
            let cancelled = ContinuousClock.now
            waiting.cancel()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            #expect(ContinuousClock.now - cancelled < .seconds(3), "it did not wait for the connection")
            _ = try await holding.value
            #expect(try await pool.query("SELECT 7").scalar(Int.self) == 7, "the connection went back to the pool")
            await pool.close()
        }
    }

    @Test func badConnectionStringFailsWithoutThePassword() async throws {
        await #expect {
            _ = try await PostgresConnection.connect("postgresql://postgres:sekr1t-pw@127.0.0.1:1/nowhere?connect_timeout=2")
        } throws: { error in
            (error as? PostgresError)?.code == .connection && !"\(error)".contains("sekr1t-pw")
        }
    }
}
