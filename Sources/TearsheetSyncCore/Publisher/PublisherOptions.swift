/// How the publisher works; the defaults suit cron every few minutes.
public struct PublisherOptions: Sendable {
    /// Re-read this much before the watermark, for clock skew between Bullhorn's servers and
    /// for changes committed late: duplicates are harmless, misses are not.
    public var overlap: Duration
    /// Ignore the watermark: every tearsheet (after connecting an integration or adding a campaign).
    public var full: Bool
    /// Integrations processed at once.
    public var concurrency: Int
    /// Publisher-confirm window.
    public var confirmWindow: Int
    /// Candidates per batch (anti-join query and publish call); Bullhorn pages are 500.
    public var candidatesPerBatch: Int

    public init(overlap: Duration = .seconds(300), full: Bool = false, concurrency: Int = 4, confirmWindow: Int = 1024, candidatesPerBatch: Int = 500) {
        self.overlap = overlap
        self.full = full
        self.concurrency = max(concurrency, 1)
        self.confirmWindow = max(confirmWindow, 1)
        self.candidatesPerBatch = max(candidatesPerBatch, 1)
    }
}
