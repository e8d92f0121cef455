import WaitingLine

/// An integration's share of Bullhorn: at most `callsPerMinute` calls a minute (a token bucket
/// that holds one second's worth) and at most `maxConcurrent` calls in flight. Every caller for
/// the integration in this process shares one budget.
public final class BullhornCallBudget: Sendable {
    private struct Bucket {
        var tokens: Double
        var refilledAt: ContinuousClock.Instant
        var inFlight = 0
    }

    public let callsPerMinute: Int
    public let maxConcurrent: Int
    private let capacity: Double
    private let bucket: WaitingLine<Bucket, Void>

    public init(callsPerMinute: Int, maxConcurrent: Int) {
        precondition(callsPerMinute > 0 && maxConcurrent > 0, "a budget must allow calls")
        self.callsPerMinute = callsPerMinute
        self.maxConcurrent = maxConcurrent
        capacity = max(1, Double(callsPerMinute) / 60)
        bucket = WaitingLine(Bucket(tokens: capacity, refilledAt: .now))
    }

    /// Waits for a call slot and a token, runs `body`, frees the slot. A caller whose task is
    /// cancelled stops waiting for either.
    public func spend<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await bucket.take { bucket in
            guard bucket.inFlight < maxConcurrent else { return nil }
            bucket.inFlight += 1
            return ()
        }
        defer { leave() }
        try await takeToken()
        return try await body()
    }

    private func takeToken() async throws {
        let ratePerSecond = Double(callsPerMinute) / 60
        while true {
            let wait = bucket.withLock { bucket, _ -> Duration? in
                let now = ContinuousClock.now
                let elapsed = (now - bucket.refilledAt)
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                bucket.tokens = min(capacity, bucket.tokens + seconds * ratePerSecond)
                bucket.refilledAt = now
                if bucket.tokens >= 1 {
                    bucket.tokens -= 1
                    return nil
                }
                return .seconds((1 - bucket.tokens) / ratePerSecond)
            }
            guard let wait else { return }
            try await Task.sleep(for: wait)
        }
    }

    private func leave() {
        let next = bucket.withLock { bucket, waiters -> WaitingLine<Bucket, Void>.Waiter? in
            // The slot passes straight to the next caller.
            if let next = waiters.next() { return next }
            bucket.inFlight -= 1
            return nil
        }
        next?.resume(())
    }
}
