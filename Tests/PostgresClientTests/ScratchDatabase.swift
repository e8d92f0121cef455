import IntegrationSupport
import PostgresClient

/// Runs `body` with a connection to a database of its own on the real server (its URL too),
/// and drops the database afterwards, whether `body` succeeded or not.
func withScratchDatabase(_ body: (String, PostgresConnection) async throws -> Void) async throws {
    try await TestServices.withDatabase { url in
        let connection = try await PostgresConnection.connect(url)
        do {
            try await body(url, connection)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    }
}
