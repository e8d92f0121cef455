import CurlHTTP
import Foundation

/// A live REST session: the token every call sends and the corporation's REST base.
struct BullhornSession: Sendable {
    let bhRestToken: String
    /// Ends with `/`, e.g. `https://rest22.bullhornstaffing.com/rest-services/abc123/`.
    let restURL: String
    /// Increases with every new session, so concurrent callers that all saw a 401 renew once.
    let generation: Int
}

/// Bullhorn's login dance (loginInfo → authorize → token → REST login) and its renewal.
///
/// Refresh tokens rotate: each works once, so the newest is always kept. When a refresh is
/// refused (`invalid_grant`), the full login runs again. Only one renewal runs at a time;
/// callers that hit 401 together share it. With a `store`, the session (and its refresh
/// token) is the fleet's: adopted from the store when one is kept, renewed by one process at
/// a time through the store, so that every process of an integration shares one REST session.
actor BullhornAuthenticator {
    private let credentials: BullhornCredentials
    private let endpoints: BullhornEndpoints
    private let http: CurlHTTPClient
    private let retry: BullhornRetryPolicy
    private let timeout: Duration
    private let store: (any BullhornSessionStore)?

    private var session: BullhornSession?
    private var refreshToken: String?
    private var bases: (auth: String, rest: String)?
    private var renewal: Task<BullhornSession, any Error>?
    private var generation = 0

    init(
        credentials: BullhornCredentials, endpoints: BullhornEndpoints, http: CurlHTTPClient, retry: BullhornRetryPolicy, timeout: Duration,
        store: (any BullhornSessionStore)? = nil
    ) {
        self.credentials = credentials
        self.endpoints = endpoints
        self.http = http
        self.retry = retry
        self.timeout = timeout
        self.store = store
    }

    func current() async throws -> BullhornSession {
        if let session { return session }
        if let store, let kept = try await storeCall({ try await store.load() }) {
            // Another renewal may have finished while the store answered: keep the newer.
            if let session, session.generation >= kept.generation { return session }
            return adopt(kept)
        }
        return try await renew(replacing: nil)
    }

    /// A new session, unless one newer than `stale` exists already (any, when `stale` is nil:
    /// callers that found no session at once share the first one made).
    func renew(replacing stale: Int?) async throws -> BullhornSession {
        if let session, stale.map({ session.generation > $0 }) ?? true { return session }
        if let renewal { return try await renewal.value }
        let task = Task { try await self.renewOnce(replacing: stale) }
        renewal = task
        do {
            let fresh = try await task.value
            renewal = nil
            return fresh
        } catch {
            renewal = nil
            // The refused session is dead: the next call looks for a new one rather than spend
            // a call (and a token of the budget) on it first.
            if let session, let stale, session.generation <= stale { self.session = nil }
            throw error
        }
    }

    private func renewOnce(replacing stale: Int?) async throws -> BullhornSession {
        guard let store else {
            do {
                let (token, restURL, newest) = try await establish(refreshingWith: refreshToken)
                refreshToken = newest
                generation += 1
                let fresh = BullhornSession(bhRestToken: token, restURL: restURL, generation: generation)
                session = fresh
                return fresh
            } catch let failure as BullhornRenewalFailure {
                refreshToken = failure.refreshToken
                throw failure.underlying
            }
        }
        let kept = try await storeCall {
            try await store.renew(replacing: stale) { keptRefreshToken in
                let (token, restURL, newest) = try await self.establish(refreshingWith: keptRefreshToken)
                return SharedBullhornSession(bhRestToken: token, restURL: restURL, refreshToken: newest, generation: 0)
            }
        }
        return adopt(kept)
    }

    /// The store's session as this client's. Its refresh token stays with the store, which
    /// hands it to the next renewal (`refreshToken` is the store-less client's own).
    private func adopt(_ kept: SharedBullhornSession) -> BullhornSession {
        let adopted = BullhornSession(bhRestToken: kept.bhRestToken, restURL: kept.restURL, generation: kept.generation)
        session = adopted
        return adopted
    }

    /// The store's own failures (its database did not answer, or the renewal another process
    /// runs took too long) are `.sessionStoreUnavailable`, retriable: the call that needed the
    /// session was not sent. Bullhorn's errors and cancellation pass as they are.
    private func storeCall<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as BullhornError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            throw BullhornError(.sessionStoreUnavailable, endpoint: "session store", "the shared REST session could not be read or kept: \(error)")
        }
    }

    /// A new REST session: a refresh with `refreshToken` when there is one (a full login when
    /// it is refused), then the REST login. Returns the token, the REST base (ending in `/`)
    /// and the newest refresh token. Fails with `BullhornRenewalFailure`, which carries the
    /// refresh token to keep: a refresh spends the one it used, so the one it gave must not be
    /// lost when the REST login after it fails.
    private func establish(refreshingWith refreshToken: String?) async throws -> (String, String, String) {
        var newest = refreshToken
        do {
            var tokens: OAuthTokens
            if let refreshToken {
                do {
                    tokens = try await refresh(refreshToken)
                } catch let error as BullhornError where error.code == .authentication {
                    newest = nil  // refused: spent or revoked
                    tokens = try await fullLogin()
                }
            } else {
                tokens = try await fullLogin()
            }
            newest = tokens.refreshToken
            var loginError: BullhornError?
            // The REST login sometimes refuses a good access token; Bullhorn's advice is to retry.
            for attempt in 0..<4 {
                do {
                    let (token, restURL) = try await restLogin(accessToken: tokens.accessToken)
                    return (token, restURL.hasSuffix("/") ? restURL : restURL + "/", tokens.refreshToken)
                } catch let error as BullhornError where error.code == .authentication {
                    loginError = error
                    if attempt == 2 {  // perhaps the access token did expire
                        tokens = try await refresh(tokens.refreshToken)
                        newest = tokens.refreshToken
                    }
                    try await Task.sleep(for: retry.delay(afterAttempt: attempt))
                }
            }
            throw loginError!
        } catch {
            throw BullhornRenewalFailure(underlying: error, refreshToken: newest)
        }
    }

    private func fullLogin() async throws -> OAuthTokens {
        let (authBase, _) = try await resolveBases()
        let code = try await authorize(authBase: authBase)
        return try await tokenRequest(
            authBase: authBase,
            fields: [("grant_type", "authorization_code"), ("code", code), ("client_id", credentials.clientID), ("client_secret", credentials.clientSecret)])
    }

    private func refresh(_ token: String) async throws -> OAuthTokens {
        let (authBase, _) = try await resolveBases()
        return try await tokenRequest(
            authBase: authBase,
            fields: [("grant_type", "refresh_token"), ("refresh_token", token), ("client_id", credentials.clientID), ("client_secret", credentials.clientSecret)])
    }

    private func resolveBases() async throws -> (auth: String, rest: String) {
        if let bases { return bases }
        switch endpoints {
        case .fixed(let auth, let rest):
            bases = (trimSlash(auth), trimSlash(rest))
        case .discovered(let loginInfoURL):
            let url = "\(loginInfoURL)?username=\(FormEncoding.escape(credentials.username))"
            let response = try await send(HTTPClientRequest(url: url, timeout: timeout), endpoint: "GET loginInfo")
            guard response.status == 200 else {
                throw BullhornError(.server, endpoint: "GET loginInfo", "unexpected answer (a wrong data centre answers 307)", status: response.status)
            }
            let info: LoginInfo = try BullhornJSON.decode(response.body, endpoint: "GET loginInfo")
            bases = (trimSlash(info.oauthUrl), trimSlash(info.restUrl))
        }
        return bases!
    }

    private func authorize(authBase: String) async throws -> String {
        let query = FormEncoding.encode([
            ("client_id", credentials.clientID), ("response_type", "code"), ("action", "Login"),
            ("username", credentials.username), ("password", credentials.password),
        ])
        let response = try await send(HTTPClientRequest(url: "\(authBase)/authorize?\(query)", timeout: timeout), endpoint: "GET oauth/authorize")
        guard (300..<400).contains(response.status), let location = response.header("Location") else {
            if response.status == 200 {
                throw BullhornError(
                    .authentication, endpoint: "GET oauth/authorize",
                    "Bullhorn refused the client id, username or password for \(credentials.username) (it answered its login page)",
                    status: 200)
            }
            try Self.throwIfOutage(response, endpoint: "GET oauth/authorize")
            throw BullhornError(.authentication, endpoint: "GET oauth/authorize", "no authorization code in the answer", status: response.status)
        }
        // The code arrives URL-encoded (it contains ':'); URLComponents decodes it once.
        guard let code = URLComponents(string: location)?.queryItems?.first(where: { $0.name == "code" })?.value, !code.isEmpty else {
            throw BullhornError(.malformedResponse, endpoint: "GET oauth/authorize", "the redirect carries no code")
        }
        return code
    }

    private func tokenRequest(authBase: String, fields: [(String, String)]) async throws -> OAuthTokens {
        let response = try await send(.form(url: "\(authBase)/token", fields: fields, timeout: timeout), endpoint: "POST oauth/token")
        if response.status == 200 {
            return try BullhornJSON.decode(response.body, endpoint: "POST oauth/token")
        }
        try Self.throwIfOutage(response, endpoint: "POST oauth/token")
        let error = (try? JSONDecoder().decode(OAuthErrorBody.self, from: Data(response.body)))?.error ?? "HTTP \(response.status)"
        throw BullhornError(.authentication, endpoint: "POST oauth/token", "token request refused: \(error)", status: response.status)
    }

    private func restLogin(accessToken: String) async throws -> (String, String) {
        let (_, restBase) = try await resolveBases()
        let query = FormEncoding.encode([("version", "*"), ("access_token", accessToken)])
        let response = try await send(HTTPClientRequest(method: "POST", url: "\(restBase)/login?\(query)", timeout: timeout), endpoint: "POST login")
        guard response.status == 200 else {
            try Self.throwIfOutage(response, endpoint: "POST login")
            let body = try? JSONDecoder().decode(BullhornErrorBody.self, from: Data(response.body))
            throw BullhornError(.authentication, endpoint: "POST login", body?.errorMessage ?? "REST login refused", status: response.status)
        }
        let login: RestLogin = try BullhornJSON.decode(response.body, endpoint: "POST login")
        return (login.BhRestToken, login.restUrl)
    }

    /// A login step answered by throttling or an outage (429, 5xx) has not refused anything:
    /// it may pass (`.throttled`, `.server`), and must not count as a refusal of the
    /// credentials (the fleet pauses its logins after those).
    private static func throwIfOutage(_ response: HTTPClientResponse, endpoint: String) throws {
        if response.status == 429 {
            throw BullhornError(.throttled, endpoint: endpoint, "throttled while logging in", status: 429)
        }
        if response.status >= 500 {
            throw BullhornError(.server, endpoint: endpoint, "Bullhorn failed while logging in", status: response.status)
        }
    }

    /// Auth calls retry transport failures with backoff; statuses are for the caller to read.
    private func send(_ request: HTTPClientRequest, endpoint: String) async throws -> HTTPClientResponse {
        var attempt = 0
        while true {
            do {
                return try await http.execute(request)
            } catch let error as HTTPClientError {
                attempt += 1
                guard error.isRetriable, attempt < retry.maxAttempts else {
                    throw BullhornError(.transport, endpoint: endpoint, error.message)
                }
                try await Task.sleep(for: retry.delay(afterAttempt: attempt))
            }
        }
    }

    private func trimSlash(_ url: String) -> String {
        url.hasSuffix("/") ? String(url.dropLast()) : url
    }
}

private struct LoginInfo: Decodable {
    let oauthUrl: String
    let restUrl: String
}

struct OAuthTokens: Decodable {
    let accessToken: String
    let refreshToken: String

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case refreshToken = "refresh_token"
    }
}

private struct OAuthErrorBody: Decodable {
    let error: String
}

private struct RestLogin: Decodable {
    let BhRestToken: String
    let restUrl: String
}

struct BullhornErrorBody: Decodable {
    let errorMessage: String?
    let errorMessageKey: String?
}
