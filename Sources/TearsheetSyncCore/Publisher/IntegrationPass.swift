import AMQPClient
import BullhornClient
import Foundation
import Logging
import PostgresClient

/// One publisher pass over one integration: tearsheets changed since the watermark, to one
/// confirmed message per (campaign, candidate) pair, then the watermark.
///
/// Calls are Bullhorn's scarcest resource, so a pass makes few: tearsheets come a page (500)
/// at a time with their job orders and candidates embedded, and one with at most five of
/// each needs no other call; tearsheets with up to a page of members share member queries
/// (`tearsheet.id IN (…)`); only larger ones are read on their own. Memory stays flat: a large
/// tearsheet's members stream page by page and each batch is published (and confirmed)
/// before the next page is read. The watermark moves only when every message of the pass was
/// confirmed and routed; any failure leaves it where it was.
struct IntegrationPass {
    let integration: Integration
    let client: BullhornClient
    let campaigns: CampaignStore
    let channel: AMQPChannel
    let session: SessionQueue
    let sessionWork: SessionWorkStore
    let options: PublisherOptions
    let progress: @Sendable (PassSummary) -> Void

    /// `previous` is what earlier passes handled inside the overlap window; what this pass
    /// handles goes into `handled`, committed with the watermark.
    func run(into summary: inout PassSummary, previous: PublisherMarks, handled: inout PublisherMarks) async throws {
        let since: Date? = options.full ? nil : integration.tearsheetsLastSyncedAt.map { $0 - options.overlap.timeInterval }
        try await withThrowingTaskGroup(of: [BullhornMemberAddition].self) { additionsRead in
            var fullyPublished = Set<Int64>()
            // The member additions (see below) are read beside the tearsheets and their members
            // as soon as their window is known: at the start of an incremental pass, once the
            // last page of tearsheets is in for a first one. Read after everything else, they
            // cost a first pass over 10,000 new members 20 calls in a row, about a tenth of its
            // time (`tearsheet-bench publisher`). What they find is handled after the
            // tearsheets; they are held whole meanwhile (an overlap window's worth, 40 bytes
            // each). The read is the group's one child: a pass that fails cancels it and returns
            // only once it has ended, so no call of a failed pass goes on spending the budget.
            var additionsStarted = false
            // Their window: from the watermark less the overlap, or, with none, from the newest
            // tearsheet change less the overlap (so that a first pass marks them handled too).
            func startAdditions(newestChange: Date?) {
                guard !additionsStarted, let start = since ?? newestChange.map({ $0 - options.overlap.timeInterval }) else { return }
                additionsStarted = true
                let client = client
                additionsRead.addTask { try await client.membersAdded(since: start).collect() }
            }
            startAdditions(newestChange: nil)
            var pages = client.tearsheetsModified(since: since).makePageIterator()
            while let page = try await pages.next() {
                if pages.isFinished { startAdditions(newestChange: ([summary.newestChange].compactMap { $0 } + page.map(\.dateLastModified)).max()) }
                var sharing: [(tearsheet: BullhornTearsheet, campaigns: [CampaignStore.Campaign], change: Date?, members: Int)] = []
                for tearsheet in page {
                    summary.newestChange = max(summary.newestChange ?? tearsheet.dateLastModified, tearsheet.dateLastModified)
                    handled.tearsheets[tearsheet.id] = tearsheet.dateLastModified
                    if !options.full, previous.handled(tearsheet: tearsheet.id, version: tearsheet.dateLastModified) {
                        summary.tearsheetsUnchanged += 1  // re-read inside the overlap window, already sent
                        continue
                    }
                    fullyPublished.insert(tearsheet.id)
                    // The change that calls for the pairs, for their freshness: only a change since the
                    // watermark is one (a first or a --full pass reads tearsheets changed months ago).
                    let change = since.flatMap { tearsheet.dateLastModified > $0 ? tearsheet.dateLastModified : nil }
                    summary.tearsheetsScanned += 1
                    let active = try await activeCampaigns(of: tearsheet, into: &summary)
                    guard !active.isEmpty else { continue }
                    switch tearsheet.candidates {
                    case .complete(let candidates):
                        try await publish(candidates: candidates, campaigns: active, tearsheet: tearsheet, changedAt: { _ in change }, into: &summary)
                    case .truncated(let total) where total <= client.configuration.pageSize:
                        sharing.append((tearsheet, active, change, total))
                    case .truncated, .unknown:
                        try await publishAllMembers(of: tearsheet, campaigns: active, changedAt: change, into: &summary)
                    }
                }
                let sharingByID = Dictionary(uniqueKeysWithValues: sharing.map { ($0.tearsheet.id, $0) })  // a page holds each id once
                for group in Self.sharedReads(sharing.map { ($0.tearsheet.id, $0.members) }, pageSize: client.configuration.pageSize) {
                    var members: [Int64: [Int64]] = [:]
                    for try await member in client.tearsheetCandidateIDs(ofTearsheets: group) {
                        members[member.tearsheetID, default: []].append(member.candidateID)
                    }
                    for read in group.compactMap({ sharingByID[$0] }) {
                        try await publish(
                            candidates: members[read.tearsheet.id] ?? [], campaigns: read.campaigns, tearsheet: read.tearsheet,
                            changedAt: { _ in read.change }, into: &summary)
                    }
                }
            }
            // Adding a member may not bump the tearsheet's dateLastModified: member additions since
            // the watermark find those, and only the added candidates need publishing. A pass with
            // no watermark still reads the additions of the overlap window, to mark them handled
            // (its full reads covered them) so that the next pass does not send them again.
            startAdditions(newestChange: summary.newestChange)
            guard let additions = try await additionsRead.next() else { return }
            var added: [Int64: [Int64]] = [:]
            var addedAt: [Int64: Date] = [:]  // by candidate: the change that calls for its pairs
            for addition in additions {
                summary.newestChange = max(summary.newestChange ?? addition.dateAdded, addition.dateAdded)
                handled.members[addition.memberID] = addition.dateAdded
                guard previous.members[addition.memberID] == nil, !fullyPublished.contains(addition.tearsheetID),
                    let candidate = addition.candidateID
                else { continue }
                added[addition.tearsheetID, default: []].append(candidate)
                addedAt[candidate] = max(addedAt[candidate] ?? addition.dateAdded, addition.dateAdded)
            }
            for tearsheet in try await client.tearsheets(ids: added.keys.sorted()) {
                if tearsheet.isPrivate || tearsheet.isDeleted {
                    summary.tearsheetsIgnored += 1
                    continue
                }
                summary.tearsheetsScanned += 1
                let active = try await activeCampaigns(of: tearsheet, into: &summary)
                guard !active.isEmpty else { continue }
                try await publish(
                    candidates: added[tearsheet.id] ?? [], campaigns: active, tearsheet: tearsheet, changedAt: { since == nil ? nil : addedAt[$0] },
                    into: &summary)
            }
        }
    }

