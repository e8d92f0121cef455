import BullhornClient
import Foundation
import PostgresClient

/// Adds one session's pairs to their campaigns, effectively once, and says of each pair what
/// became of it: added, already there, dead letter (with its reason) or retry.
///
/// Pairs of unknown, inactive or foreign campaigns are dead letters; pairs already on their
/// campaign are skipped (one query, and no Bullhorn call when nothing is new); candidates
/// missing from the index, or stale, are fetched with one multi-get and upserted (one that
/// Bullhorn does not have is a dead letter); then each (candidate, job) gets exactly one
/// JobSubmission: an intent row is written first, Bullhorn is searched for the pending ones
/// (one query per job), only the missing ones are created, and what was found or created is
/// recorded in one statement. A crash anywhere leaves a pending intent, and the next attempt
/// searches before it creates. A creation Bullhorn refuses (400) dead-letters its pairs; one
/// that may pass (throttled, timed out, outcome unknown) sends its pairs to `retry`; one whose
/// earlier creation may still land (see `uncertainWriteGrace`) is `deferred`; the other pairs
/// go on. A failure of a step the whole batch shares (the database, the multi-get)
/// throws: the caller retries the batch.
public struct PairProcessor: Sendable {
    let pool: PostgresPool
    let clients: BullhornClients
    let indexMaxAge: Duration
    /// JobSubmissions created at once for one batch.
    let submissionConcurrency: Int
    /// After a creation whose outcome was unknown (a timeout), how long Bullhorn may still
    /// apply it: no second creation before that, however often the search finds nothing.
    /// Longer than the client's request timeout (60 s) plus what Bullhorn may sit on a write.
    let uncertainWriteGrace: Duration
    /// Test hook: runs right after a JobSubmission is created, before it is recorded.
    let afterSubmissionCreated: (@Sendable (_ candidate: Int64, _ job: Int64) throws -> Void)?

    public init(
        pool: PostgresPool, clients: BullhornClients, indexMaxAge: Duration = .seconds(86_400), submissionConcurrency: Int = 16,
        uncertainWriteGrace: Duration = .seconds(180), afterSubmissionCreated: (@Sendable (Int64, Int64) throws -> Void)? = nil
    ) {
        self.pool = pool
        self.clients = clients
        self.indexMaxAge = indexMaxAge
        self.submissionConcurrency = max(submissionConcurrency, 1)
        self.uncertainWriteGrace = uncertainWriteGrace
        self.afterSubmissionCreated = afterSubmissionCreated
    }

    /// A pair to add, with the job its campaign is on.
    private struct PairOnJob: Hashable {
        let pair: PairKey
        let jobID: Int64

        var candidateJob: CandidateJob { CandidateJob(candidateID: pair.candidateID, jobID: jobID) }
    }

