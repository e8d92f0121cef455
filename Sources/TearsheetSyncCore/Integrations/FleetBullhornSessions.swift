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
/// first renewal replaces it. A login Bullhorn refuses for good (bad credentials, the
/// session limit reached) is recorded, and the fleet makes no other for `pause(refusals)`:
/// without that, every batch retry of every worker would run the whole login again.
public struct FleetBullhornSessions: BullhornSessionStore, CustomStringConvertible {
    let pool: PostgresPool
    let integrationID: String
    let secretKey: [UInt8]
    let credentialsDigest: String

    /// How long a process waits for another's renewal before its call fails (retriable).
    static let renewalWait = Duration.seconds(60)

    public init(pool: PostgresPool, integrationID: String, secretKey: [UInt8], credentials: BullhornCredentials, endpoints: BullhornEndpoints) {
        self.pool = pool
        self.integrationID = integrationID
        self.secretKey = secretKey
        credentialsDigest = Self.digest(credentials, endpoints)
    }

    public var description: String { "FleetBullhornSessions(\(integrationID))" }

    /// The fleet's pause after `refusals` refused logins in a row: 30 s, doubling, at most 10 min.
    static func pause(refusals: Int) -> Duration {
        .seconds(min(30 << min(max(refusals - 1, 0), 5), 600))
    }

    /// Lifts the pause after a refused login: the operator registered the integration again
    /// (its credentials fixed, or what Bullhorn refused put right), so the next call tries.
    static func forgetRefusals(of integrationID: String, pool: PostgresPool) async throws {
        try await pool.query(
            "UPDATE bullhorn_sessions SET refusals = 0, refused_at = NULL, refusal = NULL WHERE integration_id = \(integrationID) AND refusals > 0")
    }

    public func load() async throws -> SharedBullhornSession? {
        try await row(on: nil)?.session
    }

    public func renew(
        replacing stale: Int?, establish: @Sendable (String?) async throws -> SharedBullhornSession
    ) async throws -> SharedBullhornSession {
        let started = ContinuousClock.now
        while true {
            let attempt = try await pool.withTransaction { connection -> Result<SharedBullhornSession, any Error>? in
                // Held while Bullhorn logs in (a few calls), and released with the transaction
                // however it ends. The others refused meanwhile do not queue on it with a
                // connection each: they try again every 200 ms, and once it is free find the
                // session it made.
                guard try await connection.tryAdvisoryTransactionLock(AdvisoryLockKey.key("tearsheet-sync.bullhorn-session", integrationID)) else {
                    return nil
                }
                // A server's idle-in-transaction timeout (some managed services set one) must not
                // end the transaction while Bullhorn answers.
                try await connection.query("SET LOCAL idle_in_transaction_session_timeout = 0")
                return try await renewLocked(on: connection, replacing: stale, establish: establish)
            }
            if let attempt { return try attempt.get() }
            try await Task.sleep(for: .milliseconds(200))
            guard ContinuousClock.now - started < Self.renewalWait else {
                throw SessionStoreBusy(integrationID: integrationID, waited: Self.renewalWait)
            }
        }
    }

    /// Under the lock: the kept session if newer than `stale`, the recorded refusal while the
    /// fleet pauses, else a login, kept (or its failure, and the refresh token it leaves).
    /// The login's failure is returned, not thrown, so that what it leaves is committed.
    private func renewLocked(
        on connection: PostgresConnection, replacing stale: Int?, establish: @Sendable (String?) async throws -> SharedBullhornSession
    ) async throws -> Result<SharedBullhornSession, any Error> {
        let kept = try await row(on: connection)
        if let session = kept?.session, stale.map({ session.generation > $0 }) ?? true { return .success(session) }
        // A refusal of these credentials pauses them; new credentials (a password fixed after
        // a refusal) try at once.
        if let kept, kept.isOurs, let refusal = kept.refusal, kept.refusals > 0, let since = kept.secondsSinceRefusal {
            let pause = Self.pause(refusals: kept.refusals)
            if since < pause.timeInterval {
                let left = Int((pause.timeInterval - since).rounded(.up))
                return .failure(
                    BullhornError(
                        .authentication, endpoint: "POST login",
                        "the fleet's last login for this integration was refused \(Int(since)) s ago, the next is in \(left) s: \(refusal)"))
            }
        }
        // Whose row it is: ours (or none) is kept on failure; another's credentials' is left.
        let ours = kept.map { $0.isOurs } ?? true
        let generation = kept?.generation ?? 0
        do {
            var fresh = try await establish(ours ? kept?.refreshToken : nil)
            fresh.generation = generation + 1
            try await write(
                on: connection, generation: fresh.generation, session: fresh, refreshToken: fresh.refreshToken, refusal: nil,
                refusals: 0)
            FleetMetrics.bullhornSessionsOpened(integrationID).increment()
            return .success(fresh)
        } catch let failure as BullhornRenewalFailure {
            guard ours else { return .failure(failure.underlying) }
            // A refusal that will not pass by itself pauses the fleet; one that may (Bullhorn
            // down, a timeout) does not: each call's own retries back off.
            let forGood = (failure.underlying as? BullhornError).map { !$0.isRetriable } ?? false
            // The kept session, if any, is the refused one (it is not newer than `stale`): gone,
            // so that no process spends a call on it before the next renewal.
            try await write(
                on: connection, generation: generation, session: nil, refreshToken: failure.refreshToken,
                refusal: forGood ? "\(failure.underlying)" : kept?.refusal, refusals: forGood ? (kept?.refusals ?? 0) + 1 : (kept?.refusals ?? 0))
            return .failure(failure.underlying)
        }
    }

