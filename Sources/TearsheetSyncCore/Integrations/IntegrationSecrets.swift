import Crypto
import Foundation

/// A Bullhorn integration's client secret and password, sealed at rest with AES-GCM under
/// `TSYNC_SECRET_KEY`. The integration id is bound in as associated data, so a sealed blob
/// copied onto another integration's row does not open.
public struct IntegrationSecrets: Sendable, Equatable, Codable, CustomStringConvertible {
    public var clientSecret: String
    public var password: String

    public init(clientSecret: String, password: String) {
        self.clientSecret = clientSecret
        self.password = password
    }

    public var description: String { "IntegrationSecrets(<sealed>)" }

    /// A fresh sealing key of the size `TSYNC_SECRET_KEY` holds (32 bytes, AES-256), for a
    /// demo or a test that makes its own integrations.
    public static func randomKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    public func seal(keys: SealingKeys, integrationID: String) throws -> [UInt8] {
        try SealedJSON.seal(self, keys: keys, context: integrationID)
    }

    public static func open(_ sealed: [UInt8], keys: SealingKeys, integrationID: String) throws -> IntegrationSecrets {
        do {
            return try SealedJSON.open(sealed, as: IntegrationSecrets.self, keys: keys, context: integrationID)
        } catch {
            let tried = keys.previous == nil ? "TSYNC_SECRET_KEY" : "TSYNC_SECRET_KEY or TSYNC_PREVIOUS_SECRET_KEY"
            throw SecretsError("the Bullhorn secrets of integration \(integrationID) do not open with \(tried) (wrong key, or sealed for another integration)")
        }
    }

    /// `sealed` as a key rotation's `integration rekey` finds it (`SealedJSON.rekeyed`).
    static func rekeyed(_ sealed: [UInt8], keys: SealingKeys, integrationID: String) throws -> SealedJSON.Rekeyed {
        try SealedJSON.rekeyed(sealed, as: IntegrationSecrets.self, keys: keys, context: integrationID)
    }

    /// Reads `{"clientSecret": "...", "password": "..."}` from a file, else the environment's
    /// BULLHORN_CLIENT_SECRET and BULLHORN_PASSWORD: never from the command line, where any
    /// user could read them in the process list.
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> IntegrationSecrets {
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError(setting: "--secrets-file", "cannot read \(file)")
            }
            guard let secrets = try? JSONDecoder().decode(IntegrationSecrets.self, from: data),
                !secrets.clientSecret.isEmpty, !secrets.password.isEmpty
            else {
                throw ConfigurationError(setting: "--secrets-file", "\(file) must hold {\"clientSecret\": \"…\", \"password\": \"…\"}")
            }
            return secrets
        }
        guard let secret = environment["BULLHORN_CLIENT_SECRET"], !secret.isEmpty else {
            throw ConfigurationError(setting: "BULLHORN_CLIENT_SECRET", "not set (or pass --secrets-file)")
        }
        guard let password = environment["BULLHORN_PASSWORD"], !password.isEmpty else {
            throw ConfigurationError(setting: "BULLHORN_PASSWORD", "not set (or pass --secrets-file)")
        }
        return IntegrationSecrets(clientSecret: secret, password: password)
    }
}

public struct SecretsError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
