import AMQPClient
import Logging
import PostgresClient

/// Opens the connections a command needs at start. A failure here is a configuration problem
/// from the operator's point of view, so it names the setting to check (exit code 2).
///
/// Long-running services (`work`, `publish --every`) pass a `patience`: a server that is down
/// for a moment (restarting, not up yet beside the service) is waited for, so that a fleet
/// started with, or during a restart of, its database or broker does not exit; a wrong
/// password, host or database still stops it at once.
public enum StartupConnections {
    public static func database(_ settings: Settings, applicationName: String = "tearsheet-sync") async throws -> PostgresConnection {
        let url = try settings.databaseURL()
        do {
            return try await PostgresConnection.connect(url, applicationName: applicationName)
        } catch let error as PostgresError {
            throw ConfigurationError(setting: Settings.databaseURLVariable, "cannot connect: \(error.message)")
        }
    }

    /// How long a long-running service starting beside its database or broker waits for them.
    public static let servicePatience = Duration.seconds(60)

    /// Opens `connections` pooled connections now (at least one; see `PostgresPool.warm`), so
    /// that a bad database setting stops the command at start rather than at first use, and
    /// reads the schema's version: a database not migrated to this build's schema stops it too
    /// (`tearsheet-sync migrate`), rather than fail every pass and batch on a missing table.
    /// A service waits for a migration running beside it (a deployment's setup job) as it
    /// waits for a server coming up.
    public static func check(_ pool: PostgresPool, connections: Int = 1, patience: Duration = .zero, logger: Logger? = nil) async throws {
        try await retrying(patience: patience, logger: logger, what: "database") {
            try await pool.warm(max(connections, 1))
            let version = try await pool.withConnection { try await SchemaMigrator().currentVersion($0) }
            guard version >= SchemaMigrator.requiredVersion else { throw SchemaBehind(version: version) }
        } failure: { error in
            if let behind = error as? SchemaBehind {
                return (ConfigurationError(setting: "database schema", "\(behind)"), mayPass: true)
            }
            guard let error = error as? PostgresError, error.code == .connection else { return nil }
            return (ConfigurationError(setting: Settings.databaseURLVariable, "cannot connect: \(error.message)"), mayPass: isMomentary(error))
        }
    }

    /// The database's schema is older than this build's.
    private struct SchemaBehind: Error, CustomStringConvertible {
        let version: Int
        var description: String {
            "at version \(version), this tearsheet-sync needs \(SchemaMigrator.requiredVersion): run `tearsheet-sync migrate` first"
        }
    }

    public static func broker(_ settings: Settings, patience: Duration = .zero, logger: Logger? = nil) async throws -> AMQPConnection {
        let configuration = try settings.amqp()
        return try await retrying(patience: patience, logger: logger, what: "broker") {
            try await AMQPConnection.connect(configuration)
        } failure: { error in
            guard let error = error as? AMQPError else { return nil }
            return (
                ConfigurationError(setting: Settings.amqpURLVariable, "cannot connect to \(configuration): \(error.message)"),
                mayPass: error.code == .transport
            )
        }
    }

    /// A connection failure that a server coming up or going down gives (refused, reset,
    /// "the database system is starting up / shutting down", a timeout), not one a setting
    /// gives (authentication, pg_hba.conf, a missing database or role, a bad option).
    static func isMomentary(_ error: PostgresError) -> Bool {
        let settingProblems = [
            "password authentication failed", "pg_hba.conf", "does not exist", "invalid connection option", "invalid URI",
            "certificate", "authentication",
        ]
        return !settingProblems.contains { error.message.localizedCaseInsensitiveContains($0) }
    }

    /// Runs `attempt` until it succeeds, fails for good, or `patience` is spent. `failure` says
    /// what a failure means for the operator, and whether it may pass; nil: not ours to name.
    private static func retrying<T>(
        patience: Duration, logger: Logger?, what: String, _ attempt: () async throws -> T,
        failure: (any Error) -> (ConfigurationError, mayPass: Bool)?
    ) async throws -> T {
        let started = ContinuousClock.now
        var pause = Duration.milliseconds(500)
        while true {
            do {
                return try await attempt()
            } catch {
                guard let (named, mayPass) = failure(error) else { throw error }
                guard mayPass, ContinuousClock.now - started + pause < patience else { throw named }
                logger?.warning("\(what) not ready yet; waiting for it", metadata: ["error": "\(named)"])
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
    }
}