    /// Groups tearsheets (id, member count) whose members fit one page together, largest
    /// first, for one member query each group; at most 100 ids a group keep the query short.
    static func sharedReads(_ tearsheets: [(id: Int64, members: Int)], pageSize: Int) -> [[Int64]] {
        var groups: [(ids: [Int64], members: Int)] = []
        for tearsheet in tearsheets.sorted(by: { ($0.members, $1.id) > ($1.members, $0.id) }) {
            if let index = groups.firstIndex(where: { $0.members + tearsheet.members <= pageSize && $0.ids.count < 100 }) {
                groups[index].ids.append(tearsheet.id)
                groups[index].members += tearsheet.members
            } else {
                groups.append(([tearsheet.id], tearsheet.members))
            }
        }
        return groups.map(\.ids)
    }

    private func activeCampaigns(of tearsheet: BullhornTearsheet, into summary: inout PassSummary) async throws -> [CampaignStore.Campaign] {
        let jobs = try await client.jobOrderIDs(of: tearsheet)
        let active = try await campaigns.activeCampaigns(integrationID: integration.id, jobIDs: jobs)
        if active.isEmpty {
            summary.tearsheetsWithoutCampaigns += 1  // no campaign: no pairs, and no member reads
            progress(summary)
        }
        return active
    }

    /// Streams a large tearsheet's members page by page, one batch in flight at the broker
    /// while the next is read.
    private func publishAllMembers(
        of tearsheet: BullhornTearsheet, campaigns active: [CampaignStore.Campaign], changedAt change: Date?, into summary: inout PassSummary
    ) async throws {
        var members = client.tearsheetCandidateIDs(tearsheet.id).makeAsyncIterator()
        let batchSize = options.candidatesPerBatch
        try await publish(
            batches: {
                var batch: [Int64] = []
                batch.reserveCapacity(batchSize)
                while batch.count < batchSize, let candidate = try await members.next() { batch.append(candidate) }
                return batch.isEmpty ? nil : batch
            }, campaigns: active, tearsheet: tearsheet, changedAt: { _ in change }, into: &summary)
    }

    /// Publishes the pairs of `candidates` (already in hand), a batch at a time.
    private func publish(
        candidates: [Int64], campaigns active: [CampaignStore.Campaign], tearsheet: BullhornTearsheet, changedAt: (Int64) -> Date?,
        into summary: inout PassSummary
    ) async throws {
        var starts = stride(from: 0, to: candidates.count, by: options.candidatesPerBatch).makeIterator()
        let batchSize = options.candidatesPerBatch
        try await publish(
            batches: { starts.next().map { Array(candidates[$0..<min($0 + batchSize, candidates.count)]) } }, campaigns: active,
            tearsheet: tearsheet, changedAt: changedAt, into: &summary)
    }

