import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// The publisher against the real broker, the real database and the simulator.
@Suite struct PublisherTests {
    /// T1: 30 members, job A. T2: 600 members, jobs A and B. T3 private and T4 deleted (job A).
    /// T5: a job with no campaign. T6: a job whose only campaign is inactive.
    static let seed = SimulatorSeed(
        candidates: 2_000, jobOrders: 6,
        tearsheets: [
            .init(members: 30, jobs: 1), .init(members: 600, jobs: 2), .init(members: 20, jobs: 1, isPrivate: true),
            .init(members: 20, jobs: 1, isDeleted: true), .init(members: 10, jobs: 1), .init(members: 10, jobs: 1),
        ])

    /// Jobs A…D are pinned: T1 → A; T2 → A, B; T3 (private), T4 (deleted) → A; T5 → C, which
    /// has no campaign; T6 → D, whose only campaign is inactive. Campaigns 1 and 2 are on A, 3 on B.
    private func campaigns(_ fixture: FleetFixture) async throws -> (jobA: Int64, jobB: Int64) {
        let jobs = fixture.world.jobOrderIDs
        let (jobA, jobB, jobC, jobD) = (jobs[0], jobs[1], jobs[2], jobs[3])
        let assignment: [Int64: [Int64]] = [1: [jobA], 2: [jobA, jobB], 3: [jobA], 4: [jobA], 5: [jobC], 6: [jobD]]
        for (tearsheet, jobs) in assignment {
            fixture.world.updateTearsheet(tearsheet, at: 1_764_000_000_000) { $0.jobOrderIDs = jobs }
        }
        try await fixture.addCampaign(1, job: jobA)
        try await fixture.addCampaign(2, job: jobA)
        try await fixture.addCampaign(3, job: jobB)
        try await fixture.addCampaign(4, job: jobD, active: false)
        return (jobA, jobB)
    }

    private func expectedPairs(_ fixture: FleetFixture, tearsheetIDs: [Int64], campaignsByJob: [Int64: [Int64]]) -> Set<String> {
        var expected = Set<String>()
        for tearsheet in fixture.world.tearsheets where tearsheetIDs.contains(tearsheet.id) {
            for job in tearsheet.jobOrderIDs {
                for campaign in campaignsByJob[job] ?? [] {
                    for member in tearsheet.members { expected.insert("\(fixture.integrationID):\(campaign):\(member.candidateID)") }
                }
            }
        }
        return expected
    }

    @Test func aPassPublishesExactlyThePairsOnTheIntegrationsPartition() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (jobA, jobB) = try await campaigns(fixture)
            #expect(try await fixture.watermark() == nil)
            let summary = try #require(try await fixture.publisher().run().first)
            #expect(!summary.isFailure, "\(summary)")

