import BullhornClient
import Crypto
import Foundation
import PostgresClient

/// One integration's Bullhorn REST session, shared by every process of the fleet through
/// `bullhorn_sessions`: a publisher pass, the workers, `trace`, on any machine, use the
/// session kept there instead of logging in for themselves, and a session Bullhorn refused is
/// renewed by one process at a time, under a lease in the row, with the refresh token kept
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
    let keys: SealingKeys
    let credentialsDigest: String

    /// How long a process waits for another's renewal before its call fails (retriable).
    static let renewalWait = Duration.seconds(60)
    /// How long a renewal's lease lasts unless its holder extends it: a process that dies
    /// holding it delays the next renewal this long at most, less than `renewalWait`, so that
    /// the processes waiting then take over. Its holder extends it every third of it while
    /// the login runs, for up to four lengths more (`extendingLease`).
    let leaseLength: Duration
    private let leaseMilliseconds: Int64

    /// `lease` (its length) is shorter only in tests.
    public init(
        pool: PostgresPool, integrationID: String, keys: SealingKeys, credentials: BullhornCredentials, endpoints: BullhornEndpoints,
        lease: Duration = .seconds(45)
    ) {
        self.pool = pool
        self.integrationID = integrationID
        self.keys = keys
        credentialsDigest = Self.digest(credentials, endpoints)
        leaseLength = lease
        leaseMilliseconds = lease.components.seconds * 1000 + lease.components.attoseconds / 1_000_000_000_000_000
    }

    public var description: String { "FleetBullhornSessions(\(integrationID))" }

    /// The fleet's pause after `refusals` refused logins in a row: 30 s, doubling, at most 10 min.
    static func pause(refusals: Int) -> Duration {
        .seconds(min(30 << min(max(refusals - 1, 0), 5), 600))
    }

    /// Seconds left of the pause, `secondsSinceRefusal` after the last refusal; nil when none.
    static func pauseLeft(refusals: Int, secondsSinceRefusal: Double?) -> Int? {
        guard refusals > 0, let since = secondsSinceRefusal else { return nil }
        let left = pause(refusals: refusals).timeInterval - since
        return left > 0 ? Int(left.rounded(.up)) : nil
    }

    /// Lifts the pause after a refused login: the operator registered the integration again
    /// (its credentials fixed, or what Bullhorn refused put right), so the next call tries.
    static func forgetRefusals(of integrationID: String, pool: PostgresPool) async throws {
        try await pool.query(
            """
            UPDATE bullhorn_sessions SET refusals = 0, refused_at = NULL, refusal = NULL, revision = revision + 1
             WHERE integration_id = \(integrationID) AND refusals > 0
            """)
    }

    /// What the fleet's session of an integration is doing, as `integration list` shows it:
    /// never the session or its tokens, which stay sealed.
    public struct Standing: Sendable, Codable, Equatable {
        /// When the session the fleet uses was made; nil when none is kept (none made yet, or
        /// Bullhorn refused the last).
        public let establishedAt: Date?
        /// Sessions made for the integration so far.
        public let generation: Int
        /// A process is logging in for the fleet now.
        public let renewing: Bool
        /// Logins Bullhorn refused in a row, and why the last was.
        public let refusals: Int
        public let refusal: String?
        /// Seconds until the fleet logs in again, while a refusal pauses it.
        public let pausedForSeconds: Int?
    }

    /// Every integration's standing that has a row (one that never called Bullhorn has none).
    public static func standings(pool: PostgresPool) async throws -> [String: Standing] {
        var standings: [String: Standing] = [:]
        for row in try await pool.query(
            """
            SELECT integration_id, established_at, generation, refusals, refusal, renewing_until > now() AS renewing,
                   extract(epoch FROM now() - refused_at)::float8 AS since_refusal
              FROM bullhorn_sessions
            """
        ).rows {
            let refusals = try row.decode("refusals", as: Int.self)
            standings[try row.decode("integration_id")] = Standing(
                establishedAt: try row.decode("established_at"), generation: try row.decode("generation"),
                renewing: try row.decode("renewing", as: Bool?.self) ?? false, refusals: refusals, refusal: try row.decode("refusal"),
                pausedForSeconds: pauseLeft(refusals: refusals, secondsSinceRefusal: try row.decode("since_refusal", as: Double?.self)))
        }
        return standings
    }

    /// What `integration rekey` did to the kept sessions.
    public struct Resealing: Sendable, Equatable {
        /// Sealed under the previous key, now under the current one.
        public var resealed = 0
        /// Open with neither key: left, and replaced by the integration's next login.
        public var unopened = 0
    }

    /// Seals again under the current key every kept session the previous key sealed
    /// (`integration rekey`), so that the fleet keeps its sessions once the previous key is
    /// gone. `revision` does not move: the session is the same, and a renewal under way may
    /// still write its own (under the current key: the row is then left as it wrote it).
    public static func reseal(pool: PostgresPool, keys: SealingKeys) async throws -> Resealing {
        var outcome = Resealing()
        for row in try await pool.query("SELECT integration_id, sealed FROM bullhorn_sessions WHERE sealed IS NOT NULL").rows {
            let id = try row.decode("integration_id", as: String.self)
            let blob = try row.decode("sealed", as: Data.self)
            let fresh: [UInt8]
            switch try SealedJSON.rekeyed(Array(blob), as: Sealed.self, keys: keys, context: sealingContext(of: id)) {
            case .underCurrentKey: continue
            case .opensWithNeitherKey: outcome.unopened += 1; continue
            case .resealed(let resealed): fresh = resealed
            }
            let written = try await pool.query(
                "UPDATE bullhorn_sessions SET sealed = \(Data(fresh)) WHERE integration_id = \(id) AND sealed = \(blob) RETURNING integration_id"
            ).rows
            if !written.isEmpty { outcome.resealed += 1 }
        }
        return outcome
    }

    public func load() async throws -> SharedBullhornSession? {
        try await row()?.session
    }

    public func renew(
        replacing stale: Int?, establish: @Sendable (String?) async throws -> SharedBullhornSession
    ) async throws -> SharedBullhornSession {
        let started = ContinuousClock.now
        let lease = UUID().uuidString
        while true {
            switch try await takeLease(lease, replacing: stale) {
            case .kept(let session):
                return session
            case .refused(let error):
                throw error
            case .taken(let kept, let revision):
                return try await renewHolding(lease, revision: revision, kept: kept, establish: establish)
            case .busy:
                // Another process is logging in: look again in a moment for the session it makes.
                try await Task.sleep(for: .milliseconds(200))
                guard ContinuousClock.now - started < Self.renewalWait else {
                    throw SessionStoreBusy(integrationID: integrationID, waited: Self.renewalWait)
                }
            }
        }
    }

    private enum LeaseAttempt {
        case kept(SharedBullhornSession)
        case refused(BullhornError)
        case taken(Kept, revision: Int)
        case busy
    }

    /// The kept session if newer than `stale`; the recorded refusal while the fleet pauses;
    /// else the lease on the row's renewal, unless another process holds it. The lease is a
    /// column, not a lock held by a connection: the login that follows takes seconds against
    /// Bullhorn, and a worker starting with 200 sessions would otherwise hold its 8 database
    /// connections with 8 logins at a time while every other statement waited.
    private func takeLease(_ lease: String, replacing stale: Int?) async throws -> LeaseAttempt {
        guard let kept = try await row() else {
            try await pool.query("INSERT INTO bullhorn_sessions (integration_id) VALUES (\(integrationID)) ON CONFLICT (integration_id) DO NOTHING")
            return try await takeLease(lease, replacing: stale)
        }
        if let session = kept.session, stale.map({ session.generation > $0 }) ?? true { return .kept(session) }
        // A refusal of these credentials pauses them; new credentials (a password fixed after
        // a refusal) try at once.
        if kept.isOurs, let refusal = kept.refusal, let since = kept.secondsSinceRefusal,
            let left = Self.pauseLeft(refusals: kept.refusals, secondsSinceRefusal: since)
        {
            return .refused(
                BullhornError(
                    .authentication, endpoint: "POST login",
                    "the fleet's last login for this integration was refused \(Int(since)) s ago, the next is in \(left) s: \(refusal)"))
        }
        guard kept.leaseFree else { return .busy }
        // Taken only if the row is as it was read: no renewal ended, failed or was let go, and
        // no pause was lifted since (every write moves `revision`).
        let taken = try await pool.query(
            """
            UPDATE bullhorn_sessions SET renewal_lease = \(lease), renewing_until = now() + \(leaseMilliseconds) * interval '1 millisecond',
                   revision = revision + 1
             WHERE integration_id = \(integrationID) AND revision = \(kept.revision)
               AND (renewing_until IS NULL OR renewing_until < now())
            RETURNING revision
            """
        ).rows
        guard let revision = try taken.first?.decode("revision", as: Int.self) else { return .busy }
        return .taken(kept, revision: revision)
    }

    /// Logs in while holding the lease, then keeps the session (or, on failure, the refresh
    /// token the attempt leaves and the refusal), releasing the lease in the same statement.
    /// The row is written only if nothing changed it since the lease was taken (`revision`):
    /// an `integration add` meanwhile (its pause lifted) is not undone.
    private func renewHolding(
        _ lease: String, revision: Int, kept: Kept, establish: @Sendable (String?) async throws -> SharedBullhornSession
    ) async throws -> SharedBullhornSession {
        let fresh: SharedBullhornSession
        do {
            var made = try await extendingLease(lease) { try await establish(kept.isOurs ? kept.refreshToken : nil) }
            made.generation = kept.generation + 1
            fresh = made
        } catch let failure as BullhornRenewalFailure {
            // A refusal that will not pass by itself pauses the fleet; one that may (Bullhorn
            // down, throttling, a timeout) does not: each call's own retries back off. The
            // kept session, if any, is the refused one (not newer than `stale`): dropped, so
            // that no process spends a call on it before the next renewal. A row of other
            // credentials is taken over: these credentials are the ones now registered (a
            // client of the old ones is replaced within a minute), and their refusal must pause.
            let underlying = failure.underlying as? BullhornError
            let forGood = underlying.map { !$0.isRetriable } ?? false
            if forGood { FleetMetrics.bullhornLoginsRefused(integrationID).increment() }
            let refusals = kept.isOurs ? kept.refusals : 0
            await keep(
                lease, revision: revision, generation: kept.generation, session: nil, refreshToken: failure.refreshToken,
                refusal: forGood ? "\(failure.underlying)" : (kept.isOurs ? kept.refusal : nil), refusals: forGood ? refusals + 1 : refusals)
            // A login that will not pass by itself is the credentials' or the endpoints' to fix,
            // never the pairs' fault, whatever Bullhorn answered (a garbled page, a 3xx): the
            // worker waits on `authentication`, and would dead-letter on the others.
            if forGood, let underlying, underlying.code != .authentication {
                throw BullhornError(.authentication, endpoint: underlying.endpoint, "logging in failed: \(underlying.message)", status: underlying.status)
            }
            throw failure.underlying
        } catch {
            try? await release(lease)
            throw error
        }
        FleetMetrics.bullhornSessionsOpened(integrationID).increment()
        // Should the database fail just now, this process still uses the session; the others
        // renew once the lease is released or runs out.
        await keep(lease, revision: revision, generation: fresh.generation, session: fresh, refreshToken: fresh.refreshToken, refusal: nil, refusals: 0)
        return fresh
    }

    /// Runs `login` while extending the lease every third of its length: Bullhorn's retries
    /// and backoff on a bad day can make a login outlast the lease, and another process would
    /// then log in too (a second session against the corporation's limit). So only a
    /// process that dies, or cannot reach the database, lets its lease run out.
    /// Extended for at most `maxLeaseExtensions` thirds: a login that takes longer (minutes of
    /// Bullhorn's retries) should not keep every other process from trying.
    static let maxLeaseExtensions = 12

    private func extendingLease<Value>(_ lease: String, _ login: () async throws -> Value) async throws -> Value {
        let extending = Task {
            for _ in 0..<Self.maxLeaseExtensions {
                try await Task.sleep(for: leaseLength / 3)
                // A database failure leaves the lease to run out, as a dead holder's does; a
                // lease no longer held (it ran out meanwhile and another took it) ends the loop.
                guard (try? await extend(lease)) != false else { return }
            }
        }
        defer { extending.cancel() }
        return try await login()
    }

    /// Moves the lease's end, if this process still holds it; not `revision`, which the
    /// holder's own write of the row checks, and which no other process needs to see move: a
    /// waiter takes the lease only once `renewing_until` has passed, whatever it read.
    private func extend(_ lease: String) async throws -> Bool {
        try await !pool.query(
            """
            UPDATE bullhorn_sessions SET renewing_until = now() + \(leaseMilliseconds) * interval '1 millisecond'
             WHERE integration_id = \(integrationID) AND renewal_lease = \(lease)
            RETURNING integration_id
            """
        ).rows.isEmpty
    }

    /// Writes the row and releases the lease; when the write cannot be made (the database
    /// failed, or the row changed meanwhile), releases the lease alone, so that the next
    /// renewal need not wait for it to run out.
    private func keep(
        _ lease: String, revision: Int, generation: Int, session: SharedBullhornSession?, refreshToken: String?, refusal: String?,
        refusals: Int
    ) async {
        let written = try? await write(
            lease, revision: revision, generation: generation, session: session, refreshToken: refreshToken, refusal: refusal, refusals: refusals)
        if written != true { try? await release(lease) }
    }

    /// The integration's row as this client reads it.
    private struct Kept {
        let generation: Int
        /// Moves with every write of the row: a lease is taken only on the row as it was read.
        let revision: Int
        /// Nil when the row holds none this client may use (none made, another's credentials,
        /// another key) or only a refresh token.
        let session: SharedBullhornSession?
        let refreshToken: String?
        /// Whether the row is this client's to write after a failed login: made with its
        /// credentials, or holding nothing yet.
        let isOurs: Bool
        let refusals: Int
        let refusal: String?
        let secondsSinceRefusal: Double?
        /// No process holds the renewal's lease (or its holder's time ran out).
        let leaseFree: Bool
    }

    /// What is sealed: the session (none after a login failed before one was made), the
    /// refresh token, and whose credentials made them.
    private struct Sealed: Codable {
        let bhRestToken: String?
        let restURL: String?
        let refreshToken: String?
        let credentials: String
    }

    private func row() async throws -> Kept? {
        let rows = try await pool.query(
            """
            SELECT generation, revision, sealed, refusals, refusal, extract(epoch FROM now() - refused_at)::float8 AS since_refusal,
                   (renewing_until IS NULL OR renewing_until < now()) AS lease_free
              FROM bullhorn_sessions WHERE integration_id = \(integrationID)
            """
        ).rows
        guard let row = rows.first else { return nil }
        let generation = try row.decode("generation", as: Int.self)
        let blob = try row.decode("sealed", as: Data?.self)
        // A blob that does not open (sealed under another key) or was made with other
        // credentials holds nothing for this client.
        let sealed = blob.flatMap { try? SealedJSON.open(Array($0), as: Sealed.self, keys: keys, context: sealingContext) }
        let ours = blob == nil || sealed?.credentials == credentialsDigest
        var session: SharedBullhornSession?
        if ours, let sealed, let token = sealed.bhRestToken, let restURL = sealed.restURL {
            session = SharedBullhornSession(bhRestToken: token, restURL: restURL, refreshToken: sealed.refreshToken, generation: generation)
        }
        return Kept(
            generation: generation, revision: try row.decode("revision", as: Int.self), session: session, refreshToken: ours ? sealed?.refreshToken : nil, isOurs: ours,
            refusals: try row.decode("refusals", as: Int.self), refusal: try row.decode("refusal", as: String?.self),
            secondsSinceRefusal: try row.decode("since_refusal", as: Double?.self), leaseFree: try row.decode("lease_free", as: Bool.self))
    }

    /// Writes the row and releases the lease, if the row is as this process's lease left it;
    /// false when it is not (a lease that ran out while the database was away, an
    /// `integration add`).
    private func write(
        _ lease: String, revision: Int, generation: Int, session: SharedBullhornSession?, refreshToken: String?, refusal: String?,
        refusals: Int
    ) async throws -> Bool {
        let sealed = Data(
            try SealedJSON.seal(
                Sealed(bhRestToken: session?.bhRestToken, restURL: session?.restURL, refreshToken: refreshToken, credentials: credentialsDigest),
                keys: keys, context: sealingContext))
        return try await !pool.query(
            """
            UPDATE bullhorn_sessions SET
                generation = \(generation), sealed = \(sealed),
                established_at = CASE WHEN \(session != nil) THEN now() END,
                refused_at = CASE WHEN \(refusals) > refusals THEN now() WHEN \(refusals) = 0 THEN NULL ELSE refused_at END,
                refusals = \(refusals), refusal = \(refusal),
                renewal_lease = NULL, renewing_until = NULL, revision = revision + 1
             WHERE integration_id = \(integrationID) AND renewal_lease = \(lease) AND revision = \(revision)
            RETURNING revision
            """
        ).rows.isEmpty
    }

    private func release(_ lease: String) async throws {
        try await pool.query(
            """
            UPDATE bullhorn_sessions SET renewal_lease = NULL, renewing_until = NULL, revision = revision + 1
             WHERE integration_id = \(integrationID) AND renewal_lease = \(lease)
            """)
    }

    private var sealingContext: String { Self.sealingContext(of: integrationID) }

    private static func sealingContext(of integrationID: String) -> String { "bullhorn-session:\(integrationID)" }

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
