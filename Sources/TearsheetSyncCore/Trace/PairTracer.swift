import AMQPClient
import BullhornClient
import Foundation
import PostgresClient

/// Gathers a `PairTrace`: the integration's standing, the candidate's tearsheets in Bullhorn
/// now (members read by the candidate, then the tearsheets and their jobs), the integration's
/// campaigns on those jobs (or the one asked about) with their rows, the dead letters of the
/// candidate's pairs, and the session queue. Reads only: nothing is published, taken or
/// changed (dead letters are read and put back, as `dlq list` does).
public struct PairTracer: Sendable {
    let pool: PostgresPool
    let broker: AMQPConnection
    let topology: Topology
    let keys: SealingKeys
    /// How many dead letters are read at most, looking for the candidate's.
    let deadLetterScan: Int

    public init(pool: PostgresPool, broker: AMQPConnection, topology: Topology, keys: SealingKeys, deadLetterScan: Int = 10_000) {
        self.pool = pool
        self.broker = broker
        self.topology = topology
        self.keys = keys
        self.deadLetterScan = deadLetterScan
    }

    public func trace(integrationID: String, candidateID: Int64, campaignID: Int64? = nil) async throws -> PairTrace {
        let store = IntegrationStore(pool: pool)
        guard let standing = try await store.standing(of: integrationID) else {
            throw ConfigurationError(setting: "--integration", "no integration \(integrationID) (register it with `integration add`)")
        }
        let integration = try await store.load(ids: [integrationID])[0]
        let tearsheets = try await candidateTearsheets(candidateID, client: integration.bullhornClient(keys: keys, pool: pool))

        let campaignStore = CampaignStore(pool: pool)
        var campaigns: [(id: Int64, state: CampaignStore.CampaignState)]
        if let campaignID {
            guard let state = try await campaignStore.campaigns(ids: [campaignID])[campaignID], state.integrationID == integrationID else {
                throw ConfigurationError(setting: "--campaign", "no campaign \(campaignID) of integration \(integrationID)")
            }
            campaigns = [(campaignID, state)]
        } else {
            campaigns = try await campaignStore.campaigns(integrationID: integrationID, jobIDs: Array(Set(tearsheets.flatMap(\.jobOrderIDs))))
        }
        let (deadLetters, readInFull) = try await deadLetters(integrationID: integrationID, candidateID: candidateID)
        let session = try await session(of: integrationID)
        var traced: [PairTrace.Campaign] = []
        for (id, state) in campaigns {
            let row = try await campaignStore.row(campaignID: id, candidateID: candidateID)
            let deadLetter = deadLetters[id]
            let (verdict, explanation) = Self.verdict(
                row: row, campaign: state, deadLetter: deadLetter, tearsheets: tearsheets, integration: standing, session: session)
            traced.append(
                PairTrace.Campaign(
                    id: id, jobID: state.atsJobID, active: state.active, row: row, deadLetter: deadLetter, verdict: verdict, explanation: explanation))
        }
        return PairTrace(
            integrationID: integrationID, candidateID: candidateID, integration: standing, tearsheets: tearsheets, campaigns: traced,
            session: session, deadLettersReadInFull: readInFull)
    }

