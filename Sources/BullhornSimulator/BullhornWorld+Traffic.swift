/// The fault schedule and call counters, advanced by every request.
extension BullhornWorld {
    enum InjectedFault {
        case throttled, capacity, unavailable

        var kind: String {
            switch self {
            case .throttled: "429"
            case .capacity: "500 capacity"
            case .unavailable: "503"
            }
        }
    }

    func count(_ endpoint: String) {
        state.withLock { $0.calls[endpoint, default: 0] += 1 }
    }

    /// The faults served so far, by kind: "429", "500 capacity", "503", "401 session expired",
    /// "login flake", "late write", "refused JobSubmission" (what a hostile run put a client through).
    public var faultsServed: [String: Int] {
        state.withLock { $0.faultsServed }
    }

    func served(_ fault: String) {
        state.withLock { $0.served(fault) }
    }

    /// The `nth` request from now to `endpoint` (such as `GET query/TearsheetMember`; "*" for
    /// any REST data call) first runs `change`: what a recruiter does while a client is
    /// half-way through a pass.
    public func whenRequested(_ endpoint: String, nth: Int = 1, _ change: @escaping @Sendable () -> Void) {
        state.withLock { $0.requestHooks.append((endpoint, max(nth, 1) - 1, change)) }
    }

    /// Counts a REST data call and says which fault, if any, it gets.
    func restCall(_ endpoint: String) -> (fault: InjectedFault?, corrupt: Bool, latency: Duration) {
        let due = state.withLock { state -> [@Sendable () -> Void] in
            var due: [@Sendable () -> Void] = []
            for index in state.requestHooks.indices.reversed() where ["*", endpoint].contains(state.requestHooks[index].endpoint) {
                if state.requestHooks[index].countdown == 0 {
                    due.insert(state.requestHooks.remove(at: index).change, at: 0)
                } else {
                    state.requestHooks[index].countdown -= 1
                }
            }
            return due
        }
        for change in due { change() }
        return state.withLock { state in
            state.calls[endpoint, default: 0] += 1
            state.restCalls += 1
            state.inFlight += 1
            state.mostInFlight = max(state.mostInFlight, state.inFlight)
            let inLastMinute = state.arrived(at: .now)
            let n = state.restCalls
            let faults = state.faults
            var fault: InjectedFault?
            let overLimit = faults.callsPerMinuteLimit.map { inLastMinute > $0 } ?? false
            if overLimit {
                fault = .throttled
            } else if state.throttledRemaining > 0 {
                state.throttledRemaining -= 1
                fault = .throttled
            } else if let every = faults.throttleEvery, n % every == 0 {
                state.throttledRemaining = max(faults.throttleBurst - 1, 0)
                fault = .throttled
            } else if let every = faults.capacityErrorEvery, n % every == 0 {
                fault = .capacity
            } else if let every = faults.unavailableEvery, n % every == 0 {
                fault = .unavailable
            }
            if let fault { state.served(overLimit ? "429 over the limit" : fault.kind) }
            let bareEndpoint = endpoint.split(separator: " ", maxSplits: 1).last.map(String.init) ?? endpoint
            return (fault, faults.corruptEndpoints.contains(bareEndpoint), faults.latency(of: endpoint))
        }
    }

    /// Whether this REST login flakes, and the faults it meets (whether the login is down, what
    /// the new session may do, how long the login takes).
    func loginAttempt() -> (flake: Bool, faults: SimulatorFaults) {
        state.withLock { state in
            state.logins += 1
            let flake = state.faults.loginFlakeEvery.map { state.logins % $0 == 0 } ?? false
            if flake { state.served("login flake") }
            if state.faults.loginUnavailable { state.served("login 503") }
            return (flake, state.faults)
        }
    }

    /// Ends a REST call (for the calls in flight).
    func restCallEnded() {
        state.withLock { $0.inFlight -= 1 }
    }

    /// The most REST calls that arrived within any one minute so far.
    public var busiestMinute: Int {
        state.withLock { $0.busiestMinute }
    }

    /// The `where` clauses of the latest `query/…` calls (at most 10,000), in the order they
    /// arrived: what a test reads to see which read a client started before which.
    public var queriesArrived: [String] {
        state.withLock { $0.queries }
    }

    func queryArrived(where condition: String) {
        state.withLock { state in
            if state.queries.count >= 10_000 { state.queries.removeFirst(state.queries.count / 2) }
            state.queries.append(condition)
        }
    }

    /// REST calls being answered now.
    public var callsInFlight: Int {
        state.withLock { $0.inFlight }
    }

    /// The most REST calls answered at once so far.
    public var mostCallsInFlight: Int {
        state.withLock { $0.mostInFlight }
    }

    /// Starts counting the most calls at once afresh.
    public func resetMostCallsInFlight() {
        state.withLock { $0.mostInFlight = $0.inFlight }
    }
}

extension BullhornWorld.State {
    /// Records a call's arrival; returns how many arrived in the minute up to it.
    mutating func arrived(at now: ContinuousClock.Instant) -> Int {
        lastMinute.append(now)
        while now - lastMinute[minuteStart] >= .seconds(60) { minuteStart += 1 }
        if minuteStart > 4_096 {
            lastMinute.removeFirst(minuteStart)
            minuteStart = 0
        }
        let count = lastMinute.count - minuteStart
        busiestMinute = max(busiestMinute, count)
        return count
    }
}
