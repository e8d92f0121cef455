import AMQPClient
import PostgresClient

/// Opens the connections a command needs at start. A failure here is a configuration problem
/// from the operator's point of view, so it names the setting to check (exit code 2).
public enum StartupConnections {
    public static func database(_ settings: Settings, applicationName: String = "tearsheet-sync") async throws -> PostgresConnection {
        let url = try settings.databaseURL()
        do {
            return try await PostgresConnection.connect(url, applicationName: applicationName)
        } catch let error as PostgresError {
            throw ConfigurationError(setting: Settings.databaseURLVariable, "cannot connect: \(error.message)")
        }
    }

    /// Opens one pooled connection now, so that a bad database setting stops the command at
    /// start rather than at first use.
    public static func check(_ pool: PostgresPool) async throws {
        do {
            try await pool.query("SELECT 1")
        } catch let error as PostgresError where error.code == .connection {
            throw ConfigurationError(setting: Settings.databaseURLVariable, "cannot connect: \(error.message)")
        }
    }

    public static func broker(_ settings: Settings) async throws -> AMQPConnection {
        let configuration = try settings.amqp()
        do {
            return try await AMQPConnection.connect(configuration)
        } catch let error as AMQPError {
            throw ConfigurationError(setting: Settings.amqpURLVariable, "cannot connect to \(configuration): \(error.message)")
        }
    }
}