    /// Why the pair stands where it does: the first reason that holds, in the order a pair
    /// travels (tearsheet, campaign, publisher, queue, worker).
    static func verdict(
        row: CampaignStore.Row?, campaign: CampaignStore.CampaignState, deadLetter: PairTrace.DeadLetter?, tearsheets: [PairTrace.Tearsheet],
        integration: IntegrationStore.Standing, session: PairTrace.Session?
    ) -> (PairTrace.Verdict, String) {
        if let row {
            let submission = row.jobSubmissionID.map { "JobSubmission \($0)" } ?? "no JobSubmission recorded"
            return (.onCampaign, "on the campaign since \(row.addedAt.formatted(.iso8601)) (\(row.source), \(submission))")
        }
        let linked = tearsheets.filter { $0.jobOrderIDs.contains(campaign.atsJobID) }
        if linked.isEmpty {
            return (.notOnATearsheetOfTheJob, "Bullhorn has the candidate on no tearsheet of job \(campaign.atsJobID)")
        }
        let live = linked.filter { !$0.isPrivate && !$0.isDeleted }
        if live.isEmpty {
            let which = linked.map { "\($0.id) (\($0.isDeleted ? "deleted" : "private"))" }.joined(separator: ", ")
            return (.onlyPrivateOrDeletedTearsheets, "the tearsheets of job \(campaign.atsJobID) with the candidate are private or deleted: \(which)")
        }
        if !campaign.active { return (.campaignInactive, "the campaign is not active: pairs are not added to it") }
        if !integration.active { return (.integrationInactive, "the integration is not active: no publish passes") }
        let newest = live.map(\.changedAt).max()!
        // In Bullhorn's milliseconds: the watermark went through the database's microseconds.
        func millis(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        guard let watermark = integration.watermark, millis(newest) <= millis(watermark) else {
            let since = integration.watermark.map { "after the watermark \($0.formatted(.iso8601))" } ?? "and the integration has no watermark yet"
            return (.awaitingPublishPass, "the change (\(newest.formatted(.iso8601))) is \(since): the next publish pass publishes it")
        }
        if let deadLetter {
            return (.deadLettered, "dead-lettered: \(deadLetter.reason) (`dlq replay` puts it back once the cause is fixed)")
        }
        if let session, session.ready > 0 || session.heldBy != nil {
            return (.queued, "published by a pass up to \(watermark.formatted(.iso8601)); waiting in the session for a worker")
        }
        return (
            .coveredNotAdded,
            "covered by the watermark (\(watermark.formatted(.iso8601))) but neither added nor waiting in its session: the campaign came after the pass, or the message was lost; `publish --full` publishes it again"
        )
    }

    private func candidateTearsheets(_ candidateID: Int64, client: BullhornClient) async throws -> [PairTrace.Tearsheet] {
        var addedAt: [Int64: Date] = [:]
        for try await membership in client.memberships(ofCandidate: candidateID) {
            addedAt[membership.tearsheetID] = max(addedAt[membership.tearsheetID] ?? membership.dateAdded, membership.dateAdded)
        }
        var tearsheets: [PairTrace.Tearsheet] = []
        for tearsheet in try await client.tearsheets(ids: addedAt.keys.sorted()) {
            tearsheets.append(
                PairTrace.Tearsheet(
                    id: tearsheet.id, name: tearsheet.name, isPrivate: tearsheet.isPrivate, isDeleted: tearsheet.isDeleted,
                    jobOrderIDs: try await client.jobOrderIDs(of: tearsheet), dateLastModified: tearsheet.dateLastModified,
                    memberAddedAt: addedAt[tearsheet.id]!))
        }
        return tearsheets
    }

    /// The candidate's dead letters, by campaign, and whether every dead letter was read.
    private func deadLetters(integrationID: String, candidateID: Int64) async throws -> ([Int64: PairTrace.DeadLetter], Bool) {
        var found: [Int64: PairTrace.DeadLetter] = [:]
        let prefix = "\(integrationID):"
        let entries = try await DeadLetterQueue(broker: broker, topology: topology).list(limit: deadLetterScan)
        for entry in entries where entry.messageID.hasPrefix(prefix) {
            let parts = entry.messageID.dropFirst(prefix.count).split(separator: ":")
            guard parts.count == 2, let campaign = Int64(parts[0]), Int64(parts[1]) == candidateID else { continue }
            found[campaign] = PairTrace.DeadLetter(reason: entry.reason, deadLetteredAt: entry.deadLetteredAt)
        }
        return (found, entries.count < deadLetterScan)
    }

    private func session(of integrationID: String) async throws -> PairTrace.Session? {
        let queue = SessionQueue(integrationID: integrationID).queue
        let channel = try await broker.openChannel()
        let state: AMQPQueueState
        do {
            state = try await channel.declareQueue(queue, passive: true)
        } catch let error as AMQPError where error.code == .channelClosed && error.replyCode == 404 {
            return nil  // never declared: nothing was ever published for the integration
        }
        try? await channel.close()
        return PairTrace.Session(
            queue: queue, ready: Int(state.messageCount), consumers: Int(state.consumerCount),
            heldBy: try await SessionLeases.holder(of: integrationID, pool: pool))
    }
}
