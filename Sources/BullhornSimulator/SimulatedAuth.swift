import Foundation
import Synchronization

/// Bullhorn's OAuth server and REST login, as the simulator plays them: single-use codes
/// (with a `:` that must survive URL encoding), access tokens that expire, refresh tokens that
/// rotate on every use, and REST sessions that die after a number of calls or when left idle,
/// at most so many at once.
public final class SimulatedAuth: Sendable {
    public struct Account: Sendable {
        public var clientID: String
        public var clientSecret: String
        public var username: String
        public var password: String

        public init(clientID: String, clientSecret: String, username: String, password: String) {
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.username = username
            self.password = password
        }

        public static let standard = Account(
            clientID: "sim-client-id", clientSecret: "sim-client-secret-Zq8vT3wQ", username: "sim.api.user", password: "sim-password-Kx72LmPd")
    }

    public struct Tokens: Sendable {
        public let accessToken: String
        public let refreshToken: String
        public let expiresIn: Int
    }

    struct Grant {
        let clientID: String
        let username: String
        let expires: Date
    }

    struct Session {
        var callsLeft: Int?
        var lastUsed: ContinuousClock.Instant
        let idleTimeout: Duration

        func isLive(at now: ContinuousClock.Instant) -> Bool { now - lastUsed < idleTimeout }
    }

    struct State {
        var codes: [String: Grant] = [:]
        var accessTokens: [String: Grant] = [:]
        var refreshTokens: [String: Grant] = [:]
        var sessions: [String: Session] = [:]
        var issued = 0
        var everIssued: [String] = []
        var sessionsOpened = 0
        var mostLiveSessions = 0
    }

    public let accounts: [Account]
    let state = Mutex(State())
    /// Access-token lifetime, in seconds (Bullhorn: 600).
    public let accessTokenLifetime: Int

    public init(accounts: [Account] = [.standard], accessTokenLifetime: Int = 600) {
        self.accounts = accounts
        self.accessTokenLifetime = accessTokenLifetime
    }

    private func token(_ prefix: String, _ state: inout State) -> String {
        state.issued += 1
        let token = "\(prefix)\(state.issued):\(UUID().uuidString.lowercased())"
        state.everIssued.append(token)
        return token
    }

    /// Every code and token issued so far: secrets that must never show in a log, an error, a
    /// metric or a process listing.
    public var issuedTokens: [String] {
        state.withLock { $0.everIssued }
    }

    /// A code for valid credentials; nil otherwise (Bullhorn then shows its login page).
    func authorize(clientID: String, username: String, password: String) -> String? {
        guard accounts.contains(where: { $0.clientID == clientID && $0.username == username && $0.password == password }) else {
            return nil
        }
        return state.withLock { state in
            let code = token("22:", &state)
            state.codes[code] = Grant(clientID: clientID, username: username, expires: Date().addingTimeInterval(120))
            return code
        }
    }

    enum OAuthFailure: Error {
        case invalidClient, invalidGrant
    }

    private func checkClient(_ clientID: String, _ secret: String) throws(OAuthFailure) {
        guard accounts.contains(where: { $0.clientID == clientID && $0.clientSecret == secret }) else { throw .invalidClient }
    }

    func exchange(code: String, clientID: String, clientSecret: String) throws(OAuthFailure) -> Tokens {
        try checkClient(clientID, clientSecret)
        let result: Tokens? = state.withLock { state in
            guard let grant = state.codes.removeValue(forKey: code), grant.clientID == clientID, grant.expires > Date() else { return nil }
            return issueTokens(for: grant, &state)
        }
        guard let result else { throw .invalidGrant }
        return result
    }

    func refresh(refreshToken: String, clientID: String, clientSecret: String) throws(OAuthFailure) -> Tokens {
        try checkClient(clientID, clientSecret)
        let result: Tokens? = state.withLock { state in
            // Rotation: a refresh token works once.
            guard let grant = state.refreshTokens.removeValue(forKey: refreshToken), grant.clientID == clientID else { return nil }
            return issueTokens(for: grant, &state)
        }
        guard let result else { throw .invalidGrant }
        return result
    }

    private func issueTokens(for grant: Grant, _ state: inout State) -> Tokens {
        let access = token("at", &state)
        let refresh = token("rt", &state)
        state.accessTokens[access] = Grant(
            clientID: grant.clientID, username: grant.username, expires: Date().addingTimeInterval(Double(accessTokenLifetime)))
        state.refreshTokens[refresh] = Grant(clientID: grant.clientID, username: grant.username, expires: .distantFuture)
        return Tokens(accessToken: access, refreshToken: refresh, expiresIn: accessTokenLifetime)
    }

    enum RestLogin {
        case session(String)
        case invalidAccessToken
        case sessionLimitReached
    }

    /// A BhRestToken for a live access token, unless the corporation holds `limit` live
    /// sessions already.
    func restLogin(accessToken: String, sessionCalls: Int?, limit: Int?, idleTimeout: Duration) -> RestLogin {
        state.withLock { state in
            guard let grant = state.accessTokens[accessToken], grant.expires > Date() else { return .invalidAccessToken }
            let now = ContinuousClock.now
            state.sessions = state.sessions.filter { $0.value.isLive(at: now) }
            if let limit, state.sessions.count >= limit { return .sessionLimitReached }
            let session = token("bh", &state)
            state.sessions[session] = Session(callsLeft: sessionCalls, lastUsed: now, idleTimeout: idleTimeout)
            state.sessionsOpened += 1
            state.mostLiveSessions = max(state.mostLiveSessions, state.sessions.count)
            return .session(session)
        }
    }

    /// REST sessions opened so far, and the most that were live at once.
    public var sessionsOpened: Int { state.withLock { $0.sessionsOpened } }
    public var mostLiveSessions: Int { state.withLock { $0.mostLiveSessions } }

    enum SessionCheck {
        case valid, expired
    }

    /// Spends one call of the session's allowance.
    func use(session: String) -> SessionCheck {
        state.withLock { state in
            let now = ContinuousClock.now
            guard var current = state.sessions[session], current.isLive(at: now) else {
                state.sessions[session] = nil
                return .expired
            }
            current.lastUsed = now
            if let left = current.callsLeft {
                if left <= 0 {
                    state.sessions[session] = nil
                    return .expired
                }
                current.callsLeft = left - 1
            }
            state.sessions[session] = current
            return .valid
        }
    }

    /// Ends every REST session, as a Bullhorn-side timeout would.
    public func expireAllSessions() {
        state.withLock { $0.sessions.removeAll() }
    }
}