    /// Processes the pairs of one integration (a session). A pair given twice is one pair.
    public func process(_ pairs: [PairKey], integrationID: String) async throws -> PairBatchOutcome {
        var outcome = PairBatchOutcome()
        let campaigns = CampaignStore(pool: pool)
        let unique = Array(Set(pairs))
        // Both lookups in one statement: a batch whose pairs are all on their campaigns (the
        // common case) costs one. Pairs of campaigns that turn out invalid are dead letters
        // whatever the lookup says of them.
        let (states, existing) = try await campaigns.campaignsAndExistingPairs(
            campaignIDs: Array(Set(unique.map(\.campaignID))), candidateIDs: Array(Set(unique.map(\.candidateID))))
        let valid = validCampaigns(unique, integrationID: integrationID, campaigns: states, into: &outcome)
        guard !valid.isEmpty else { return outcome }
        outcome.alreadyOnCampaign = valid.map(\.pair).filter(existing.contains)
        var remaining = valid.filter { !existing.contains($0.pair) }
        guard !remaining.isEmpty else { return outcome }  // nothing new: no Bullhorn call at all

        let client = try await clients.client(for: integrationID)
        let missing = try await index(Set(remaining.map(\.pair.candidateID)), integrationID: integrationID, client: client, into: &outcome)
        for pending in remaining where missing.contains(pending.pair.candidateID) {
            outcome.deadLetters.append((pending.pair, "candidate \(pending.pair.candidateID) does not exist in Bullhorn"))
        }
        remaining = remaining.filter { !missing.contains($0.pair.candidateID) }
        guard !remaining.isEmpty else { return outcome }

        let (applications, failures, deferred) = try await submissions(
            for: Set(remaining.map(\.candidateJob)), integrationID: integrationID, client: client, into: &outcome)
        var settled: [PairKey] = []
        var applicationOf: [PairKey: Int64] = [:]
        for pending in remaining.sorted(by: { ($0.pair.campaignID, $0.pair.candidateID) < ($1.pair.campaignID, $1.pair.candidateID) }) {
            if deferred.contains(pending.candidateJob) {
                outcome.deferred.append(pending.pair)
                continue
            }
            if let failure = failures[pending.candidateJob] {
                // As for a whole batch's failure: what may pass, and a login Bullhorn refuses
                // (the operator's to fix, not the pair's), waits; the rest is the pair's own.
                if FailureAction(failure) == .retry {
                    outcome.retry.append((pending.pair, failure))
                } else {
                    outcome.deadLetters.append(
                        (pending.pair, "Bullhorn refused the JobSubmission of candidate \(pending.pair.candidateID) on job \(pending.jobID): \(failure)"))
                }
                continue
            }
            settled.append(pending.pair)
            applicationOf[pending.pair] = applications[pending.candidateJob]
        }
        let added = try await campaigns.addPairs(settled, integrationID: integrationID, applications: applicationOf)
        for pair in settled {
            if added.contains(pair) { outcome.added.append(pair) } else { outcome.alreadyOnCampaign.append(pair) }
        }
        return outcome
    }

    /// Pairs whose campaign exists, is active and belongs to the integration; the job is the
    /// campaign's (the database is the truth if the campaign was re-pointed since publishing).
    private func validCampaigns(
        _ pairs: [PairKey], integrationID: String, campaigns: [Int64: CampaignStore.CampaignState], into outcome: inout PairBatchOutcome
    ) -> [PairOnJob] {
        var valid: [PairOnJob] = []
        for pair in pairs {
            guard let campaign = campaigns[pair.campaignID] else {
                outcome.deadLetters.append((pair, "unknown campaign \(pair.campaignID)"))
                continue
            }
            guard campaign.integrationID == integrationID else {
                outcome.deadLetters.append((pair, "campaign \(pair.campaignID) belongs to integration \(campaign.integrationID), not \(integrationID)"))
                continue
            }
            guard campaign.active else {
                outcome.deadLetters.append((pair, "campaign \(pair.campaignID) is inactive"))
                continue
            }
            valid.append(PairOnJob(pair: pair, jobID: campaign.atsJobID))
        }
        return valid
    }

    /// Indexes the candidates that need it with one multi-get; returns those Bullhorn does not have.
    private func index(_ candidates: Set<Int64>, integrationID: String, client: BullhornClient, into outcome: inout PairBatchOutcome) async throws -> Set<Int64> {
        let index = CandidateIndex(pool: pool)
        let stale = Date().addingTimeInterval(-indexMaxAge.timeInterval)
        let needed = try await index.needingIndex(integrationID: integrationID, candidateIDs: Array(candidates), staleBefore: stale)
        guard !needed.isEmpty else { return [] }
        let fetched = try await client.candidates(ids: needed)
        try await index.upsert(integrationID: integrationID, fetched)
        outcome.candidatesIndexed += fetched.count
        return Set(needed).subtracting(fetched.map(\.id))
    }

