import AMQPClient
import BullhornClient
import Foundation
import Logging
import PostgresClient

/// The publisher: one pass per integration, several integrations at once, each under a
/// PostgreSQL advisory lock so that two publishers never run the same integration together.
public struct TearsheetPublisher: Sendable {
    public let pool: PostgresPool
    public let broker: AMQPConnection
    public let topology: Topology
    public let keys: SealingKeys
    public let options: PublisherOptions
    /// Overrides the Bullhorn client's retry and paging settings (tests use fast retries).
    public let clientConfiguration: BullhornClientConfiguration?
    let logger: Logger

    public init(
        pool: PostgresPool, broker: AMQPConnection, topology: Topology, keys: SealingKeys, options: PublisherOptions = PublisherOptions(),
        clientConfiguration: BullhornClientConfiguration? = nil, logger: Logger = Logger(label: "tearsheet-sync.publisher")
    ) {
        self.pool = pool
        self.broker = broker
        self.topology = topology
        self.keys = keys
        self.options = options
        self.clientConfiguration = clientConfiguration
        self.logger = logger
    }

    public static func lockKey(_ integrationID: String) -> Int64 {
        AdvisoryLockKey.key("tearsheet-sync.publisher", integrationID)
    }

    /// One pass over every active integration (or those named); a summary for each.
    public func run(integrationIDs: [String] = [], progress: @escaping @Sendable (PassSummary) -> Void = { _ in }) async throws -> [PassSummary] {
        let integrations = try await IntegrationStore(pool: pool).load(ids: integrationIDs)
        return await withTaskGroup(of: PassSummary.self) { group in
            var summaries: [PassSummary] = []
            var pending = integrations.makeIterator()
            for _ in 0..<options.concurrency {
                guard let integration = pending.next() else { break }
                group.addTask { await pass(integration, progress: progress) }
            }
            for await summary in group {
                summaries.append(summary)
                if let integration = pending.next() { group.addTask { await pass(integration, progress: progress) } }
            }
            return summaries.sorted { $0.integrationID < $1.integrationID }
        }
    }

    /// One integration's pass. Never throws: a failure is in the summary, and leaves the
    /// watermark where it was.
    public func pass(_ integration: Integration, progress: @escaping @Sendable (PassSummary) -> Void = { _ in }) async -> PassSummary {
        var summary = PassSummary(integrationID: integration.id)
        let started = ContinuousClock.now
        FleetMetrics.passStarting(integration.id)
        do {
            try await pool.withConnection { lockConnection in
                let key = Self.lockKey(integration.id)
                guard try await lockConnection.tryAdvisoryLock(key) else {
                    summary.outcome = .skippedLocked
                    return
                }
                do {
                    try await locked(integration, summary: &summary, progress: progress)
                    try await lockConnection.advisoryUnlock(key)
                } catch {
                    _ = try? await lockConnection.advisoryUnlock(key)
                    throw error
                }
            }
        } catch {
            summary.outcome = .failed("\(error)")
        }
        summary.elapsed = ContinuousClock.now - started
        switch summary.outcome {
        case .succeeded: try? await IntegrationStore(pool: pool).recordPass(of: integration.id, outcome: "succeeded")
        case .failed(let reason): try? await IntegrationStore(pool: pool).recordPass(of: integration.id, outcome: "failed: \(reason)")
        case .skippedLocked: break  // the publisher holding the lock records its own
        }
        FleetMetrics.pairsPublished(integration.id).increment(by: summary.pairsPublished)
        if summary.outcome != .skippedLocked { FleetMetrics.passes(integration.id).increment() }
        if summary.isFailure { FleetMetrics.passesFailed(integration.id).increment() }
        if summary.outcome == .succeeded { FleetMetrics.lastSuccessfulPass(integration.id).record(Date().timeIntervalSince1970) }
        if let watermark = summary.watermarkAdvancedTo ?? integration.tearsheetsLastSyncedAt {
            FleetMetrics.watermark(integration.id).record(watermark.timeIntervalSince1970)
        }
        if summary.isFailure {
            logger.error("publisher pass failed", metadata: summary.metadata)
        } else {
            logger.info("publisher pass done", metadata: summary.metadata)
        }
        return summary
    }

    private func locked(_ integration: Integration, summary: inout PassSummary, progress: @escaping @Sendable (PassSummary) -> Void) async throws {
        // Read the watermark again under the lock: a publisher that just finished may have moved it.
        let current = try await IntegrationStore(pool: pool).load(ids: [integration.id]).first ?? integration
        let client = try current.bullhornClient(keys: keys, pool: pool, configuration: clientConfiguration)
        let session = SessionQueue(integrationID: current.id)
        try await session.declare(on: broker)
        let channel = try await broker.openChannel(confirms: true)
        let pass = IntegrationPass(
            integration: current, client: client, campaigns: CampaignStore(pool: pool), channel: channel,
            session: session, sessionWork: SessionWorkStore(pool: pool), options: options, progress: progress)
        let previous = try await PublisherMarks.load(integrationID: current.id, pool: pool)
        var handled = PublisherMarks()
        let started = Date()
        do {
            try await pass.run(into: &summary, previous: previous, handled: &handled)
        } catch {
            try? await channel.close()
            throw error
        }
        try? await channel.close()

        // Every message of the pass is confirmed and routed: now, and only now, the watermark.
        // Never past the pass's start: a tearsheet read early in the pass and changed after that
        // read is older than a change seen later in the pass; a watermark at the later change
        // would hide it from every later pass (issue 11, finding 1). The overlap covers the
        // skew between our clock and Bullhorn's.
        if let seen = summary.newestChange {
            let newest = min(seen, started)
            try await PublisherMarks.commit(
                integrationID: current.id, newest: newest, previous: previous, handled: handled, overlap: options.overlap, pool: pool)
            summary.watermarkAdvancedTo = try await IntegrationStore(pool: pool).watermark(of: current.id)
        }
    }
}
