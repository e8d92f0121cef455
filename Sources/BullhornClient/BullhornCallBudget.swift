import Synchronization

/// An integration's share of Bullhorn: at most `callsPerMinute` calls a minute (a token bucket
/// that holds one second's worth) and at most `maxConcurrent` calls in flight. Every caller for
/// the integration in this process shares one budget.
public final class BullhornCallBudget: Sendable {
    private struct Bucket {
        var tokens: Double
        var refilledAt: ContinuousClock.Instant
        var inFlight = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    public let callsPerMinute: Int
    public let maxConcurrent: Int
    private let capacity: Double
    private let bucket: Mutex<Bucket>

    public init(callsPerMinute: Int, maxConcurrent: Int) {
        precondition(callsPerMinute > 0 && maxConcurrent > 0, "a budget must allow calls")
        self.callsPerMinute = callsPerMinute
        self.maxConcurrent = maxConcurrent
        capacity = max(1, Double(callsPerMinute) / 60)
        bucket = Mutex(Bucket(tokens: capacity, refilledAt: .now))
    }

    /// Waits for a call slot and a token, runs `body`, frees the slot.
    public func spend<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await enter()
        defer { leave() }
        try await takeToken()
        return try await body()
    }

    private func takeToken() async throws {
        let ratePerSecond = Double(callsPerMinute) / 60
        while true {
            let wait = bucket.withLock { bucket -> Duration? in
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

    private func enter() async {
        let admitted = bucket.withLock { bucket -> Bool in
            guard bucket.inFlight < maxConcurrent else { return false }
            bucket.inFlight += 1
            return true
        }
        if admitted { return }
        await withCheckedContinuation { continuation in
            let now = bucket.withLock { bucket -> Bool in
                if bucket.inFlight < maxConcurrent {
                    bucket.inFlight += 1
                    return true
                }
                bucket.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func leave() {
        let next = bucket.withLock { bucket -> CheckedContinuation<Void, Never>? in
            if bucket.waiters.isEmpty {
                bucket.inFlight -= 1
                return nil
            }
            return bucket.waiters.removeFirst()  // the slot passes straight to the next caller
        }
        next?.resume()
    }
}
