/// What an integration logs in with. `description` never shows the secret or the password.
public struct BullhornCredentials: Sendable, CustomStringConvertible {
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

    public var description: String { "BullhornCredentials(clientID: \(clientID), username: \(username))" }
}

/// Where an integration's Bullhorn lives: the OAuth and REST bases, or the loginInfo URL that
/// discovers them (Bullhorn runs several data centres; the wrong one answers 307).
public enum BullhornEndpoints: Sendable, Equatable {
    /// `authURL` like `https://auth-west9.bullhornstaffing.com/oauth`, `restURL` like
    /// `https://rest-west9.bullhornstaffing.com/rest-services`.
    case fixed(authURL: String, restURL: String)
    /// `https://rest.bullhornstaffing.com/rest-services/loginInfo`.
    case discovered(loginInfoURL: String)

    public static let defaultLoginInfoURL = "https://rest.bullhornstaffing.com/rest-services/loginInfo"
}

/// Client behaviour that is not per integration.
public struct BullhornClientConfiguration: Sendable {
    /// Bullhorn calls per minute for this integration (Bullhorn publishes about 1,500).
    public var callsPerMinute: Int
    /// Calls in flight at once for this integration in this process. The budget's rate needs
    /// rate × latency of them: 25 calls a second at 250 ms is 6.25 in flight, and a slow
    /// second (a write at 600 ms) needs more. Bullhorn allows 50 sessions per corporation.
    public var maxConcurrentCalls: Int
    public var retry: BullhornRetryPolicy
    public var requestTimeout: Duration
    /// Records per page of query and association calls (Bullhorn caps it at 500).
    public var pageSize: Int
    /// Told of every REST call spent from the budget: its HTTP status, or nil when no answer
    /// came (for the metrics of calls by status against the budget).
    public var observeCall: (@Sendable (_ status: Int?) -> Void)?

    public init(
        callsPerMinute: Int = 1_200, maxConcurrentCalls: Int = 16, retry: BullhornRetryPolicy = BullhornRetryPolicy(),
        requestTimeout: Duration = .seconds(60), pageSize: Int = 500
    ) {
        self.callsPerMinute = callsPerMinute
        self.maxConcurrentCalls = maxConcurrentCalls
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.pageSize = min(max(pageSize, 1), 500)
    }
}
