import BullhornClient
import Foundation
import PostgresClient

/// Adds a batch of (campaign, candidate) pairs to their campaigns, effectively once.
///
/// For each integration in the batch: pairs of unknown, inactive or foreign campaigns are
/// dead letters; pairs already on their campaign are skipped (one query); candidates missing
/// from the index, or stale, are fetched with one multi-get and upserted; then each (candidate,
/// job) gets exactly one JobSubmission: an intent row is written first, Bullhorn is searched
/// for the pending ones (one query per job), only the missing ones are created, and each
/// creation is recorded at once. A crash anywhere leaves a pending intent, and the next attempt
/// searches before it creates: never a second JobSubmission. Finally the rows go into
/// `campaign_candidates` (`ON CONFLICT DO NOTHING` re-checks at the last moment).
public struct PairProcessor: Sendable {
    let pool: PostgresPool
    let clients: BullhornClients
    let indexMaxAge: Duration
    /// JobSubmissions created at once for one batch.
    let submissionConcurrency: Int
    /// Test hook: runs right after a JobSubmission is created, before it is recorded.
    let afterSubmissionCreated: (@Sendable (_ candidate: Int64, _ job: Int64) throws -> Void)?

    public init(
        pool: PostgresPool, clients: BullhornClients, indexMaxAge: Duration = .seconds(86_400), submissionConcurrency: Int = 4,
        afterSubmissionCreated: (@Sendable (Int64, Int64) throws -> Void)? = nil
    ) {
        self.pool = pool
        self.clients = clients
        self.indexMaxAge = indexMaxAge
        self.submissionConcurrency = max(submissionConcurrency, 1)
        self.afterSubmissionCreated = afterSubmissionCreated
    }

    public func process(_ pairs: [PairMessage]) async throws -> PairBatchOutcome {
        var outcome = PairBatchOutcome()
        for (integrationID, group) in Dictionary(grouping: pairs, by: \.integrationId).sorted(by: { $0.key < $1.key }) {
            try await process(group, integrationID: integrationID, into: &outcome)
        }
        return outcome
    }

    private struct Pending: Hashable {
        let campaignID: Int64
        let candidateID: Int64
        let jobID: Int64
    }

    private func process(_ pairs: [PairMessage], integrationID: String, into outcome: inout PairBatchOutcome) async throws {
        let valid = try await validCampaigns(pairs, integrationID: integrationID, into: &outcome)
        guard !valid.isEmpty else { return }
        let existing = try await CampaignStore(pool: pool).existingPairs(
            campaignIDs: Array(Set(valid.map(\.campaignID))), candidateIDs: Array(Set(valid.map(\.candidateID))))
        var remaining = Set<Pending>()
        for pending in valid {
            if existing.contains(PairKey(campaignID: pending.campaignID, candidateID: pending.candidateID)) {
                outcome.alreadyOnCampaign += 1
            } else {
                remaining.insert(pending)
            }
        }
        guard !remaining.isEmpty else { return }  // nothing new: no Bullhorn call at all

        let client = try await clients.client(for: integrationID)
        let missing = try await index(Set(remaining.map(\.candidateID)), integrationID: integrationID, client: client, into: &outcome)
        for pending in remaining where missing.contains(pending.candidateID) {
            let pair = pairs.first { $0.campaignId == pending.campaignID && $0.atsCandidateId == pending.candidateID }!
            outcome.deadLetters.append((pair, "candidate \(pending.candidateID) does not exist in Bullhorn"))
        }
        remaining = remaining.filter { !missing.contains($0.candidateID) }
        guard !remaining.isEmpty else { return }

        let applications = try await submissions(for: remaining, integrationID: integrationID, client: client, into: &outcome)
        let rows = remaining.sorted { ($0.campaignID, $0.candidateID) < ($1.campaignID, $1.candidateID) }
        let added = try await pool.query(
            """
            INSERT INTO campaign_candidates (campaign_id, ats_candidate_id, integration_id, source, ats_application_id, added_at)
            SELECT c, a, \(integrationID), \(PairMessage.source), app, now()
              FROM unnest(\(rows.map(\.campaignID))::bigint[], \(rows.map(\.candidateID))::bigint[],
                          \(PostgresNullableArray(rows.map { applications[CandidateJob(candidateID: $0.candidateID, jobID: $0.jobID)] }))::bigint[])
                AS r(c, a, app)
            ON CONFLICT (campaign_id, ats_candidate_id) DO NOTHING
            RETURNING campaign_id, ats_candidate_id
            """
        ).rows
        outcome.added += try added.map { PairKey(campaignID: try $0.decode(at: 0), candidateID: try $0.decode(at: 1)) }
        outcome.alreadyOnCampaign += rows.count - added.count
    }

