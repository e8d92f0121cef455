import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// A service started beside its database waits for it; a wrong setting still stops it at once.
@Suite struct StartupConnectionsTests {
    @Test func aDatabaseThatIsNotUpYetIsWaitedForUpToThePatience() async throws {
        let pool = PostgresPool(connectionString: "postgresql://postgres@127.0.0.1:1/nothing_listens_here")
        let started = ContinuousClock.now
        await #expect(throws: ConfigurationError.self) { try await StartupConnections.check(pool, patience: .seconds(3)) }
        #expect(ContinuousClock.now - started >= .seconds(1), "it waited")
        #expect(ContinuousClock.now - started < .seconds(10))
        await pool.close()
    }

    @Test func aDatabaseThatComesUpWithinThePatienceIsUsed() async throws {
        let url = try await TestServices.createDatabase()
        try await Self.migrate(url)
        var components = URLComponents(string: url)!
        let proxyPort = try TCPProxy(toPort: components.port ?? 5432)  // listening, forwarding only once made
        proxyPort.close()  // now nothing listens on its port: connections are refused
        components.port = proxyPort.port
        let pool = PostgresPool(connectionString: components.string!)
        let late = Task {
            try await Task.sleep(for: .seconds(1))
            return try TCPProxy(toPort: URLComponents(string: url)!.port ?? 5432, onPort: proxyPort.port)
        }
        try await StartupConnections.check(pool, patience: .seconds(20))
        try await late.value.close()
        await pool.close()
        try await TestServices.dropDatabase(url)
    }

    private static func migrate(_ url: String, migrations: [SchemaMigrations.Migration] = SchemaMigrations.all) async throws {
        let connection = try await PostgresConnection.connect(url)
        try await SchemaMigrator(migrations: migrations).migrate(connection)
        await connection.close()
    }

    @Test func aDatabaseBehindThisBuildsSchemaStopsACommandAtOnceNamingMigrate() async throws {
        try await TestServices.withDatabase { url in
            let pool = PostgresPool(connectionString: url)
            for applied in [0, SchemaMigrator.requiredVersion - 1] {
                try await Self.migrate(url, migrations: SchemaMigrations.all.filter { $0.version <= applied })
                let error = await #expect(throws: ConfigurationError.self) { try await StartupConnections.check(pool) }
                #expect(error?.setting == "database schema")
                #expect(error?.problem.contains("at version \(applied), this tearsheet-sync needs \(SchemaMigrator.requiredVersion)") == true)
                #expect(error?.problem.contains("tearsheet-sync migrate") == true)
            }
            try await Self.migrate(url)
            try await StartupConnections.check(pool)
            await pool.close()
        }
    }

    @Test func aServiceWaitsForAMigrationRunningBesideIt() async throws {
        try await TestServices.withDatabase { url in
            let pool = PostgresPool(connectionString: url)
            let migration = Task {
                try await Task.sleep(for: .seconds(1))
                try await Self.migrate(url)
            }
            let started = ContinuousClock.now
            try await StartupConnections.check(pool, patience: .seconds(20))
            #expect(ContinuousClock.now - started >= .seconds(1), "it waited for the migration")
            try await migration.value
            await pool.close()
        }
    }

    @Test func aWrongPasswordStopsAtOnceWhateverThePatience() async throws {
        var components = URLComponents(string: TestServices.adminDatabaseURL)!
        components.user = "tsync_nobody"
        components.password = "wrong"
        let pool = PostgresPool(connectionString: components.string!)
        let started = ContinuousClock.now
        await #expect(throws: ConfigurationError.self) { try await StartupConnections.check(pool, patience: .seconds(30)) }
        #expect(ContinuousClock.now - started < .seconds(5), "a setting problem is not waited out")
        await pool.close()
    }
}
