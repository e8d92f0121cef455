/// What became of each pair of a batch: every pair ends in exactly one of `added`,
/// `alreadyOnCampaign`, `deadLetters` or `retry`.
public struct PairBatchOutcome: Sendable {
    public var added: [PairKey] = []
    /// Pairs found on their campaign already (published twice, or added by another path).
    public var alreadyOnCampaign: [PairKey] = []
    /// Pairs that can never be processed, with the reason, for the dead-letter queue.
    public var deadLetters: [(pair: PairKey, reason: String)] = []
    /// Pairs whose own step failed for a reason that may pass (their JobSubmission was
    /// throttled, timed out, or its outcome is unknown): tried again in place.
    public var retry: [(pair: PairKey, error: any Error)] = []
    /// Pairs whose JobSubmission may still land from an earlier attempt whose outcome was
    /// unknown: tried again after a pause, without spending an attempt (the wait is nobody's
    /// failure).
    public var deferred: [PairKey] = []
    public var candidatesIndexed = 0
    public var submissionsCreated = 0
    /// JobSubmissions that already existed in Bullhorn (a duplicate pair, another campaign of
    /// the same job, or an attempt that crashed after creating it).
    public var submissionsFound = 0

    public init() {}
}
