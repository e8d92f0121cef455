import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

/// What sessions promise, tried as an operator would: a backlogged integration delays no
/// other, a pair that cannot succeed goes alone, and an outage longer than any backoff ladder
/// loses and dead-letters nothing.
@Suite struct SessionIsolationTests {
    /// Integration A has 600 new pairs and a budget of 120 Bullhorn calls a minute (five
    /// minutes of work); B and C, 15 pairs each, are published after A. Partition queues made
    /// B wait for A; sessions must not.
    @Test func aBackloggedIntegrationDelaysNoOther() async throws {
        let seed = SimulatorSeed(
            candidates: 800, jobOrders: 3, tearsheets: [.init(members: 600, jobs: 1), .init(members: 15, jobs: 1), .init(members: 15, jobs: 1)])
        try await FleetFixture.run(seed: seed, integrationID: "a-backlogged") { fixture in
            try await fixture.registerIntegration("a-backlogged", callsPerMinute: 120)
            for id in ["b-small", "c-small"] { try await fixture.registerIntegration(id, callsPerMinute: 1_200) }
            for (index, id) in ["a-backlogged", "b-small", "c-small"].enumerated() {
                let job = fixture.world.jobOrderIDs[index]  // a job of its own each
                fixture.world.updateTearsheet(fixture.world.tearsheets[index].id, at: 1_764_000_000_000) { $0.jobOrderIDs = [job] }
                try await CampaignStore(pool: fixture.pool).upsert(id: Int64(10 + index), integrationID: id, atsJobID: job)
            }
            let workers = [fixture.sessionWorker("w1"), fixture.sessionWorker("w2")]
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers { group.addTask { try await worker.run() } }
                let publishedA = try #require(try await fixture.publisher().run(integrationIDs: ["a-backlogged"]).first)
                #expect(publishedA.pairsPublished == 600)
                #expect(try await FleetFixture.eventually(.seconds(30)) { try await fixture.rows(of: "a-backlogged") > 0 }, "A is being worked on")
                let published = ContinuousClock.now
                let summaries = try await fixture.publisher().run(integrationIDs: ["b-small", "c-small"])
                #expect(summaries.map(\.pairsPublished) == [15, 15])
                #expect(try await FleetFixture.eventually(.seconds(10)) {
                    let (b, c) = (try await fixture.rows(of: "b-small"), try await fixture.rows(of: "c-small"))
                    return b == 15 && c == 15
                })
                let waited = ContinuousClock.now - published
                let aDone = try await fixture.rows(of: "a-backlogged")
                // Alone, under a second; beside the whole suite on two cores, several (each
                // simulator, worker and test shares this process's two threads). A's backlog is
                // five minutes: B and C waiting for it would take that long.
                #expect(waited < .seconds(15), "B and C were added \(waited) after their publish")
                #expect(aDone < 600, "A was still busy (\(aDone) of 600 added) when B and C were done")
                for worker in workers { worker.stop() }
                try await group.waitForAll()
            }
        }
    }

    /// One candidate whose JobSubmission Bullhorn rejects (400) among 150 good pairs: one dead
    /// letter with its reason, 150 rows, and no good pair tried twice.
    @Test func onePoisonPairIsDeadLetteredAloneAndTheGoodOnesAreNotRetried() async throws {
        let seed = SimulatorSeed(candidates: 300, jobOrders: 1, tearsheets: [.init(members: 151, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            let tearsheet = fixture.world.tearsheets[0]
            let job = tearsheet.jobOrderIDs[0]
            try await fixture.addCampaign(1, job: job)
            let poison = tearsheet.members[75].candidateID
            fixture.world.refuseJobSubmissions(forCandidates: [poison])
            _ = try await fixture.publisher().run()
            let worker = fixture.sessionWorker("w", options: WorkerOptions(batchSize: 50, batchWait: .milliseconds(50)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                #expect(try await FleetFixture.eventually(.seconds(30)) { worker.totals.acknowledged == 151 })
                worker.stop()
                try await group.waitForAll()
            }
            #expect(try await fixture.rows(of: fixture.integrationID) == 150)
            #expect(worker.totals.deadLettered == 1)
            #expect(worker.totals.retries == 0, "a refusal is final: nothing retried")
            #expect(fixture.world.callCounts["PUT entity/JobSubmission"] == 151, "each creation tried once")
            let letters = try await DeadLetterQueue(broker: fixture.broker, topology: fixture.topology).list(limit: 10)
            #expect(letters.count == 1)
            #expect(letters.first?.messageID == "\(fixture.integrationID):1:\(poison)")
            #expect(letters.first?.reason.contains("refused the JobSubmission of candidate \(poison)") == true)
            for member in tearsheet.members where member.candidateID != poison {
                #expect(fixture.world.jobSubmissionCount(candidate: member.candidateID, jobOrder: job) == 1)
            }
        }
    }

    /// The database is down for 20 s, longer than the old five-delivery backoff ladder: the
    /// pairs wait in place and every one is added, nothing dead-lettered.
    @Test func aDatabaseOutageLongerThanTheOldBackoffLadderLosesAndDeadLettersNothing() async throws {
        let seed = SimulatorSeed(candidates: 300, jobOrders: 1, tearsheets: [.init(members: 120, jobs: 1)])
        try await ScratchPostgres.with { server in  // restarting the shared server would disturb every other test
            try await FleetFixture.run(seed: seed, databaseServer: server.adminURL) { fixture in
                let job = fixture.world.tearsheets[0].jobOrderIDs[0]
                try await fixture.addCampaign(1, job: job)
                _ = try await fixture.publisher().run()
                fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(30)))  // slow enough to be mid-way at the outage
                let worker = fixture.sessionWorker("patient", options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(20), maxBackoff: .seconds(4)))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await worker.run() }
                    #expect(try await FleetFixture.eventually(.seconds(30)) { worker.totals.added > 0 })
                    try await server.outage(for: .seconds(20))
                    #expect(worker.totals.added < 120, "the outage came while pairs were still being added")
                    #expect(try await FleetFixture.eventually(.seconds(90)) { (try? await fixture.rows(of: fixture.integrationID)) == 120 })
                    worker.stop()
                    try await group.waitForAll()
                }
                #expect(worker.totals.deadLettered == 0)
                #expect(worker.totals.retries > 0, "it did wait the outage out")
                let channel = try await fixture.broker.openChannel()
                #expect(try await channel.declareQueue(Topology.deadLetterQueue, passive: true).messageCount == 0)
                try await channel.close()
                fixture.expectOneJobSubmissionPerMember(of: [fixture.world.tearsheets[0]], jobs: [job])
            }
        }
    }
}
