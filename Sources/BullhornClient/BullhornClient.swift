import CurlHTTP
import Foundation

/// One integration's Bullhorn REST client: logs in on first use, renews the session on 401,
/// backs off on throttling, and spends every call from the integration's `BullhornCallBudget`.
public final class BullhornClient: Sendable {
    public let configuration: BullhornClientConfiguration
    public let budget: BullhornCallBudget
    private let authenticator: BullhornAuthenticator
    private let http: CurlHTTPClient

    /// `budget` is shared by every client of the same integration in this process; by default
    /// each client gets its own, from `configuration`. `http` may be shared by the clients of
    /// many integrations (a worker holding 200 sessions must not hold 200 × 16 threads and
    /// connections); by default each client has its own. `sessions` shares the REST session
    /// with the integration's other clients, in this process and others; by default the
    /// client logs in for itself.
    public init(
        credentials: BullhornCredentials, endpoints: BullhornEndpoints,
        configuration: BullhornClientConfiguration = BullhornClientConfiguration(), budget: BullhornCallBudget? = nil,
        http: CurlHTTPClient? = nil, sessions: (any BullhornSessionStore)? = nil
    ) {
        self.configuration = configuration
        self.budget = budget ?? BullhornCallBudget(callsPerMinute: configuration.callsPerMinute, maxConcurrent: configuration.maxConcurrentCalls)
        let http = http ?? CurlHTTPClient(maxConcurrentRequests: max(configuration.maxConcurrentCalls, 2), userAgent: "tearsheet-sync")
        self.http = http
        authenticator = BullhornAuthenticator(
            credentials: credentials, endpoints: endpoints, http: http, retry: configuration.retry, timeout: configuration.requestTimeout,
            store: sessions)
    }

    /// Logs in now (rather than on the first call), to fail fast on bad credentials.
    public func connect() async throws {
        _ = try await authenticator.current()
    }

    /// `GET {restUrl}{path}?{query}`; decodes the JSON body as `T`.
    func get<T: Decodable>(_ path: String, query: [(String, String)], endpoint: String, as type: T.Type = T.self) async throws -> T {
        let body = try await call(method: "GET", path: path, query: query, body: nil, endpoint: endpoint, idempotent: true)
        return try BullhornJSON.decode(body, endpoint: endpoint)
    }

    /// `PUT {restUrl}{path}` with a JSON body. Not idempotent: a failure after the request may
    /// have reached Bullhorn is `.ambiguousWrite`, never retried blindly.
    func put<T: Decodable>(_ path: String, json: [UInt8], endpoint: String, as type: T.Type = T.self) async throws -> T {
        let body = try await call(method: "PUT", path: path, query: [], body: json, endpoint: endpoint, idempotent: false)
        return try BullhornJSON.decode(body, endpoint: endpoint)
    }

    private func call(
        method: String, path: String, query: [(String, String)], body: [UInt8]?, endpoint: String, idempotent: Bool
    ) async throws -> [UInt8] {
        var attempt = 0
        var renewed = false
        while true {
            let session = try await authenticator.current()
            var url = session.restURL + path
            if !query.isEmpty { url += "?" + FormEncoding.encode(query) }
            var request = HTTPClientRequest(
                method: method, url: url, headers: [("BhRestToken", session.bhRestToken)], body: body,
                timeout: configuration.requestTimeout)
            if body != nil { request.headers.append(("Content-Type", "application/json")) }

            let response: HTTPClientResponse
            do {
                response = try await budget.spend { try await http.execute(request) }
                configuration.observeCall?(response.status)
            } catch let error as HTTPClientError {
                configuration.observeCall?(nil)
                // A request that never connected did nothing; after that, a write may have landed.
                let safeToRepeat = idempotent || error.code == .connect
                attempt += 1
                guard error.isRetriable, safeToRepeat, attempt < configuration.retry.maxAttempts else {
                    throw BullhornError(safeToRepeat ? .transport : .ambiguousWrite, endpoint: endpoint, error.message)
                }
                try await Task.sleep(for: configuration.retry.delay(afterAttempt: attempt))
                continue
            }

            switch response.status {
            case 200..<300:
                return response.body
            case 401:
                guard !renewed else {
                    throw BullhornError(.authentication, endpoint: endpoint, "the session was refused again after renewal", status: 401)
                }
                renewed = true
                _ = try await authenticator.renew(replacing: session.generation)
            case 412:
                throw BullhornError(.protocolViolation, endpoint: endpoint, "Bullhorn says the BhRestToken is missing", status: 412)
            case _ where Self.isThrottled(response):
                // Throttled before any work was done (429, capacity 500); 503 may come from a
                // proxy after the write reached Bullhorn, so a write does not repeat it.
                attempt += 1
                guard attempt < configuration.retry.maxAttempts, idempotent || response.status != 503 else {
                    let code: BullhornError.Code = (!idempotent && response.status == 503) ? .ambiguousWrite : .throttled
                    throw BullhornError(code, endpoint: endpoint, "still throttled after \(attempt) attempts", status: response.status)
                }
                try await Task.sleep(for: configuration.retry.delay(afterAttempt: attempt))
            case 404 where Self.isEntityNotFound(response):
                throw BullhornError(.notFound, endpoint: endpoint, Self.message(response) ?? "not found", status: 404)
            case 404:
                // Not Bullhorn's "entity not found" (a proxy, a load balancer, a wrong REST
                // URL): it says nothing about the entities, and may pass.
                throw BullhornError(
                    .transport, endpoint: endpoint, "answered 404 without Bullhorn's entity-not-found body (a proxy, or a wrong REST URL?)",
                    status: 404)
            case 400:
                throw BullhornError(.validation, endpoint: endpoint, Self.message(response) ?? "bad request", status: 400)
            default:
                throw BullhornError(
                    idempotent ? .server : .ambiguousWrite, endpoint: endpoint, Self.message(response) ?? "unexpected answer",
                    status: response.status)
            }
        }
    }

    /// Bullhorn's own 404: JSON whose `errorMessageKey` is `errors.entityNotFound`, or whose
    /// `errorCode` is 404 with a message that says so.
    private static func isEntityNotFound(_ response: HTTPClientResponse) -> Bool {
        struct Body: Decodable {
            let errorMessage: String?
            let errorMessageKey: String?
            let errorCode: Int?
        }
        guard let body = try? JSONDecoder().decode(Body.self, from: Data(response.body)) else { return false }
        return body.errorMessageKey == "errors.entityNotFound"
            || (body.errorCode == 404 && body.errorMessage?.localizedCaseInsensitiveContains("not found") == true)
    }

    /// 429 and 503 always; 500 only when its text says capacity (any other 500 is a failure).
    private static func isThrottled(_ response: HTTPClientResponse) -> Bool {
        switch response.status {
        case 429, 503: true
        case 500: response.text.localizedCaseInsensitiveContains("capacity exceeded")
        default: false
        }
    }

    /// Bullhorn's `errorMessage`, plus validation details (field names, never values).
    private static func message(_ response: HTTPClientResponse) -> String? {
        struct Body: Decodable {
            struct FieldError: Decodable {
                let propertyName: String?
                let type: String?
            }

            let errorMessage: String?
            let errors: [FieldError]?
        }
        guard let body = try? JSONDecoder().decode(Body.self, from: Data(response.body)) else { return nil }
        let details = (body.errors ?? []).map { "\($0.propertyName ?? "?"): \($0.type ?? "?")" }
        return ([body.errorMessage].compactMap { $0 } + details).joined(separator: "; ")
    }
}
