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