    /// Pairs whose campaign exists, is active and belongs to the integration; the job is the
    /// campaign's (the database is the truth if the campaign was re-pointed since publishing).
    private func validCampaigns(_ pairs: [PairMessage], integrationID: String, into outcome: inout PairBatchOutcome) async throws -> [Pending] {
        let ids = Array(Set(pairs.map(\.campaignId)))
        var campaigns: [Int64: (integration: String, job: Int64, active: Bool)] = [:]
        for row in try await pool.query("SELECT id, integration_id, ats_job_id, active FROM campaigns WHERE id = ANY(\(ids))").rows {
            campaigns[try row.decode("id")] = (try row.decode("integration_id"), try row.decode("ats_job_id"), try row.decode("active"))
        }
        var valid: [Pending] = []
        for pair in pairs {
            guard let campaign = campaigns[pair.campaignId] else {
                outcome.deadLetters.append((pair, "unknown campaign \(pair.campaignId)"))
                continue
            }
            guard campaign.integration == integrationID else {
                outcome.deadLetters.append((pair, "campaign \(pair.campaignId) belongs to integration \(campaign.integration), not \(integrationID)"))
                continue
            }
            guard campaign.active else {
                outcome.deadLetters.append((pair, "campaign \(pair.campaignId) is inactive"))
                continue
            }
            valid.append(Pending(campaignID: pair.campaignId, candidateID: pair.atsCandidateId, jobID: campaign.job))
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
    /// the missing ones created, up to `submissionConcurrency` at once (Bullhorn answers in a
    /// few hundred ms; the integration's budget caps what is in flight across the worker).
    /// What was found or created is recorded even when a creation fails; one created but not
    /// recorded (a crash, a lost answer) is found by the next attempt's search.
    private func submissions(
        for pairs: Set<Pending>, integrationID: String, client: BullhornClient, into outcome: inout PairBatchOutcome
    ) async throws -> [CandidateJob: Int64] {
        let intents = JobSubmissionIntents(pool: pool, integrationID: integrationID)
        var (known, pendingByJob) = try await intents.open(Array(Set(pairs.map { CandidateJob(candidateID: $0.candidateID, jobID: $0.jobID) })))
        for (job, candidates) in pendingByJob.sorted(by: { $0.key < $1.key }) {
            let existing = try await client.findJobSubmissions(jobOrderID: job, candidateIDs: candidates)
            var settled: [CandidateJob: Int64] = [:]
            var missing: [Int64] = []
            for candidate in candidates.sorted() {
                if let application = existing[candidate] {
                    settled[CandidateJob(candidateID: candidate, jobID: job)] = application
                } else {
                    missing.append(candidate)
                }
            }
            outcome.submissionsFound += settled.count
            let (created, failure) = await create(missing, job: job, client: client)
            for (candidate, application) in created {
                settled[CandidateJob(candidateID: candidate, jobID: job)] = application
            }
            outcome.submissionsCreated += created.count
            try await intents.complete(settled)
            known.merge(settled) { _, new in new }
            if let failure { throw failure }
        }
        return known
    }

    /// Creates a JobSubmission for each candidate, `submissionConcurrency` at a time, and
    /// returns (candidate, application id) for each created. After a failure no more are
    /// started; the ones in flight end, and the first failure is returned with them.
    private func create(_ candidates: [Int64], job: Int64, client: BullhornClient) async -> (created: [(Int64, Int64)], failure: (any Error)?) {
        var created: [(Int64, Int64)] = []
        var failure: (any Error)?
        await withTaskGroup(of: Result<(Int64, Int64), any Error>.self) { group in
            var queue = candidates.makeIterator()
            func startNext() {
                guard failure == nil, let candidate = queue.next() else { return }
                group.addTask { [afterSubmissionCreated] in
                    do {
                        let application = try await client.createJobSubmission(candidateID: candidate, jobOrderID: job)
                        try afterSubmissionCreated?(candidate, job)
                        return .success((candidate, application))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            for _ in 0..<submissionConcurrency { startNext() }
            while let result = await group.next() {
                switch result {
                case .success(let pair): created.append(pair)
                case .failure(let error): failure = failure ?? error
                }
                startNext()
            }
        }
        return (created, failure)
    }
}
