/// Faults the simulator injects, to make the client prove it copes with real Bullhorn.
/// Counters are per simulator; "every N" means calls N, 2N, 3N … of the REST data API.
public struct SimulatorFaults: Sendable {
    /// Every N-th call starts a burst of `throttleBurst` consecutive 429s (with no Retry-After).
    public var throttleEvery: Int?
    public var throttleBurst: Int
    /// Every N-th call answers 500 "Server API capacity exceeded".
    public var capacityErrorEvery: Int?
    /// Every N-th call answers 503.
    public var unavailableEvery: Int?
    /// A REST session (BhRestToken) dies after this many calls: the next one answers 401.
    public var sessionExpiresAfterCalls: Int?
    /// Every N-th REST login fails with the sporadic "Invalid or expired OAuth access token" 400.
    public var loginFlakeEvery: Int?
    /// Every REST login answers 503 (Bullhorn's login service down).
    public var loginUnavailable: Bool
    /// REST sessions the corporation may hold at once (Bullhorn: about 50, 25 on limited
    /// editions): a REST login beyond it is refused. Bullhorn does not document its answer;
    /// the simulator's is a 403 whose message says so.
    public var sessionLimit: Int?
    /// A REST session unused this long times out: it answers 401 and stops counting against
    /// `sessionLimit` (Bullhorn: `ttl` at login, its default undocumented; 10 minutes here).
    public var sessionIdleTimeout: Duration
    /// Added before every answer.
    public var latency: Duration
    /// Latency of particular endpoints instead (`PUT entity/JobSubmission`, `query/Tearsheet`,
    /// with or without the method; `POST login`, the REST login): Bullhorn's writes and
    /// searches are slower than its reads.
    public var endpointLatency: [String: Duration]
    /// Endpoints (such as `query/Tearsheet`) whose answers are cut short, invalid JSON.
    public var corruptEndpoints: Set<String>
    /// Whether adding a member bumps the tearsheet's dateLastModified (Bullhorn: unclear).
    public var memberAddBumpsTearsheet: Bool
    /// The corporation's limit: a REST call that makes more than this many in the trailing
    /// minute answers 429 (served as "429 over the limit").
    public var callsPerMinuteLimit: Int?

    public init(
        throttleEvery: Int? = nil, throttleBurst: Int = 3, capacityErrorEvery: Int? = nil,
        unavailableEvery: Int? = nil, sessionExpiresAfterCalls: Int? = nil, loginFlakeEvery: Int? = nil,
        latency: Duration = .zero, endpointLatency: [String: Duration] = [:], corruptEndpoints: Set<String> = [],
        memberAddBumpsTearsheet: Bool = false, callsPerMinuteLimit: Int? = nil, sessionLimit: Int? = nil,
        sessionIdleTimeout: Duration = .seconds(600), loginUnavailable: Bool = false
    ) {
        self.loginUnavailable = loginUnavailable
        self.sessionLimit = sessionLimit
        self.sessionIdleTimeout = sessionIdleTimeout
        self.callsPerMinuteLimit = callsPerMinuteLimit
        self.endpointLatency = endpointLatency
        self.throttleEvery = throttleEvery
        self.throttleBurst = throttleBurst
        self.capacityErrorEvery = capacityErrorEvery
        self.unavailableEvery = unavailableEvery
        self.sessionExpiresAfterCalls = sessionExpiresAfterCalls
        self.loginFlakeEvery = loginFlakeEvery
        self.latency = latency
        self.corruptEndpoints = corruptEndpoints
        self.memberAddBumpsTearsheet = memberAddBumpsTearsheet
    }

    /// How long `endpoint` (`GET query/Tearsheet`, `POST login`) waits before it answers: its
    /// own latency, with or without the method, else the general one.
    func latency(of endpoint: String) -> Duration {
        let bare = endpoint.split(separator: " ", maxSplits: 1).last.map(String.init) ?? endpoint
        return endpointLatency[endpoint] ?? endpointLatency[bare] ?? latency
    }

    /// Every fault at once, at rates a client with retries must absorb.
    public static let hostile = SimulatorFaults(
        throttleEvery: 23, throttleBurst: 3, capacityErrorEvery: 37, unavailableEvery: 41,
        sessionExpiresAfterCalls: 50, loginFlakeEvery: 3)
}
