/// How a worker takes sessions and settles their pairs.
public struct WorkerOptions: Sendable {
    /// Messages per batch at most.
    public var batchSize: Int
    /// How long to wait for a batch to fill after its first message.
    public var batchWait: Duration
    /// Pause after an attempt failed for a reason that may pass, doubled up to `maxBackoff`.
    public var backoff: Duration
    public var maxBackoff: Duration
    /// Attempts at one pair whose own step keeps failing for a reason that may pass (its
    /// JobSubmission throttled, timed out): then it is dead-lettered with its last error. A
    /// failure the whole batch shares (the database, the broker, Bullhorn down) is retried
    /// for as long as it lasts and counts against no pair.
    public var pairAttempts: Int
    /// Unacknowledged deliveries per session at most (default: five batches). A session
    /// whose Bullhorn budget is small gets fewer: about `prefetchSeconds` of its budget, so
    /// that handing it to another worker (which finishes the prefetched pairs first) is quick.
    /// Five batches, not two: while a batch waits for its database queries and its
    /// acknowledgement, the broker goes on delivering the next ones; on the dedup path
    /// (`tearsheet-bench worker`, five pairs of runs side by side) that was 8 % more pairs a
    /// second, higher in each of the five pairs.
    public var prefetch: UInt16
    static let defaultPrefetchBatches = 5
    public var prefetchSeconds: Int
    /// The database connections of a worker's pool (the `work` command's, and the bench's
    /// workers'): its sessions' statements and its Bullhorn budget's leases share them.
    public static let databaseConnections = 8
    /// Sessions one worker holds at most.
    public var maxSessions: Int
    /// Unacknowledged deliveries the whole worker holds at most: each session's window is at
    /// most its share (`maxInHand / maxSessions`, and never under 10). Without it, 200
    /// sessions of 1,500 calls a minute would each take 250 (10 s of budget): 50,000 pairs,
    /// some 50 MiB, in hand at once. While a session is handed over, its window drains as its
    /// successor's fills, so for those moments the worker may hold up to one window more.
    public var maxInHand: Int
    /// A held session whose queue stays empty this long is given back; `busyIdleTimeout`
    /// when other sessions with work wait for a slot.
    public var sessionIdleTimeout: Duration
    public var busyIdleTimeout: Duration
    /// A session held this long is given back (after its pairs in hand) when other sessions
    /// with work wait for a free slot, so that no backlog holds a slot for ever.
    public var sessionSlice: Duration
    /// How long a batch waits in place for pairs whose earlier JobSubmission may still land
    /// (deferred) before it sends them to the back of their session queue as new messages
    /// and moves on: waiting in hand, each crash of a worker that holds them spends one of
    /// their deliveries, and a grace of minutes outlasts several.
    public var deferInPlace: Duration

    public init(
        batchSize: Int = 200, batchWait: Duration = .milliseconds(200), backoff: Duration = .milliseconds(500),
        maxBackoff: Duration = .seconds(30), pairAttempts: Int = 8, prefetch: Int? = nil, prefetchSeconds: Int = 10,
        maxSessions: Int = 16, maxInHand: Int = 20_000, sessionIdleTimeout: Duration = .seconds(2), busyIdleTimeout: Duration = .milliseconds(250),
        sessionSlice: Duration = .seconds(60), deferInPlace: Duration = .seconds(10)
    ) {
        self.deferInPlace = deferInPlace
        self.prefetch = UInt16(min(max(prefetch ?? batchSize * Self.defaultPrefetchBatches, batchSize, 1), 65_535))
        self.batchSize = max(batchSize, 1)
        self.batchWait = batchWait
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.pairAttempts = max(pairAttempts, 1)
        self.prefetchSeconds = max(prefetchSeconds, 1)
        self.maxSessions = max(maxSessions, 1)
        self.maxInHand = max(maxInHand, 1)
        self.sessionIdleTimeout = sessionIdleTimeout
        self.busyIdleTimeout = min(busyIdleTimeout, sessionIdleTimeout)
        self.sessionSlice = sessionSlice
    }

    /// The prefetch window for a session with this Bullhorn budget: the configured window,
    /// less for a small budget, and no more than the session's share of `maxInHand`.
    func prefetch(callsPerMinute: Int?) -> UInt16 {
        let share = max(10, maxInHand / maxSessions)
        let budgeted = callsPerMinute.map { max(10, $0 * prefetchSeconds / 60) } ?? Int(prefetch)
        return UInt16(min(Int(prefetch), budgeted, share))
    }
}
