import Foundation
import IntegrationSupport
import Testing

@testable import PostgresClient

/// A statement text the connection runs again is prepared on the server and run by name, with
/// the same answers; a session that loses its statements, a text the server refuses and a
/// stream of one-off texts each leave the connection working (real PostgreSQL).
@Suite struct PreparedStatementTests {
    private func withConnection(_ body: (PostgresConnection) async throws -> Void) async throws {
        try await withScratchDatabase { _, connection in try await body(connection) }
    }

    /// The statements this session has prepared, by their text (but this listing's own).
    private func serverSide(_ connection: PostgresConnection) async throws -> [String] {
        try await connection.query("SELECT statement FROM pg_prepared_statements WHERE statement NOT LIKE \("%pg_prepared_statements%") ORDER BY name")
            .rows.map { try $0.decode("statement") }
    }

    private func lookup(_ ids: [Int64], _ connection: PostgresConnection) async throws -> [Int64] {
        try await connection.query("SELECT id FROM items WHERE id = ANY(\(ids)) ORDER BY id").rows.map { try $0.decode("id") }
    }

    @Test func aTextRunTwiceIsPreparedOnceAndAnswersAsBefore() async throws {
        try await withConnection { db in
            try await db.executeScript(unsafeSQL: "CREATE TABLE items (id bigint PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100)")
            #expect(try await lookup([3, 1, 200], db) == [1, 3])
            #expect(try await serverSide(db).isEmpty, "a text seen once runs unprepared")
            #expect(try await lookup([5, 4], db) == [4, 5])
            #expect(try await serverSide(db) == ["SELECT id FROM items WHERE id = ANY($1) ORDER BY id"])
            for size in [1, 50, 99] {  // arrays of any size are one parameter: the same statement
                #expect(try await lookup(Array(1...Int64(size)), db) == Array(1...Int64(size)))
            }
            #expect(try await serverSide(db).count == 1)
        }
    }

    @Test func aSessionThatLostItsStatementsRunsTheNextAgainUnpreparedAndPreparesAfresh() async throws {
        try await withConnection { db in
            try await db.executeScript(unsafeSQL: "CREATE TABLE items (id bigint PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 10)")
            _ = try await lookup([1], db)
            _ = try await lookup([2], db)
            #expect(try await serverSide(db).count == 1)
            try await db.executeScript(unsafeSQL: "DEALLOCATE ALL")
            #expect(try await lookup([3], db) == [3], "run again, unprepared, outside a transaction")
            #expect(db.prepared.count == 0)
            _ = try await lookup([4], db)
            #expect(try await serverSide(db).count == 1, "prepared again once seen twice")
            #expect(try await lookup([5, 6], db) == [5, 6])
        }
    }

    /// One statement of ours lost while the server keeps others: the names issued later are new
    /// ones, never a name the server still holds.
    @Test func aSessionThatLostOneStatementPreparesUnderNewNames() async throws {
        try await withConnection { db in
            try await db.executeScript(unsafeSQL: "CREATE TABLE items (id bigint PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 10)")
            for _ in 0..<2 {
                _ = try await lookup([1], db)
                _ = try await db.query("SELECT count(*) FROM items WHERE id > \(Int64(0))")
            }
            let names = try await db.query("SELECT name FROM pg_prepared_statements WHERE statement LIKE \("%ANY%") ORDER BY name").rows
            let lookupName: String = try #require(names.first).decode("name")
            try await db.executeScript(unsafeSQL: "DEALLOCATE \(lookupName)")
            #expect(try await lookup([2], db) == [2])
            for _ in 0..<3 {
                #expect(try await lookup([3], db) == [3])
                let counted = try await db.query("SELECT count(*) FROM items WHERE id > \(Int64(0))").scalar(Int.self)
                #expect(counted == 10)
            }
            #expect(db.prepared.count == 2, "both prepared again, under names the server did not hold")
        }
    }

    @Test func aTextTheServerRefusesFailsWithItsErrorEveryTimeAndTheConnectionCarriesOn() async throws {
        try await withConnection { db in
            for _ in 0..<3 {
                await #expect(throws: PostgresError.self) { try await db.query("SELECT id FROM no_such_table WHERE id = \(Int64(1))") }
            }
            #expect(db.prepared.count == 0)
            let answer = try await db.query("SELECT \(Int64(41)) + 1 AS answer").scalar(Int.self)
            #expect(answer == 42)
        }
    }

    @Test func theSameTextWithOtherParameterTypesIsAnotherStatement() async throws {
        try await withConnection { db in
            for _ in 0..<2 {
                let number = try await db.query("SELECT \(Int64(7))::text AS v").scalar(String.self)
                let word = try await db.query("SELECT \("seven")::text AS v").scalar(String.self)
                #expect(number == "7" && word == "seven")
            }
            #expect(db.prepared.count == 2)
        }
    }

    @Test func oneOffTextsBeyondTheCapacityRunUnpreparedAndAreNotKept() {
        let statements = PreparedStatements(capacity: 2)
        let keys = (0..<20).map { PreparedStatements.Key(sql: "SELECT \($0)", types: []) }
        for key in keys { #expect(!statements.shouldPrepare(key), "seen once: not yet") }
        #expect(!statements.shouldPrepare(keys[0]), "forgotten when the one-off texts piled up (over 4 x capacity)")
        #expect(statements.shouldPrepare(keys[0]))
        statements.prepared(keys[0], as: statements.nextName)
        #expect(!statements.shouldPrepare(keys[1]))
        #expect(statements.shouldPrepare(keys[1]))
        statements.prepared(keys[1], as: statements.nextName)
        #expect(!statements.shouldPrepare(keys[2]) && !statements.shouldPrepare(keys[2]), "full: no more")
        #expect(statements.name(for: keys[1]) == "tsync_2")
    }
}
