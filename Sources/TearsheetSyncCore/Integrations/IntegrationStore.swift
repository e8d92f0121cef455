import BullhornClient
import Foundation
import PostgresClient

/// `integrations`: registration, lookup and the tearsheet watermark.
public struct IntegrationStore: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Registers or updates an integration. Its watermark is kept on update and empty when
    /// new, so that the first pass covers every tearsheet; a pause after Bullhorn refused its
    /// login is lifted (`FleetBullhornSessions`): registering it again is how it is fixed.
    public func upsert(
        id: String, clientID: String, username: String, endpoints: BullhornEndpoints, secrets: IntegrationSecrets,
        keys: SealingKeys, callsPerMinute: Int, corporation: String? = nil
    ) async throws {
        let sealed = Data(try secrets.seal(keys: keys, integrationID: id))
        var authURL: String?
        var restURL: String?
        var loginInfoURL: String?
        switch endpoints {
        case .fixed(let auth, let rest):
            authURL = auth
            restURL = rest
        case .discovered(let url):
            loginInfoURL = url
        }
        try await pool.query(
            """
            INSERT INTO integrations (id, provider, client_id, username, auth_url, rest_url, login_info_url,
                                      sealed_secrets, calls_per_minute, corporation, active, updated_at)
            VALUES (\(id), 'bullhorn', \(clientID), \(username), \(authURL), \(restURL), \(loginInfoURL),
                    \(sealed), \(callsPerMinute), \(corporation), true, now())
            ON CONFLICT (id) DO UPDATE SET
                client_id = EXCLUDED.client_id, username = EXCLUDED.username, auth_url = EXCLUDED.auth_url,
                rest_url = EXCLUDED.rest_url, login_info_url = EXCLUDED.login_info_url,
                sealed_secrets = EXCLUDED.sealed_secrets, calls_per_minute = EXCLUDED.calls_per_minute,
                corporation = EXCLUDED.corporation, active = true, updated_at = now()
            """)
        try await FleetBullhornSessions.forgetRefusals(of: id, pool: pool)
    }

    /// What `integration rekey` did to the integrations' secrets.
    public struct Resealing: Sendable, Equatable {
        /// Sealed under the previous key, now under the current one.
        public var resealed: [String] = []
        /// Already under the current key: left as they are, so that no worker rebuilds its client.
        public var current: [String] = []
        /// Open with neither key: left as they are.
        public var unopened: [String] = []
    }

    /// Seals again under the current key every integration's Bullhorn secrets that the
    /// previous one sealed: the second step of a key rotation. A row changed meanwhile (an
    /// `integration add`, which seals under the current key) is left as it is.
    public func reseal(keys: SealingKeys) async throws -> Resealing {
        var outcome = Resealing()
        for row in try await pool.query("SELECT id, sealed_secrets FROM integrations WHERE sealed_secrets IS NOT NULL ORDER BY id").rows {
            let id = try row.decode("id", as: String.self)
            let sealed = try row.decode("sealed_secrets", as: Data.self)
            let fresh: [UInt8]
            switch try IntegrationSecrets.rekeyed(Array(sealed), keys: keys, integrationID: id) {
            case .underCurrentKey: outcome.current.append(id); continue
            case .opensWithNeitherKey: outcome.unopened.append(id); continue
            case .resealed(let blob): fresh = blob
            }
            // Not written if an `integration add` sealed it anew meanwhile: under the current key too.
            let written = try await pool.query(
                "UPDATE integrations SET sealed_secrets = \(Data(fresh)) WHERE id = \(id) AND sealed_secrets = \(sealed) RETURNING id"
            ).rows
            if written.isEmpty { outcome.current.append(id) } else { outcome.resealed.append(id) }
        }
        return outcome
    }

    /// Active Bullhorn integrations, or those named (active or not: naming one is deliberate).
    public func load(ids: [String] = []) async throws -> [Integration] {
        let rows: [PostgresRow]
        let columns = "id, client_id, username, auth_url, rest_url, login_info_url, sealed_secrets, calls_per_minute, corporation, tearsheets_last_synced_at, active"
        if ids.isEmpty {
            rows = try await pool.query("SELECT \(unescaped: columns) FROM integrations WHERE active AND provider = 'bullhorn' ORDER BY id").rows
        } else {
            rows = try await pool.query("SELECT \(unescaped: columns) FROM integrations WHERE id = ANY(\(ids)) ORDER BY id").rows
            let found = Set(try rows.map { try $0.decode("id", as: String.self) })
            if let missing = ids.first(where: { !found.contains($0) }) {
                throw ConfigurationError(setting: "--integration", "no integration \(missing) (register it with `integration add`)")
            }
        }
        return try rows.map(Self.integration)
    }

    private static func integration(_ row: PostgresRow) throws -> Integration {
        let id = try row.decode("id", as: String.self)
        let endpoints: BullhornEndpoints
        if let auth = try row.decode("auth_url", as: String?.self), let rest = try row.decode("rest_url", as: String?.self) {
            endpoints = .fixed(authURL: auth, restURL: rest)
        } else {
            endpoints = .discovered(loginInfoURL: try row.decode("login_info_url", as: String?.self) ?? BullhornEndpoints.defaultLoginInfoURL)
        }
        guard let sealed = try row.decode("sealed_secrets", as: Data?.self),
            let clientID = try row.decode("client_id", as: String?.self), let username = try row.decode("username", as: String?.self)
        else {
            throw ConfigurationError(setting: "integrations", "integration \(id) has no Bullhorn credentials (run `integration add`)")
        }
        return Integration(
            id: id, clientID: clientID, username: username, endpoints: endpoints, sealedSecrets: Array(sealed),
            callsPerMinute: try row.decode("calls_per_minute", as: Int.self),
            corporation: try row.decode("corporation", as: String?.self),
            tearsheetsLastSyncedAt: try row.decode("tearsheets_last_synced_at", as: Date?.self),
            active: try row.decode("active", as: Bool.self))
    }

    /// Records when the integration's pass ended and how (`succeeded`, or `failed: why`).
    public func recordPass(of id: String, outcome: String) async throws {
        try await pool.query("UPDATE integrations SET last_pass_at = now(), last_pass_outcome = \(outcome) WHERE id = \(id)")
    }

    /// The integration's standing, for `trace`; nil when there is no such integration.
    public struct Standing: Sendable, Codable, Equatable {
        public let active: Bool
        public let watermark: Date?
        public let lastPassAt: Date?
        public let lastPassOutcome: String?
    }

    public func standing(of id: String) async throws -> Standing? {
        try await pool.query(
            "SELECT active, tearsheets_last_synced_at, last_pass_at, last_pass_outcome FROM integrations WHERE id = \(id)"
        ).rows.first.map { row in
            Standing(
                active: try row.decode("active"), watermark: try row.decode("tearsheets_last_synced_at"), lastPassAt: try row.decode("last_pass_at"),
                lastPassOutcome: try row.decode("last_pass_outcome"))
        }
    }

    /// An integration as `integration list` shows it: its registration and its passes, and
    /// nothing sealed.
    public struct Registration: Sendable, Codable, Equatable {
        public let id: String
        public let provider: String
        public let active: Bool
        public let username: String?
        public let callsPerMinute: Int
        /// Whose call budget it spends: nil when its own.
        public let corporation: String?
        public let watermark: Date?
        public let lastPassAt: Date?
        public let lastPassOutcome: String?
    }

    /// Every integration, active or not, by id.
    public func registrations() async throws -> [Registration] {
        try await pool.query(
            """
            SELECT id, provider, active, username, calls_per_minute, corporation, tearsheets_last_synced_at, last_pass_at, last_pass_outcome
              FROM integrations ORDER BY id
            """
        ).rows.map { row in
            Registration(
                id: try row.decode("id"), provider: try row.decode("provider"), active: try row.decode("active"),
                username: try row.decode("username"), callsPerMinute: try row.decode("calls_per_minute"),
                corporation: try row.decode("corporation"), watermark: try row.decode("tearsheets_last_synced_at"),
                lastPassAt: try row.decode("last_pass_at"), lastPassOutcome: try row.decode("last_pass_outcome"))
        }
    }

    public func watermark(of id: String) async throws -> Date? {
        try await pool.query("SELECT tearsheets_last_synced_at FROM integrations WHERE id = \(id)").scalar(Date?.self)
    }
}
