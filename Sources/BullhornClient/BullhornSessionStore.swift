/// A REST session as the processes of a fleet share it: what a call needs (the token and the
/// corporation's REST base) and the refresh token that renews it. Refresh tokens work once,
/// so the newest must travel with the session: a process renewing with a copy another has
/// already spent is refused and falls back to a full login (a second session).
public struct SharedBullhornSession: Sendable, Equatable, CustomStringConvertible {
    public var bhRestToken: String
    public var restURL: String
    public var refreshToken: String?
    /// Counts the sessions kept for this integration: a process that saw generation `g`
    /// refused renews only if nothing newer than `g` is kept.
    public var generation: Int

    public init(bhRestToken: String, restURL: String, refreshToken: String?, generation: Int) {
        self.bhRestToken = bhRestToken
        self.restURL = restURL
        self.refreshToken = refreshToken
        self.generation = generation
    }

    public var description: String { "SharedBullhornSession(generation: \(generation), <sealed>)" }
}

/// Where a client keeps its REST session for the other processes of the fleet, so that they
/// share one session an integration rather than open one each. Bullhorn allows a corporation
/// about 50 concurrent sessions (25 on limited editions), counted until each times out; a
/// publisher looping every minute and a few workers, each logging in for itself, approach
/// that with a handful of integrations.
public protocol BullhornSessionStore: Sendable {
    /// The session kept now, if any (and made with this client's credentials).
    func load() async throws -> SharedBullhornSession?

    /// One process of the fleet at a time for this integration: the kept session when it is
    /// newer than `stale` (another process renewed it meanwhile; any kept one when `stale` is
    /// nil), else `establish(refreshToken)`'s, kept with the next generation. `establish` gets
    /// the kept refresh token; when it fails with `BullhornRenewalFailure`, the store keeps the
    /// refresh token that failure carries and throws its `underlying` error.
    func renew(
        replacing stale: Int?, establish: @Sendable (String?) async throws -> SharedBullhornSession
    ) async throws -> SharedBullhornSession
}

/// A renewal that failed, and the refresh token to keep after it: the newest one issued (a
/// refresh spends the token it used), or nil when Bullhorn refused the one it had.
public struct BullhornRenewalFailure: Error, CustomStringConvertible {
    public let underlying: any Error
    public let refreshToken: String?

    public init(underlying: any Error, refreshToken: String?) {
        self.underlying = underlying
        self.refreshToken = refreshToken
    }

    public var description: String { "\(underlying)" }
}
