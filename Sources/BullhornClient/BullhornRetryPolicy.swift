/// Exponential backoff with full jitter: Bullhorn's 429s carry no Retry-After and come in
/// bursts, so retries must spread out rather than march in step.
public struct BullhornRetryPolicy: Sendable {
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// Attempts in all, the first included.
    public var maxAttempts: Int

    public init(baseDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(20), maxAttempts: Int = 8) {
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxAttempts = max(maxAttempts, 1)
    }

    /// The pause before attempt `attempt + 1` (attempt counts from 0).
    public func delay(afterAttempt attempt: Int) -> Duration {
        let exponential = baseDelay * (1 << min(attempt, 20))
        let capped = min(exponential, maxDelay)
        return capped * Double.random(in: 0.5...1.0)
    }
}
