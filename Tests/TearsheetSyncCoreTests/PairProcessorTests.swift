import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// The worker's batch processing against the real database and the simulator.
@Suite struct PairProcessorTests {
    static let seed = SimulatorSeed(candidates: 200, jobOrders: 3, tearsheets: [])

    private func processor(_ fixture: FleetFixture, afterCreate: (@Sendable (Int64, Int64) throws -> Void)? = nil) -> PairProcessor {
        PairProcessor(
            pool: fixture.pool,
            clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration),
            afterSubmissionCreated: afterCreate)
    }

    private func pair(_ fixture: FleetFixture, campaign: Int64, candidate: Int64, job: Int64) -> PairKey {
        PairKey(campaignID: campaign, candidateID: candidate)
    }

    private func rows(_ fixture: FleetFixture) async throws -> Int {
        try await fixture.pool.query("SELECT count(*) FROM campaign_candidates WHERE source = 'TEARSHEETS'").scalar(Int.self)
    }

    @Test func theSamePairThreeTimesGivesOneRowAndOneJobSubmission() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidate = fixture.world.candidateIDs[0]
            try await fixture.addCampaign(1, job: job)
            let p = pair(fixture, campaign: 1, candidate: candidate, job: job)
            let first = try await processor(fixture).process([p, p, p], integrationID: fixture.integrationID)
            #expect(first.added == [PairKey(campaignID: 1, candidateID: candidate)])
            #expect(first.submissionsCreated == 1)
            let callsBefore = fixture.world.totalCalls
            let again = try await processor(fixture).process([p], integrationID: fixture.integrationID)
            #expect(again.added.isEmpty)
            #expect(again.alreadyOnCampaign == [p])
            #expect(fixture.world.totalCalls == callsBefore, "a pair already on its campaign costs no Bullhorn call")
            #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
            #expect(try await rows(fixture) == 1)
            let application = try await fixture.pool.query("SELECT ats_application_id FROM campaign_candidates").scalar(Int64?.self)
            #expect(application == fixture.world.jobSubmissions.first?.id)
        }
    }

    @Test func twoCampaignsOfOneJobShareOneJobSubmission() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[1]
            try await fixture.addCampaign(1, job: job)
            try await fixture.addCampaign(2, job: job)
            let candidates = Array(fixture.world.candidateIDs.prefix(5))
            let pairs = candidates.flatMap { c in [1, 2].map { pair(fixture, campaign: $0, candidate: c, job: job) } }
            let outcome = try await processor(fixture).process(pairs, integrationID: fixture.integrationID)
            #expect(outcome.added.count == 10)
            #expect(outcome.submissionsCreated == 5)
            for candidate in candidates { #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1) }
            #expect(fixture.world.callCounts["GET entity/Candidate"] == 1, "one multi-get indexes the batch")
        }
    }

    @Test func aCrashBetweenCreationAndRecordingNeverDuplicatesTheJobSubmission() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidate = fixture.world.candidateIDs[3]
            try await fixture.addCampaign(1, job: job)
            struct Crash: Error {}
            let crashing = processor(fixture) { _, _ in throw Crash() }
            // The answer is lost after Bullhorn created it: the pair is retried, never a dead letter.
            let lost = try await crashing.process([pair(fixture, campaign: 1, candidate: candidate, job: job)], integrationID: fixture.integrationID)
            #expect(lost.retry.map(\.pair) == [PairKey(campaignID: 1, candidateID: candidate)])
            #expect(lost.added.isEmpty && lost.deadLetters.isEmpty)
            #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
            #expect(try await rows(fixture) == 0)

            let retried = try await processor(fixture).process([pair(fixture, campaign: 1, candidate: candidate, job: job)], integrationID: fixture.integrationID)
            #expect(retried.submissionsCreated == 0)
            #expect(retried.submissionsFound == 1)
            #expect(retried.added.count == 1)
            #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
        }
    }

    @Test func oneFailedCreationLetsTheOthersThroughAndItsRetryCreatesNothingTwice() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidates = Array(fixture.world.candidateIDs.prefix(10)).sorted()
            let unlucky = candidates.last!  // created last: the others are all started (and end) before it fails
            try await fixture.addCampaign(1, job: job)
            let pairs = candidates.map { pair(fixture, campaign: 1, candidate: $0, job: job) }
            struct Crash: Error {}
            let crashing = processor(fixture) { candidate, _ in if candidate == unlucky { throw Crash() } }
            let first = try await crashing.process(pairs, integrationID: fixture.integrationID)
            #expect(first.retry.map(\.pair) == [PairKey(campaignID: 1, candidateID: unlucky)], "only the failed pair waits")
            #expect(first.added.count == 9, "the others are added at once")
            let recorded = try await fixture.pool.query(
                "SELECT ats_candidate_id FROM job_submission_intents WHERE ats_application_id IS NOT NULL ORDER BY 1"
            ).rows.map { try $0.decode(at: 0, as: Int64.self) }
            #expect(recorded == candidates.filter { $0 != unlucky }.sorted(), "every creation but the failed one is recorded")

            let retried = try await processor(fixture).process(pairs, integrationID: fixture.integrationID)
            #expect(retried.submissionsCreated == 0)
            #expect(retried.submissionsFound == 1, "only the unrecorded one is searched for, and found")
            #expect(retried.added.count == 1)
            #expect(retried.alreadyOnCampaign.count == 9)
            for candidate in candidates {
                #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
            }
        }
    }

    @Test func sessionsCreatingAtOnceShareTheProcessWritesAndEachKeepsItsShare() async throws {
        let faults = SimulatorFaults(endpointLatency: ["PUT entity/JobSubmission": .milliseconds(400)])
        try await FleetFixture.run(seed: Self.seed, faults: faults) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            try await fixture.addCampaign(1, job: job)
            // Four creations under way in the process; the integration's budget alone allows 16.
            var configuration = FleetFixture.clientConfiguration
            configuration.maxConcurrentCalls = 16
            let processor = PairProcessor(
                pool: fixture.pool,
                clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: configuration, writesUnderWay: 4))
            let alone = fixture.world.candidateIDs[0..<12].map { pair(fixture, campaign: 1, candidate: $0, job: job) }
            let outcome = try await processor.process(alone, integrationID: fixture.integrationID)
            #expect(outcome.submissionsCreated == 12)
            // Four at most; three at least (beside the whole suite a claim can come late).
            #expect((3...4).contains(fixture.world.mostCallsInFlight), "a session creating alone has every write of the process")

            fixture.world.resetMostCallsInFlight()
            let east = fixture.world.candidateIDs[12..<20].map { pair(fixture, campaign: 1, candidate: $0, job: job) }
            let west = fixture.world.candidateIDs[20..<28].map { pair(fixture, campaign: 1, candidate: $0, job: job) }
            async let eastOutcome = processor.process(east, integrationID: fixture.integrationID)
            async let westOutcome = processor.process(west, integrationID: fixture.integrationID)
            let (e, w) = try await (eastOutcome, westOutcome)
            #expect(e.added.count == 8 && w.added.count == 8)
            // Two each; a share is taken as a creation starts, so the first session may still
            // have its four under way when the second starts its two.
            #expect(fixture.world.mostCallsInFlight <= 6, "two sessions creating at once have two writes each")
            #expect(fixture.world.jobSubmissions.count == 28)
        }
    }

    @Test func unusablePairsBecomeDeadLettersWithTheirReason() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidate = fixture.world.candidateIDs[0]
            try await fixture.addCampaign(1, job: job)
            try await fixture.addCampaign(2, job: job, active: false)
            try await fixture.pool.query("INSERT INTO integrations (id) VALUES ('globex')")
            try await CampaignStore(pool: fixture.pool).upsert(id: 3, integrationID: "globex", atsJobID: job)
            let outcome = try await processor(fixture).process([
                pair(fixture, campaign: 99, candidate: candidate, job: job), pair(fixture, campaign: 2, candidate: candidate, job: job),
                pair(fixture, campaign: 3, candidate: candidate, job: job), pair(fixture, campaign: 1, candidate: 424_242, job: job),
                pair(fixture, campaign: 1, candidate: candidate, job: job),
            ], integrationID: fixture.integrationID)
            let reasons = outcome.deadLetters.map(\.reason).sorted()
            #expect(reasons == [
                "campaign 2 is inactive", "campaign 3 belongs to integration globex, not acme-staffing",
                "candidate 424242 does not exist in Bullhorn", "unknown campaign 99",
            ])
            #expect(outcome.added == [PairKey(campaignID: 1, candidateID: candidate)])
        }
    }

    @Test func candidatesAreIndexedOnceUntilStale() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            try await fixture.addCampaign(1, job: job)
            try await fixture.addCampaign(2, job: fixture.world.jobOrderIDs[1])
            let candidates = Array(fixture.world.candidateIDs.prefix(20))
            _ = try await processor(fixture).process(candidates.map { pair(fixture, campaign: 1, candidate: $0, job: job) }, integrationID: fixture.integrationID)
            let indexed = try await fixture.pool.query(
                "SELECT count(*) FROM candidates WHERE integration_id = \(fixture.integrationID) AND email LIKE '%@example.com' AND indexed_at IS NOT NULL"
            ).scalar(Int.self)
            #expect(indexed == 20)
            let email = try await fixture.pool.query("SELECT email FROM candidates ORDER BY ats_candidate_id LIMIT 1").scalar(String.self)
            let found = try await fixture.pool.query(
                "SELECT count(*) FROM candidates WHERE search @@ plainto_tsquery('simple', \(email))").scalar(Int.self)
            #expect(found == 1, "the full-text column covers the e-mail, unique per candidate")
            let multiGets = fixture.world.callCounts["GET entity/Candidate"]
            _ = try await processor(fixture).process(candidates.map { pair(fixture, campaign: 2, candidate: $0, job: fixture.world.jobOrderIDs[1]) }, integrationID: fixture.integrationID)
            #expect(fixture.world.callCounts["GET entity/Candidate"] == multiGets, "fresh index entries are not fetched again")
        }
    }

    @Test func aJobSubmissionBullhornRefusesDeadLettersItsPairAloneAtOnce() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidates = Array(fixture.world.candidateIDs.prefix(6)).sorted()
            let poison = candidates[2]
            fixture.world.refuseJobSubmissions(forCandidates: [poison])
            try await fixture.addCampaign(1, job: job)
            let outcome = try await processor(fixture).process(
                candidates.map { pair(fixture, campaign: 1, candidate: $0, job: job) }, integrationID: fixture.integrationID)
            #expect(outcome.deadLetters.map(\.pair) == [PairKey(campaignID: 1, candidateID: poison)])
            #expect(outcome.deadLetters.first?.reason.contains("refused the JobSubmission of candidate \(poison)") == true)
            #expect(outcome.added.count == 5)
            #expect(outcome.retry.isEmpty)
            #expect(fixture.world.callCounts["PUT entity/JobSubmission"] == 6, "each creation tried once")
        }
    }

    @Test func aLoginBullhornRefusesWhileCreatingLeavesThePairsWaitingNotDeadLettered() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidates = Array(fixture.world.candidateIDs.prefix(40)).sorted()
            try await fixture.addCampaign(1, job: job)
            let pairs = candidates.map { pair(fixture, campaign: 1, candidate: $0, job: job) }
            // From the first creation on, Bullhorn ends the session and refuses every login (the
            // corporation's sessions all taken): the creations still to come are refused.
            let world = fixture.world
            let refusing = processor(fixture) { _, _ in
                world.setFaults(SimulatorFaults(sessionLimit: 0))
                world.auth.expireAllSessions()
            }
            let first = try await refusing.process(pairs, integrationID: fixture.integrationID)
            #expect(first.deadLetters.isEmpty, "a refused login is not the pairs' fault")
            #expect(!first.retry.isEmpty)
            let reasons = first.retry.map { "\($0.error)" }
            #expect(reasons.allSatisfy { $0.hasPrefix("Bullhorn authentication") }, "\(reasons.first ?? "")")
            #expect(first.added.count + first.retry.count == 40)

            // Bullhorn takes logins again and the pause is over: the waiting pairs are added,
            // each with one JobSubmission.
            world.setFaults(SimulatorFaults())
            try await fixture.pool.query("UPDATE bullhorn_sessions SET refused_at = refused_at - interval '1 hour'")
            let second = try await processor(fixture).process(pairs, integrationID: fixture.integrationID)
            #expect(second.added.count == first.retry.count)
            for candidate in candidates {
                #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
            }
        }
    }

    /// Bullhorn holds three JobSubmission PUTs past the client's deadline and applies them
    /// later: the retries find nothing for a while, and must not create a second application
    /// (issue 11, finding 3).
    @Test func aWriteAppliedAfterTheDeadlineIsNeverCreatedTwice() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidates = Array(fixture.world.candidateIDs.prefix(3)).sorted()
            try await fixture.addCampaign(1, job: job)
            var configuration = FleetFixture.clientConfiguration
            configuration.requestTimeout = .seconds(1)
            let processor = PairProcessor(
                pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: configuration),
                uncertainWriteGrace: .seconds(8))
            let pairs = candidates.map { PairKey(campaignID: 1, candidateID: $0) }
            fixture.world.delayNextWrites(count: 3, by: .seconds(5))  // past the 1 s deadline, then applied

            let first = try await processor.process(pairs, integrationID: fixture.integrationID)
            #expect(Set(first.retry.map(\.pair)) == Set(pairs), "the outcome is unknown: retried")
            let again = try await processor.process(pairs, integrationID: fixture.integrationID)
            #expect(Set(again.deferred) == Set(pairs), "within the grace: not created again")

            try await Task.sleep(for: .seconds(8))  // the held writes landed; the grace is over
            let last = try await processor.process(pairs, integrationID: fixture.integrationID)
            #expect(fixture.world.callCounts["PUT entity/JobSubmission"] == 3, "one PUT each, the held ones")
            #expect(last.added.count == 3)
            #expect(last.submissionsCreated == 0)
            #expect(last.submissionsFound == 3)
            for candidate in candidates {
                #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
            }
        }
    }

    /// Two workers on the same pairs at once (a silent connection's messages handed to another
    /// worker while the first still works on them; a worker SIGKILLed while its PUT is held):
    /// each creation is claimed before it is sent, so the second defers instead of creating a
    /// second JobSubmission.
    @Test func twoWorkersOnTheSamePairsCreateOneJobSubmissionEach() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            let candidates = Array(fixture.world.candidateIDs.prefix(4)).sorted()
            try await fixture.addCampaign(1, job: job)
            fixture.world.setFaults(SimulatorFaults(endpointLatency: ["PUT entity/JobSubmission": .milliseconds(600)]))
            let pairs = candidates.map { PairKey(campaignID: 1, candidateID: $0) }
            let worker = {
                PairProcessor(
                    pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration),
                    uncertainWriteGrace: .seconds(30))
            }
            let (first, second) = (worker(), worker())
            async let one = first.process(pairs, integrationID: fixture.integrationID)
            async let two = second.process(pairs, integrationID: fixture.integrationID)
            let outcomes = try await [one, two]
            #expect(outcomes.map(\.submissionsCreated).reduce(0, +) == 4, "each created by one of them")
            #expect(Set(outcomes.flatMap(\.deferred)).count == 4 - outcomes.map(\.submissionsFound).reduce(0, +), "the other waits")
            for candidate in candidates {
                #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
            }
            #expect(fixture.world.callCounts["PUT entity/JobSubmission"] == 4)
        }
    }

    /// Bullhorn's strings are whatever recruiters typed, or pasted: quotes and SQL, NUL (valid
    /// in JSON, refused by PostgreSQL `text`), 100 kB names, every script. Each candidate is
    /// indexed and each pair added; none fails its batch.
    @Test func hostileStringsInEveryCandidateFieldAreIndexedAndThePairsAdded() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            try await fixture.addCampaign(1, job: job)
            let candidates = Array(fixture.world.candidateIDs.prefix(4))
            let huge = String(repeating: "é", count: 100_000)
            fixture.world.updateCandidate(candidates[0]) {
                $0.firstName = "Robert'); DROP TABLE candidates;--"
                $0.lastName = "O'Brien \"Bob\" \\ $1 %s {{x}}"
            }
            fixture.world.updateCandidate(candidates[1]) {
                $0.firstName = "Nul\u{0}Byte"
                $0.email = "nul\u{0}@example.com"
            }
            fixture.world.updateCandidate(candidates[2]) {
                $0.lastName = huge
                $0.occupation = "🧑‍💻 Ingeniera de software, 東京\n\ttab"
            }
            fixture.world.updateCandidate(candidates[3]) {
                $0.city = "\u{202E}evil RTL \u{FEFF}BOM"
                $0.companyName = String(repeating: "'", count: 5_000)
            }
            let outcome = try await processor(fixture).process(candidates.map { PairKey(campaignID: 1, candidateID: $0) }, integrationID: fixture.integrationID)
            #expect(outcome.added.count == 4)
            #expect(outcome.deadLetters.isEmpty && outcome.retry.isEmpty)
            let stored = { (id: Int64, column: String) async throws -> String in
                try await fixture.pool.query(
                    PostgresQuery(unsafeSQL: "SELECT \(column) FROM candidates WHERE ats_candidate_id = $1", binds: [PostgresBind(id)])
                ).scalar(String.self)
            }
            #expect(try await stored(candidates[0], "first_name") == "Robert'); DROP TABLE candidates;--")
            #expect(try await stored(candidates[0], "last_name") == "O'Brien \"Bob\" \\ $1 %s {{x}}")
            #expect(try await stored(candidates[1], "first_name") == "Nul\u{FFFD}Byte", "NUL cannot be stored: it is replaced, not the batch failed")
            #expect(try await stored(candidates[2], "last_name") == huge)
            #expect(try await stored(candidates[2], "occupation") == "🧑‍💻 Ingeniera de software, 東京\n\ttab")
            #expect(try await stored(candidates[3], "company_name").count == 5_000)
            #expect(try await fixture.pool.query("SELECT count(*) FROM candidates").scalar(Int.self) == 4, "the table is still there")
        }
    }
}