            let taken = try await fixture.drainSessions()
            let expected = expectedPairs(fixture, tearsheetIDs: [1, 2], campaignsByJob: [jobA: [1, 2], jobB: [3]])
            // One message per pair of each tearsheet: a candidate on both T1 and T2 is sent once
            // for each (the worker's check makes the second a no-op).
            let perTearsheet = 30 * 2 + 600 * 3
            #expect(taken.count == perTearsheet)
            #expect(Set(taken.map { $0.delivery.message.properties.messageID ?? "" }) == expected)
            #expect(taken.allSatisfy { $0.queue == "tearsheet.session.\(fixture.integrationID)" })
            let work = try await SessionWorkStore(pool: fixture.pool).waiting(limit: 10)
            #expect(work.map(\.integrationID) == [fixture.integrationID], "the workers are told that the session has work")
            let sample = try #require(taken.first)
            #expect(sample.delivery.message.properties.persistent)
            #expect(sample.delivery.message.properties.type == "tearsheet.pair.v1")
            #expect(sample.delivery.message.properties.contentType == "application/json")
            #expect(sample.delivery.message.properties.headers["session-id"] == .string(fixture.integrationID))
            #expect(sample.pair.source == "TEARSHEETS")
            #expect(taken.allSatisfy { $0.pair.tearsheetId == 1 || $0.pair.tearsheetId == 2 })
            #expect(summary.pairsPublished == perTearsheet)
            #expect(try await fixture.watermark() == Date(timeIntervalSince1970: 1_764_000_000))
        }
    }

    @Test func pairsAlreadyOnTheCampaignAreNotPublished() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (jobA, _) = try await campaigns(fixture)
            let onCampaign = fixture.world.tearsheets[0].members.prefix(10).map(\.candidateID)
            for candidate in onCampaign {
                try await fixture.pool.query(
                    "INSERT INTO campaign_candidates (campaign_id, ats_candidate_id, integration_id, source, added_at) VALUES (1, \(candidate), \(fixture.integrationID), 'TEARSHEETS', now())")
            }
            let summary = try #require(try await fixture.publisher().run().first)
            #expect(summary.pairsAlreadyOnCampaign >= 10)
            let ids = Set(try await fixture.drainSessions().map { $0.delivery.message.properties.messageID ?? "" })
            for candidate in onCampaign { #expect(!ids.contains("\(fixture.integrationID):1:\(candidate)")) }
            #expect(ids.contains("\(fixture.integrationID):2:\(onCampaign[0])"), "other campaigns of the job still get the pair")
            _ = jobA
        }
    }

    /// A job is linked to T1 after the pass has read T1, and a member is added elsewhere a
    /// little later in the same pass: the next pass must still read T1 (issue 11, finding 1).
    @Test func aTearsheetChangedAfterThePassReadItIsReadByTheNextPass() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (_, jobB) = try await campaigns(fixture)
            let world = fixture.world
            let outsider = world.candidateIDs.first { id in !world.tearsheets[4].members.contains { $0.candidateID == id } }!
            // Step 3 of the pass (member additions) comes after every tearsheet was read.
            world.whenRequested("GET query/TearsheetMember") {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                world.updateTearsheet(1, at: now) { $0.jobOrderIDs.append(jobB) }
                world.addMembers([outsider], to: 5, at: now + 2_000)  // seen by this pass, 2 s later
            }
            let options = PublisherOptions(overlap: .milliseconds(1))
            let first = try #require(try await fixture.publisher(options: options).run().first)
            #expect(!first.isFailure, "\(first)")
            let watermark = try #require(try await fixture.watermark())
            #expect(watermark <= Date(), "never past the pass's start")
            _ = try await fixture.drainSessions()

            let second = try #require(try await fixture.publisher(options: options).run().first)
            #expect(!second.isFailure, "\(second)")
            let ids = Set(try await fixture.drainSessions().map { $0.delivery.message.properties.messageID ?? "" })
            let linked = world.tearsheets[0].members.map { "\(fixture.integrationID):3:\($0.candidateID)" }
            #expect(Set(linked).isSubset(of: ids), "the job linked mid-pass got its pairs: \(ids.filter { $0.contains(":3:") }.count) of \(linked.count)")
        }
    }

    @Test func aSecondPassWithNoChangesPublishesNothingAndNewMembersOnlyTheirPairs() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (jobA, _) = try await campaigns(fixture)
            _ = try await fixture.publisher().run()
            _ = try await fixture.drainSessions()

            let second = try #require(try await fixture.publisher().run().first)
            #expect(!second.isFailure, "\(second)")
            #expect(second.pairsPublished == 0)
            #expect(try await fixture.drainSessions().isEmpty)

            // Two candidates join T1 a minute after the watermark, without touching the tearsheet.
            let current: Set<Int64> = Set(fixture.world.tearsheets[0].members.map(\.candidateID))
            let joined: [Int64] = Array(fixture.world.candidateIDs.filter { !current.contains($0) }.prefix(2))
            fixture.world.addMembers(joined, to: 1, at: 1_764_000_060_000)
            let third = try #require(try await fixture.publisher().run().first)
            let taken = try await fixture.drainSessions()
            let published: Set<String> = Set(taken.map { $0.delivery.message.properties.messageID ?? "" })
            var wanted: Set<String> = []
            for candidate in joined {
                for campaign in [1, 2] { wanted.insert("\(fixture.integrationID):\(campaign):\(candidate)") }
            }
            #expect(published == wanted)
            #expect(third.pairsPublished == 4)
            #expect(try await fixture.watermark() == Date(timeIntervalSince1970: 1_764_000_060))
            _ = jobA
        }
    }

    @Test func aFullPassRepublishesEverythingWhateverTheWatermark() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            _ = try await campaigns(fixture)
            _ = try await fixture.publisher().run()
            let first = try await fixture.drainSessions().count
            let incremental = try #require(try await fixture.publisher().run().first)
            #expect(incremental.pairsPublished == 0)
            let full = try #require(try await fixture.publisher(options: PublisherOptions(full: true)).run().first)
            #expect(full.pairsPublished == first)
            #expect(try await fixture.drainSessions().count == first)
        }
    }

    @Test func tenThousandMembersAreAllPublished() async throws {
        let seed = SimulatorSeed(candidates: 11_000, jobOrders: 2, tearsheets: [.init(members: 10_000, jobs: 1)])
        try await FleetFixture.run(seed: seed, faults: SimulatorFaults(throttleEvery: 9, throttleBurst: 2, sessionExpiresAfterCalls: 6)) { fixture in
            try await fixture.addCampaign(77, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            let summary = try #require(try await fixture.publisher().run().first)
            #expect(!summary.isFailure, "\(summary)")
            let taken = try await fixture.drainSessions()
            #expect(Set(taken.map(\.pair.atsCandidateId)) == Set(fixture.world.tearsheets[0].members.map(\.candidateID)))
            #expect(taken.count == 10_000)
        }
    }

    @Test func aMalformedBullhornAnswerFailsThePassAndKeepsTheWatermark() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            _ = try await campaigns(fixture)
            _ = try await fixture.publisher().run()
            let before = try await fixture.watermark()
            fixture.world.updateTearsheet(1, at: 1_764_000_900_000) { $0.name = "changed" }
            fixture.world.setFaults(SimulatorFaults(corruptEndpoints: ["query/TearsheetMember"]))
            let failed = try #require(try await fixture.publisher().run().first)
            #expect(failed.isFailure)
            #expect("\(failed)".contains("malformedResponse"))
            #expect(try await fixture.watermark() == before)
            fixture.world.setFaults(SimulatorFaults())
            let recovered = try #require(try await fixture.publisher().run().first)
            #expect(!recovered.isFailure)
            #expect(try await fixture.watermark() == Date(timeIntervalSince1970: 1_764_000_900))
        }
    }

    /// Runs a pass over a 5,000-member tearsheet and, once its first batch is confirmed, does
    /// `cut`; the pass must fail and leave the watermark alone, and the next pass complete.
    private func passInterrupted(by cut: @escaping @Sendable (FleetFixture, AMQPConnection) async throws -> Void) async throws {
        let seed = SimulatorSeed(candidates: 6_000, jobOrders: 2, tearsheets: [.init(members: 5_000, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(5, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(30)))  // a slow pass, to cut into
            let broker = try await AMQPConnection.connect(url: fixture.amqpURL)
            let publisher = TearsheetPublisher(
                pool: fixture.pool, broker: broker, topology: fixture.topology, keys: fixture.keys,
                clientConfiguration: FleetFixture.clientConfiguration, logger: FleetFixture.quietLogger)
            let (published, signal) = AsyncStream<Void>.makeStream()
            async let interruption: Void = {
                var iterator = published.makeAsyncIterator()
                _ = await iterator.next()
                try await cut(fixture, broker)
            }()
            let failed = try #require(try await publisher.run { summary in
                if summary.pairsPublished > 0 { signal.yield() }
            }.first)
            signal.finish()
            try await interruption
            #expect(failed.isFailure, "\(failed)")
            #expect(failed.pairsPublished < 5_000)
            #expect(try await fixture.watermark() == nil)

            fixture.world.setFaults(SimulatorFaults())
            let completed = try #require(try await fixture.publisher().run().first)
            #expect(!completed.isFailure, "\(completed)")
            #expect(completed.pairsPublished == 5_000)
            #expect(try await fixture.watermark() == Date(timeIntervalSince1970: 1_764_000_000))
            await broker.close()
        }
    }

    @Test func losingTheBrokerConnectionMidPassFailsItAndTheNextPassCompletes() async throws {
        try await passInterrupted { _, publishersConnection in
            // The connection the publisher uses goes away under it.
            await publishersConnection.close()
        }
    }

    @Test func aSessionQueueUnboundMidPassMakesItsMessagesUnroutableAndFailsThePass() async throws {
        try await passInterrupted { fixture, _ in
            // The next pass declares and binds it again.
            let partition = SessionQueue(integrationID: fixture.integrationID)
            let channel = try await fixture.broker.openChannel()
            try await channel.unbindQueue(partition.queue, exchange: Topology.pairsExchange, routingKey: partition.routingKey)
            try await channel.close()
        }
    }

    @Test func twoPublishersOnOneIntegrationNeverRunTogether() async throws {
        let seed = SimulatorSeed(candidates: 3_000, jobOrders: 2, tearsheets: [.init(members: 2_000, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(9, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(20)))
            async let first = fixture.publisher().run()
            // The second starts once the first holds the integration's lock (a fixed pause was
            // not always enough on a loaded machine).
            let key = TearsheetPublisher.lockKey(fixture.integrationID)
            let locked = try await FleetFixture.eventually(.seconds(20)) {
                try await fixture.pool.withConnection { try await $0.heldAdvisoryLocks() }.contains(key)
            }
            #expect(locked)
            let second = try await fixture.publisher().run()
            let firstSummary = try await first
            #expect(second.first?.outcome == .skippedLocked)
            #expect(firstSummary.first?.outcome == .succeeded)
            #expect(try await fixture.drainSessions().count == 2_000)
        }
    }
}
