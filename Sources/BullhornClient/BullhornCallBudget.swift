import WaitingLine

/// An integration's share of Bullhorn in this process: at most `maxConcurrent` calls in flight,
/// and one token from `tokens` per call. The tokens are the corporation's, whoever calls: a
/// `FleetTokenSource` (PostgreSQL) shares them between every process of the fleet, a
/// `LocalTokenBucket` keeps them to this process (tools and tests without a fleet).
public final class BullhornCallBudget: Sendable {
    private struct Slots {
        var inFlight = 0
    }

    /// Tokens leased from the source but not yet spent, when they were leased, callers
    /// waiting for one, and whether one of them is leasing now.
    private struct Leased {
        var tokens = 0
        var leasedAt = ContinuousClock.now
        var wanting = 0
        var leasing = false

        /// Tokens left over (their callers were cancelled) are spent only while fresh: one
        /// spent long after its lease would be a call the fleet's bucket counted in an
        /// earlier minute.
        mutating func takeFresh() -> Bool {
            if tokens > 0, ContinuousClock.now - leasedAt > BullhornCallBudget.tokenLifetime { tokens = 0 }
            guard tokens > 0 else { return false }
            tokens -= 1
            return true
        }
    }

    /// How long a leased token may wait for its call.
    static let tokenLifetime: Duration = .seconds(1)

    /// What a caller in line for a token is told to do.
    private enum Turn: Sendable {
        case spend, lease
    }

    public let maxConcurrent: Int
    public let tokens: any BullhornTokenSource
    private let slots: WaitingLine<Slots, Void>
    private let leased: WaitingLine<Leased, Turn>

    public init(tokens: any BullhornTokenSource, maxConcurrent: Int) {
        precondition(maxConcurrent > 0, "a budget must allow calls")
        self.tokens = tokens
        self.maxConcurrent = maxConcurrent
        slots = WaitingLine(Slots())
        leased = WaitingLine(Leased())
    }

    /// A budget of this process alone.
    public convenience init(callsPerMinute: Int, maxConcurrent: Int) {
        self.init(tokens: LocalTokenBucket(callsPerMinute: callsPerMinute), maxConcurrent: maxConcurrent)
    }

    /// Waits for a call slot and a token, runs `body`, frees the slot. A caller whose task is
    /// cancelled stops waiting for either. A token source that fails (the database is gone)
    /// fails the call before it is sent: `BullhornError.budgetUnavailable`, safe to repeat.
    public func spend<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await slots.take { slots in
            guard slots.inFlight < maxConcurrent else { return nil }
            slots.inFlight += 1
            return ()
        }
        defer { leaveSlot() }
        try await takeToken()
        return try await body()
    }

    /// One token: a leased one if any is left, else this caller leases for everyone waiting
    /// (one lease at a time, so that a busy process asks the source once per round, not once
    /// per caller). The others wait in line: the lease hands its tokens to them in turn.
    private func takeToken() async throws {
        leased.withLock { leased, _ in leased.wanting += 1 }
        defer { leased.withLock { leased, _ in leased.wanting -= 1 } }
        let turn = try await leased.take { leased -> Turn? in
            if leased.takeFresh() { return .spend }
            if leased.leasing { return nil }
            leased.leasing = true
            return .lease
        }
        if turn == .lease { try await lease() }
    }

    /// Leases up to one token per caller waiting here and keeps one; sleeps while the source
    /// has none. However it ends, the tokens go to the callers in line, and the first one
    /// left without a token leases next.
    private func lease() async throws {
        defer {
            let (served, next) = leased.withLock { leased, waiters in
                leased.leasing = false
                var served: [WaitingLine<Leased, Turn>.Waiter] = []
                while !waiters.isEmpty, leased.takeFresh(), let waiter = waiters.next() {
                    served.append(waiter)
                }
                let next = waiters.next()
                if next != nil { leased.leasing = true }
                return (served, next)
            }
            served.forEach { $0.resume(.spend) }
            next?.resume(.lease)
        }
        while true {
            let wanted = leased.withLock { leased, _ in max(leased.wanting, 1) }
            let grant: TokenGrant
            do {
                grant = try await tokens.take(upTo: wanted)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                throw BullhornError(.budgetUnavailable, endpoint: "call budget", "could not take a token: \(error)")
            }
            if grant.granted > 0 {
                leased.withLock { leased, _ in
                    leased.tokens = grant.granted - 1  // one is this caller's; none left over is older
                    leased.leasedAt = .now
                }
                return
            }
            try await Task.sleep(for: grant.retryAfter)
        }
    }

    private func leaveSlot() {
        let next = slots.withLock { slots, waiters -> WaitingLine<Slots, Void>.Waiter? in
            // The slot passes straight to the next caller.
            if let next = waiters.next() { return next }
            slots.inFlight -= 1
            return nil
        }
        next?.resume(())
    }
}

/// What a token source granted: `granted` tokens, or none yet and how long until one is due.
public struct TokenGrant: Sendable, Equatable {
    public let granted: Int
    public let retryAfter: Duration

    public init(granted: Int, retryAfter: Duration) {
        self.granted = granted
        self.retryAfter = retryAfter
    }
}

/// Where call tokens come from.
public protocol BullhornTokenSource: Sendable {
    /// Takes between 1 and `wanted` tokens if any is available now; else none, and the wait.
    func take(upTo wanted: Int) async throws -> TokenGrant
}

/// How a budget of `callsPerMinute` becomes a token bucket that never allows more than
/// `callsPerMinute` calls in any 60 seconds: a bucket of capacity C refilled at r per second
/// allows at most C + 60·r calls in any minute, so r = (limit − C) / 60. C is a second's
/// worth: the pause between two batches of a session (the last answers, the next batch's
/// index and search calls: most of a second at 250 ms) costs no tokens, and the rate is 98.3 %
/// of the limit. (Half a second's worth measured 94 % of the limit spent; a second's, see
/// the README's budget figures.)
public struct TokenBucketShape: Sendable, Equatable {
    public let capacity: Double
    public let ratePerSecond: Double

    public init(callsPerMinute: Int) {
        let limit = Double(max(callsPerMinute, 1))
        capacity = max(1, (limit / 60).rounded(.down))
        ratePerSecond = max(limit - capacity, 1) / 60
    }
}

/// A token bucket of this process alone.
public final class LocalTokenBucket: BullhornTokenSource {
    private struct Bucket {
        var tokens: Double
        var refilledAt: ContinuousClock.Instant
    }

    public let shape: TokenBucketShape
    private let bucket: WaitingLine<Bucket, Void>

    public init(callsPerMinute: Int) {
        shape = TokenBucketShape(callsPerMinute: callsPerMinute)
        bucket = WaitingLine(Bucket(tokens: shape.capacity, refilledAt: .now))
    }

    public func take(upTo wanted: Int) async throws -> TokenGrant {
        let shape = shape
        return bucket.withLock { bucket, _ in
            let now = ContinuousClock.now
            bucket.tokens = min(shape.capacity, bucket.tokens + (now - bucket.refilledAt) / .seconds(1) * shape.ratePerSecond)
            bucket.refilledAt = now
            let granted = min(Int(bucket.tokens.rounded(.down)), max(wanted, 1))
            bucket.tokens -= Double(granted)
            return TokenGrant(granted: granted, retryAfter: .seconds((1 - bucket.tokens) / shape.ratePerSecond))
        }
    }
}
