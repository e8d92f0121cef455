import Foundation
import IntegrationSupport
import PostgresClient
import Testing

/// `sslmode` as libpq reads it, against the local server's TLS.
@Suite struct PostgresTLSTests {
    private func url(_ query: String) -> String {
        var components = URLComponents(string: TestServices.adminDatabaseURL)!
        components.host = "localhost"
        components.percentEncodedQuery = query
        return components.string!
    }

    @Test func verifyFullWithTheCAGivesAnEncryptedSession() async throws {
        let connection = try await PostgresConnection.connect(url("sslmode=verify-full&sslrootcert=\(TestServices.tlsCAPath)"))
        #expect(try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar(Bool.self))
        await connection.close()
    }

    @Test func sslmodeDisableIsHonouredToo() async throws {
        let connection = try await PostgresConnection.connect(url("sslmode=disable"))
        #expect(try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").scalar(Bool.self) == false)
        await connection.close()
    }

    @Test func verifyFullWithoutTheCAIsRefused() async throws {
        await #expect(throws: PostgresError.self) {
            _ = try await PostgresConnection.connect(url("sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"))
        }
    }
}
