import BullhornClient
import Crypto
import Foundation
import PostgresClient

/// One integration's Bullhorn REST session, shared by every process of the fleet through
/// `bullhorn_sessions`: a publisher pass, the workers, `trace`, on any machine, use the
/// session kept there instead of logging in for themselves, and a session Bullhorn refused is
/// renewed by one process at a time, under an advisory lock, with the refresh token kept
/// beside it (refresh tokens work once). Without it every process, and every pass of a
/// looping publisher, opened a session of its own, and Bullhorn counts them against the
/// corporation's limit (about 50) until each times out.
///
/// The session and its refresh token are sealed with `TSYNC_SECRET_KEY` (the integration id
/// bound in), with a digest of the credentials that made them: a client whose credentials
/// differ (the integration was given another API user) does not adopt the session, and its
/// first renewal replaces it.
public struct FleetBullhornSessions: BullhornSessionStore {
    let pool: PostgresPool
    let integrationID: String
    let secretKey: [UInt8]
    let credentialsDigest: String

    public init(pool: PostgresPool, integrationID: String, secretKey: [UInt8], credentials: BullhornCredentials, endpoints: BullhornEndpoints) {
        self.pool = pool
        self.integrationID = integrationID
        self.secretKey = secretKey
        credentialsDigest = Self.digest(credentials, endpoints)
    }

    public func load() async throws -> SharedBullhornSession? {
        let rows = try await pool.query("SELECT generation, sealed FROM bullhorn_sessions WHERE integration_id = \(integrationID)").rows
        return try rows.first.flatMap(adoptable)
    }

    public func renew(
        replacing stale: Int?, establish: @Sendable (SharedBullhornSession?) async throws -> SharedBullhornSession
    ) async throws -> SharedBullhornSession {
        try await pool.withTransaction { connection in
            // Held while Bullhorn logs in (a few calls): the integration's other processes that
            // were refused meanwhile wait here, then find the new session and use it. Not for
            // ever: a login stuck on a silent Bullhorn fails the waiters' calls (retriable)
            // rather than hold their database connections.
            try await connection.query("SET LOCAL lock_timeout = '30s'")
            try await connection.advisoryTransactionLock(AdvisoryLockKey.key("tearsheet-sync.bullhorn-session", integrationID))
            let row = try await connection.query(
                "SELECT generation, sealed FROM bullhorn_sessions WHERE integration_id = \(integrationID)"
            ).rows.first
            let kept = try row.flatMap(adoptable)
            if let kept, stale.map({ kept.generation > $0 }) ?? true { return kept }
            var fresh = try await establish(kept)
            FleetMetrics.bullhornSessionsOpened(integrationID).increment()
            // The generation counts on past a session this client could not adopt, so that a
            // process still holding that one sees this one as newer.
            fresh.generation = try (row?.decode("generation", as: Int.self) ?? 0) + 1
            let sealed = Data(try SealedJSON.seal(Kept(fresh, credentials: credentialsDigest), key: secretKey, context: sealingContext))
            try await connection.query(
                """
                INSERT INTO bullhorn_sessions (integration_id, generation, sealed, established_at)
                VALUES (\(integrationID), \(fresh.generation), \(sealed), now())
                ON CONFLICT (integration_id) DO UPDATE SET
                    generation = EXCLUDED.generation, sealed = EXCLUDED.sealed, established_at = EXCLUDED.established_at
                """)
            return fresh
        }
    }

    /// The kept session, unless it was made with other credentials or does not open with
    /// this key (`TSYNC_SECRET_KEY` changed): then it is as if none were kept.
    private func adoptable(_ row: PostgresRow) throws -> SharedBullhornSession? {
        let generation = try row.decode("generation", as: Int.self)
        let sealed = try row.decode("sealed", as: Data.self)
        guard let kept = try? SealedJSON.open(Array(sealed), as: Kept.self, key: secretKey, context: sealingContext),
            kept.credentials == credentialsDigest
        else { return nil }
        return SharedBullhornSession(bhRestToken: kept.bhRestToken, restURL: kept.restURL, refreshToken: kept.refreshToken, generation: generation)
    }

    private var sealingContext: String { "bullhorn-session:\(integrationID)" }

    /// What is sealed: the session, and whose credentials made it.
    private struct Kept: Codable {
        let bhRestToken: String
        let restURL: String
        let refreshToken: String?
        let credentials: String

        init(_ session: SharedBullhornSession, credentials: String) {
            bhRestToken = session.bhRestToken
            restURL = session.restURL
            refreshToken = session.refreshToken
            self.credentials = credentials
        }
    }

    /// SHA-256 of everything that decides which Bullhorn user a login becomes; kept only
    /// inside the sealed blob.
    static func digest(_ credentials: BullhornCredentials, _ endpoints: BullhornEndpoints) -> String {
        let endpointText: String
        switch endpoints {
        case .fixed(let auth, let rest): endpointText = "fixed\u{0}\(auth)\u{0}\(rest)"
        case .discovered(let url): endpointText = "discovered\u{0}\(url)"
        }
        let fields = [credentials.clientID, credentials.clientSecret, credentials.username, credentials.password, endpointText]
        return SHA256.hash(data: Data(fields.joined(separator: "\u{0}").utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
