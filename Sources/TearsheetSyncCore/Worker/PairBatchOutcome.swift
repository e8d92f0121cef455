/// What processing one batch of pairs did.
public struct PairBatchOutcome: Sendable {
    public var added: [PairKey] = []
    public var alreadyOnCampaign = 0
    /// Pairs that can never be processed, with the reason, for the dead-letter queue.
    public var deadLetters: [(pair: PairMessage, reason: String)] = []
    public var candidatesIndexed = 0
    public var submissionsCreated = 0
    /// JobSubmissions that already existed in Bullhorn (a duplicate pair, another campaign of
    /// the same job, or an attempt that crashed after creating it).
    public var submissionsFound = 0

    public init() {}
}