    /// The integration's row as this client reads it.
    private struct Kept {
        let generation: Int
        /// Nil when the row holds none this client may use (none made, another's credentials,
        /// another key) or only a refresh token.
        let session: SharedBullhornSession?
        let refreshToken: String?
        let isOurs: Bool
        let refusals: Int
        let refusal: String?
        let secondsSinceRefusal: Double?
    }

    /// What is sealed: the session (none after a login failed before one was made), the
    /// refresh token, and whose credentials made them.
    private struct Sealed: Codable {
        let bhRestToken: String?
        let restURL: String?
        let refreshToken: String?
        let credentials: String
    }

    private func row(on connection: PostgresConnection?) async throws -> Kept? {
        let statement: PostgresQuery = """
            SELECT generation, sealed, refusals, refusal, extract(epoch FROM now() - refused_at)::float8 AS since_refusal
              FROM bullhorn_sessions WHERE integration_id = \(integrationID)
            """
        let result: PostgresResult
        if let connection { result = try await connection.query(statement) } else { result = try await pool.query(statement) }
        let rows = result.rows
        guard let row = rows.first else { return nil }
        let generation = try row.decode("generation", as: Int.self)
        // A blob that does not open (sealed under another key) or was made with other
        // credentials holds nothing for this client.
        let sealed = try? SealedJSON.open(Array(try row.decode("sealed", as: Data.self)), as: Sealed.self, key: secretKey, context: sealingContext)
        let ours = sealed?.credentials == credentialsDigest
        var session: SharedBullhornSession?
        if ours, let sealed, let token = sealed.bhRestToken, let restURL = sealed.restURL {
            session = SharedBullhornSession(bhRestToken: token, restURL: restURL, refreshToken: sealed.refreshToken, generation: generation)
        }
        return Kept(
            generation: generation, session: session, refreshToken: ours ? sealed?.refreshToken : nil, isOurs: ours,
            refusals: try row.decode("refusals", as: Int.self), refusal: try row.decode("refusal", as: String?.self),
            secondsSinceRefusal: try row.decode("since_refusal", as: Double?.self))
    }

    private func write(
        on connection: PostgresConnection, generation: Int, session: SharedBullhornSession?, refreshToken: String?, refusal: String?,
        refusals: Int
    ) async throws {
        let sealed = Data(
            try SealedJSON.seal(
                Sealed(bhRestToken: session?.bhRestToken, restURL: session?.restURL, refreshToken: refreshToken, credentials: credentialsDigest),
                key: secretKey, context: sealingContext))
        let established = session != nil && refusals == 0 && refusal == nil
        try await connection.query(
            """
            INSERT INTO bullhorn_sessions (integration_id, generation, sealed, established_at, refusals, refused_at, refusal)
            VALUES (\(integrationID), \(generation), \(sealed), CASE WHEN \(established) THEN now() END, \(refusals),
                    CASE WHEN \(refusals) > 0 THEN now() END, \(refusal))
            ON CONFLICT (integration_id) DO UPDATE SET
                generation = EXCLUDED.generation, sealed = EXCLUDED.sealed,
                established_at = coalesce(EXCLUDED.established_at, bullhorn_sessions.established_at),
                refusals = EXCLUDED.refusals,
                refused_at = CASE WHEN EXCLUDED.refusals > bullhorn_sessions.refusals THEN now()
                                  WHEN EXCLUDED.refusals = 0 THEN NULL ELSE bullhorn_sessions.refused_at END,
                refusal = EXCLUDED.refusal
            """)
    }

    private var sealingContext: String { "bullhorn-session:\(integrationID)" }

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

/// Another process's renewal of the integration's session did not end in time.
struct SessionStoreBusy: Error, CustomStringConvertible {
    let integrationID: String
    let waited: Duration
    var description: String { "another process has been renewing the Bullhorn session of \(integrationID) for over \(waited)" }
}