    /// Publishes the pairs of each batch `nextBatch` gives (nil: no more) that are not yet on
    /// their campaigns, and waits for the broker to confirm them: batch k+1 is read and
    /// prepared while batch k is confirmed.
    private func publish(
        batches nextBatch: () async throws -> [Int64]?, campaigns active: [CampaignStore.Campaign], tearsheet: BullhornTearsheet,
        changedAt: (Int64) -> Date?, into summary: inout PassSummary
    ) async throws {
        var sender = ConfirmedSender(channel: channel, session: session, window: options.confirmWindow)
        do {
            while let batch = try await nextBatch() {
                let publishes = try await prepare(candidates: batch, campaigns: active, tearsheet: tearsheet, changedAt: changedAt, into: &summary)
                try await confirmed(try await sender.send(publishes), into: &summary)
                progress(summary)
            }
            try await confirmed(try await sender.finish(), into: &summary)
        } catch {
            sender.abandon()
            throw error
        }
        progress(summary)
    }

    /// Counts messages the broker confirmed and tells the workers that the session has work,
    /// page by page: a long pass need not end before workers start on it.
    private func confirmed(_ count: Int, into summary: inout PassSummary) async throws {
        summary.pairsPublished += count
        if count > 0 { try await sessionWork.markPublished(integration.id) }
    }

    /// The messages for campaigns × candidates, less the pairs already on their campaign (one
    /// query for the batch). `changedAt` is the Bullhorn change that calls for a candidate's
    /// pairs, carried to the worker for the freshness figures (nil: none in this pass's window).
    private func prepare(
        candidates: [Int64], campaigns active: [CampaignStore.Campaign], tearsheet: BullhornTearsheet, changedAt: (Int64) -> Date?,
        into summary: inout PassSummary
    ) async throws -> [AMQPPublish] {
        let existing = try await campaigns.existingPairs(campaignIDs: active.map(\.id), candidateIDs: candidates)
        var publishes: [AMQPPublish] = []
        publishes.reserveCapacity(active.count * candidates.count)
        let now = Date()
        for campaign in active {
            for candidate in candidates {
                summary.pairsFound += 1
                if existing.contains(PairKey(campaignID: campaign.id, candidateID: candidate)) {
                    summary.pairsAlreadyOnCampaign += 1
                    continue
                }
                let pair = PairMessage(
                    integrationId: integration.id, campaignId: campaign.id, atsCandidateId: candidate, atsJobId: campaign.atsJobID,
                    tearsheetId: tearsheet.id)
                publishes.append(
                    AMQPPublish(exchange: Topology.pairsExchange, routingKey: session.routingKey, mandatory: true, message: pair.amqpMessage(at: now, changedAt: changedAt(candidate))))
            }
        }
        return publishes
    }
}

/// Keeps the broker busy: batch k+1 is handed to the connection before the pass waits for the
/// confirms of batch k, so that the confirm window never drains between batches (it did, once
/// a batch of 5,000, and that bubble cost a fifth of the publish rate). `send` returns how
/// many messages of the previous batch were confirmed; at most two batches are in memory.
struct ConfirmedSender {
    let channel: AMQPChannel
    let session: SessionQueue
    let window: Int
    private var inFlight: Task<Int, any Error>?

    init(channel: AMQPChannel, session: SessionQueue, window: Int) {
        self.channel = channel
        self.session = session
        self.window = window
    }

    mutating func send(_ publishes: [AMQPPublish]) async throws -> Int {
        let previous = inFlight
        inFlight = nil
        if !publishes.isEmpty { inFlight = start(publishes) }
        guard let previous else { return 0 }
        return try await previous.value
    }

    private func start(_ publishes: [AMQPPublish]) -> Task<Int, any Error> {
        let (channel, session, window) = (channel, session, window)
        return Task {
            let outcomes = try await channel.publish(publishes, window: window)
            let unconfirmed = outcomes.filter { !$0.isConfirmed }
            guard unconfirmed.isEmpty else {
                let returned = unconfirmed.filter { if case .returned = $0 { return true } else { return false } }.count
                throw PublishFailure(
                    "\(unconfirmed.count) of \(outcomes.count) messages not accepted by the broker (\(returned) unroutable: is the topology applied?, \(unconfirmed.count - returned) nacked: is \(session.queue) full?)")
            }
            return outcomes.count
        }
    }

    /// Waits for the batch in flight; returns how many it confirmed.
    mutating func finish() async throws -> Int {
        guard let task = inFlight else { return 0 }
        inFlight = nil
        return try await task.value
    }

    /// After a failure elsewhere: the pass fails whatever this batch does.
    mutating func abandon() {
        inFlight?.cancel()
        inFlight = nil
    }
}

public struct PublishFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
