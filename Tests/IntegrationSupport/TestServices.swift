import Foundation
import PostgresClient

/// Where the integration tests find the real broker and database (`deploy/local/services.sh
/// start` provides both). A missing service fails the test: integration tests never skip.
public enum TestServices {
    public static var amqpURL: String {
        ProcessInfo.processInfo.environment["TSYNC_TEST_AMQP_URL"] ?? "amqp://guest:guest@127.0.0.1:5682/%2F"
    }

    public static var managementURL: String {
        ProcessInfo.processInfo.environment["TSYNC_TEST_MANAGEMENT_URL"] ?? "http://guest:guest@127.0.0.1:15682"
    }

    /// A database the tests may create other databases from.
    public static var adminDatabaseURL: String {
        ProcessInfo.processInfo.environment["TSYNC_TEST_DATABASE_URL"] ?? "postgresql://postgres@127.0.0.1:5442/postgres"
    }

    /// The CA that signed the local services' TLS certificate (for `localhost`).
    public static var tlsCAPath: String {
        ProcessInfo.processInfo.environment["TSYNC_TEST_TLS_CA"]
            ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".local-services/tls/ca.pem").path
    }

    public static var amqpsPort: Int {
        Int(ProcessInfo.processInfo.environment["TSYNC_TEST_AMQPS_PORT"] ?? "") ?? 5681
    }

    /// A name no other test run uses, for queues, exchanges and databases.
    public static func uniqueName(_ prefix: String) -> String {
        "\(prefix)_\(UInt32.random(in: 0...UInt32.max))_\(ProcessInfo.processInfo.processIdentifier)"
    }

    /// Creates an empty database (on the shared server unless `adminURL` names another) and
    /// returns its URL; drop it with `dropDatabase`.
    public static func createDatabase(_ prefix: String = "tsync_test", adminURL: String = adminDatabaseURL) async throws -> String {
        let name = uniqueName(prefix).lowercased()
        let admin = try await PostgresConnection.connect(adminURL)
        defer { Task { await admin.close() } }
        try await admin.executeScript(unsafeSQL: "CREATE DATABASE \(name)")
        return databaseURL(named: name, adminURL: adminURL)
    }

    /// Runs `body` with the URL of an empty database of its own, dropped afterwards whether
    /// `body` succeeded or not.
    public static func withDatabase<T>(_ prefix: String = "tsync_test", _ body: (String) async throws -> T) async throws -> T {
        let url = try await createDatabase(prefix)
        do {
            let value = try await body(url)
            try await dropDatabase(url)
            return value
        } catch {
            try? await dropDatabase(url)
            throw error
        }
    }

    public static func dropDatabase(_ url: String) async throws {
        guard var components = URLComponents(string: url), case let name = components.path.dropFirst(), !name.isEmpty else { return }
        components.path = URLComponents(string: adminDatabaseURL)!.path  // the same maintenance database, on the server of `url`
        let admin = try await PostgresConnection.connect(components.string!)
        try await admin.executeScript(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        await admin.close()
    }

    public static func databaseURL(named name: String, adminURL: String = adminDatabaseURL) -> String {
        var components = URLComponents(string: adminURL)!
        components.path = "/\(name)"
        return components.string!
    }
}
