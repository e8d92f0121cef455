import AMQPClient
import Foundation
import Logging
import PostgresClient

/// The process settings of ../shared/contract.md: environment variables, each overridable by
/// a command-line flag. Each accessor validates its setting when a command first needs it,
/// so that a worker does not demand settings only the publisher uses.
public struct Settings: Sendable {
    public static let amqpURLVariable = "TSYNC_AMQP_URL"
    public static let databaseURLVariable = "TSYNC_DATABASE_URL"
    public static let topologyVariable = "TSYNC_TOPOLOGY"
    public static let logFormatVariable = "TSYNC_LOG_FORMAT"
    public static let logLevelVariable = "TSYNC_LOG_LEVEL"
    public static let secretKeyVariable = "TSYNC_SECRET_KEY"
    public static let previousSecretKeyVariable = "TSYNC_PREVIOUS_SECRET_KEY"
    public static let managementURLVariable = "TSYNC_MANAGEMENT_URL"

    public static let defaultAMQPURL = "amqp://guest:guest@127.0.0.1:5672/%2F"
    public static let defaultManagementURL = "http://guest:guest@127.0.0.1:15672"

    private let values: [String: String]

    /// `environment` is the process environment; `overrides` the flags given, by variable name.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, overrides: [String: String?] = [:]) {
        var values = environment.filter { $0.key.hasPrefix("TSYNC_") }
        for (key, value) in overrides {
            if let value { values[key] = value }
        }
        self.values = values
    }

    private func value(_ name: String) -> String? {
        guard let value = values[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    public func amqp() throws -> AMQPConfiguration {
        do {
            return try AMQPConfiguration(url: value(Self.amqpURLVariable) ?? Self.defaultAMQPURL)
        } catch let error as AMQPError {
            throw ConfigurationError(setting: Self.amqpURLVariable, error.message)
        }
    }

    public func databaseURL() throws -> String {
        guard let url = value(Self.databaseURLVariable) else {
            throw ConfigurationError(setting: Self.databaseURLVariable, "not set (a libpq URI such as postgresql://user@host:5432/db, or a conninfo string)")
        }
        do {
            try PostgresConnectionString.validate(url)
        } catch let error as PostgresError {
            throw ConfigurationError(setting: Self.databaseURLVariable, error.message)
        }
        return url
    }

    public func topologyPath() -> String {
        value(Self.topologyVariable) ?? "topology.json"
    }

    public func managementURL() throws -> URL {
        let raw = value(Self.managementURLVariable) ?? Self.defaultManagementURL
        guard let url = URL(string: raw), let scheme = url.scheme, scheme == "http" || scheme == "https", url.host != nil else {
            throw ConfigurationError(setting: Self.managementURLVariable, "must be an http:// or https:// URL with credentials")
        }
        return url
    }

    public enum LogFormat: String, Sendable {
        case text, json
    }

    public func logFormat() throws -> LogFormat {
        guard let raw = value(Self.logFormatVariable) else { return .text }
        guard let format = LogFormat(rawValue: raw.lowercased()) else {
            throw ConfigurationError(setting: Self.logFormatVariable, "must be text or json")
        }
        return format
    }

    public func logLevel() throws -> Logger.Level {
        guard let raw = value(Self.logLevelVariable) else { return .info }
        guard let level = Logger.Level(rawValue: raw.lowercased()) else {
            throw ConfigurationError(setting: Self.logLevelVariable, "must be one of trace, debug, info, notice, warning, error, critical")
        }
        return level
    }

    /// The 32-byte key that seals Bullhorn secrets and sessions at rest, and during a rotation
    /// the one it replaces, which still opens what it sealed.
    public func sealingKeys() throws -> SealingKeys {
        guard let raw = value(Self.secretKeyVariable) else {
            throw ConfigurationError(setting: Self.secretKeyVariable, "not set (base64 of 32 random bytes, e.g. `openssl rand -base64 32`)")
        }
        return SealingKeys(
            current: try Self.key(raw, setting: Self.secretKeyVariable),
            previous: try value(Self.previousSecretKeyVariable).map { try Self.key($0, setting: Self.previousSecretKeyVariable) })
    }

    private static func key(_ raw: String, setting: String) throws -> [UInt8] {
        guard let data = Data(base64Encoded: raw), data.count == 32 else {
            throw ConfigurationError(setting: setting, "must be base64 of exactly 32 bytes")
        }
        return Array(data)
    }
}