    /// Exactly one JobSubmission per (candidate, job): intent first, one search per job, then
    /// the missing ones created, up to `submissionConcurrency` at once (the integration's
    /// budget caps what is in flight across the worker). Every missing one is attempted; the
    /// ones that failed come back with their error. What was found or created is recorded
    /// before this returns; one created but not recorded (a crash, a lost answer) is found by
    /// the next attempt's search. Each creation is claimed right before it is sent; one whose
    /// claim is younger than `uncertainWriteGrace` (its outcome unknown: a timeout, a crash, another
    /// worker still waiting on it) is not created again: Bullhorn may apply a write after the
    /// client gave up on it, and a search in between finds nothing (issue 11, finding 3); it
    /// comes back `deferred`.
    private func submissions(
        for keys: Set<CandidateJob>, integrationID: String, client: BullhornClient, into outcome: inout PairBatchOutcome
    ) async throws -> (applications: [CandidateJob: Int64], failures: [CandidateJob: BullhornError], deferred: Set<CandidateJob>) {
        let intents = JobSubmissionIntents(pool: pool, integrationID: integrationID)
        var (known, pendingByJob) = try await intents.open(Array(keys))
        var missing: [CandidateJob] = []
        var found: [CandidateJob: Int64] = [:]
        for (job, candidates) in pendingByJob.sorted(by: { $0.key < $1.key }) {
            let existing = try await client.findJobSubmissions(jobOrderID: job, candidateIDs: candidates)
            for candidate in candidates.sorted() {
                let key = CandidateJob(candidateID: candidate, jobID: job)
                if let application = existing[candidate] { found[key] = application } else { missing.append(key) }
            }
        }
        outcome.submissionsFound += found.count
        let (created, failures, deferred) = try await create(missing, client: client, intents: intents)
        outcome.submissionsCreated += created.count
        let settled = found.merging(created) { _, new in new }
        try await intents.complete(settled)
        let lost = failures.filter { $0.value.code == .ambiguousWrite }.map(\.key)
        try await intents.markUncertain(lost)
        try await intents.release(failures.keys.filter { !lost.contains($0) })
        known.merge(settled) { _, new in new }
        return (known, failures, deferred)
    }

    /// Creates a JobSubmission for each (candidate, job), at most `submissionConcurrency` at a
    /// time, fewer when many sessions of this process create at once (`WriteShares`), each
    /// claimed right before its PUT (see `JobSubmissionIntents.claim`): one whose claim
    /// another attempt holds, or held within the grace, is deferred. A crash then leaves at
    /// most the PUTs in flight uncertain, not the whole batch. A failure that is not Bullhorn's
    /// own is a bug or an outage of ours: it is reported as `.ambiguousWrite`, retriable.
    private func create(
        _ keys: [CandidateJob], client: BullhornClient, intents: JobSubmissionIntents
    ) async throws -> (created: [CandidateJob: Int64], failures: [CandidateJob: BullhornError], deferred: Set<CandidateJob>) {
        enum Creation: Sendable {
            case created(Int64), failed(BullhornError), deferred
        }
        var created: [CandidateJob: Int64] = [:]
        var failures: [CandidateJob: BullhornError] = [:]
        var deferred: Set<CandidateJob> = []
        guard !keys.isEmpty else { return (created, failures, deferred) }
        let shares = clients.writeShares
        shares.join()
        defer { shares.leave() }
        try await withThrowingTaskGroup(of: (CandidateJob, Creation).self) { group in
            var queue = keys.makeIterator()
            var underWay = 0
            // Starts creations until the session has its share under way, or none is left.
            func startUpToShare() {
                while underWay < shares.share(atMost: submissionConcurrency), let key = queue.next() {
                    underWay += 1
                    group.addTask { [afterSubmissionCreated, uncertainWriteGrace] in
                        guard try await intents.claim([key], grace: uncertainWriteGrace).contains(key) else { return (key, .deferred) }
                        do {
                            let application = try await client.createJobSubmission(candidateID: key.candidateID, jobOrderID: key.jobID)
                            try afterSubmissionCreated?(key.candidateID, key.jobID)
                            return (key, .created(application))
                        } catch let error as BullhornError {
                            return (key, .failed(error))
                        } catch {
                            return (key, .failed(BullhornError(.ambiguousWrite, endpoint: "PUT entity/JobSubmission", "\(error)")))
                        }
                    }
                }
            }
            startUpToShare()
            while let (key, result) = try await group.next() {
                underWay -= 1
                switch result {
                case .created(let application): created[key] = application
                case .failed(let error): failures[key] = error
                case .deferred: deferred.insert(key)
                }
                startUpToShare()
            }
        }
        return (created, failures, deferred)
    }
}
