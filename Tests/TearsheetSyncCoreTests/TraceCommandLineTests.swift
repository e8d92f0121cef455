import BullhornSimulator
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

/// `trace` against a live fleet (issue 13): a pair added, one whose only tearsheet of the job is
/// private, one dead-lettered, and one still queued; each told apart and explained.
@Suite struct TraceCommandLineTests {
    @Test func traceTellsAnAddedAPrivateADeadLetteredAndAQueuedPairApart() async throws {
        let seed = SimulatorSeed(candidates: 200, jobOrders: 2, tearsheets: [.init(members: 20, jobs: 1), .init(members: 5, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            let world = fixture.world
            let (open, hidden) = (world.tearsheets[0], world.tearsheets[1])
            let (openJob, hiddenJob) = (world.jobOrderIDs[0], world.jobOrderIDs[1])
            world.updateTearsheet(open.id) { $0.jobOrderIDs = [openJob] }
            world.updateTearsheet(hidden.id) {
                $0.jobOrderIDs = [hiddenJob]
                $0.isPrivate = true
            }
            try await fixture.addCampaign(1, job: openJob)
            try await fixture.addCampaign(2, job: hiddenJob)
            let openMembers = Set(open.members.map(\.candidateID))
            let added = open.members[0].candidateID
            let refused = open.members[1].candidateID
            let onlyHidden = try #require(hidden.members.map(\.candidateID).first { !openMembers.contains($0) })
            world.refuseJobSubmissions(forCandidates: [refused])

            _ = try await fixture.publisher().run()
            let worker = fixture.sessionWorker("w")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                #expect(try await FleetFixture.eventually(.seconds(30)) { worker.totals.acknowledged == 20 })
                worker.stop()
                try await group.waitForAll()
            }
            // A recruiter adds a candidate after the workers stopped: published, still queued.
            let late = try #require(world.candidateIDs.first { !openMembers.contains($0) && $0 != onlyHidden })
            world.addMembers([late], to: open.id)
            _ = try await fixture.publisher().run()

            let addedTrace = try await Self.trace(fixture, candidate: added)
            let addedVerdict = try #require(addedTrace.campaigns.first { $0.id == 1 })
            #expect(addedVerdict.verdict == .onCampaign)
            let submission = try #require(addedVerdict.row?.jobSubmissionID)
            #expect(world.jobSubmissions.contains { $0.id == submission && $0.candidateID == added && $0.jobOrderID == openJob })
            #expect(addedTrace.integration.lastPassOutcome == "succeeded")
            #expect(addedTrace.tearsheets.map(\.id) == [open.id])

            let hiddenTrace = try await Self.trace(fixture, candidate: onlyHidden)
            #expect(hiddenTrace.campaigns.map(\.verdict) == [.onlyPrivateOrDeletedTearsheets], "campaign 2 only: job \(hiddenJob)")
            #expect(hiddenTrace.tearsheets.first?.isPrivate == true)

            let refusedTrace = try await Self.trace(fixture, candidate: refused)
            let refusal = try #require(refusedTrace.campaigns.first { $0.id == 1 })
            #expect(refusal.verdict == .deadLettered)
            #expect(refusal.deadLetter?.reason.contains("refused the JobSubmission of candidate \(refused)") == true)

            let lateTrace = try await Self.trace(fixture, candidate: late)
            #expect(lateTrace.campaigns.first { $0.id == 1 }?.verdict == .queued)
            #expect(lateTrace.session?.ready == 1, "its message waits in the session")

            // As an operator reads it.
            let human = try await CommandRun.run(
                ["trace", "--integration", fixture.integrationID, "--candidate", "\(refused)", "--campaign", "1"], environment: fixture.commandEnvironment)
            #expect(human.exitCode == 0, "\(human.standardError)")
            #expect(human.standardOutput.contains("1 (job \(openJob)): DEAD LETTERED: dead-lettered:"))
            #expect(human.standardOutput.contains("\(open.id) \""), "its tearsheet listed")
            let unknown = try await CommandRun.run(["trace", "--integration", "nobody", "--candidate", "1"], environment: fixture.commandEnvironment)
            #expect(unknown.exitCode == 2)
            #expect(unknown.standardError.contains("--integration: no integration nobody"))
        }
    }

    /// The first reason that holds, in the order a pair travels; and "queued" only where the
    /// session has something waiting.
    @Test func verdictsFollowThePairsPath() {
        let now = Date()
        let watermark = now.addingTimeInterval(-60)
        let tearsheet = PairTrace.Tearsheet(
            id: 1, name: "t", isPrivate: false, isDeleted: false, jobOrderIDs: [7], dateLastModified: now.addingTimeInterval(-3600),
            memberAddedAt: now.addingTimeInterval(-3600))
        let active = IntegrationStore.Standing(active: true, watermark: watermark, lastPassAt: now, lastPassOutcome: "succeeded")
        let campaign = CampaignStore.CampaignState(integrationID: "i", atsJobID: 7, active: true)
        let letter = PairTrace.DeadLetter(reason: "refused", deadLetteredAt: now)
        let waiting = PairTrace.Session(queue: "q", ready: 3, consumers: 1, heldBy: "w")
        let idle = PairTrace.Session(queue: "q", ready: 0, consumers: 0, heldBy: nil)
        func verdict(
            campaign: CampaignStore.CampaignState = campaign, letter: PairTrace.DeadLetter? = nil, tearsheets: [PairTrace.Tearsheet] = [tearsheet],
            integration: IntegrationStore.Standing = active, session: PairTrace.Session? = waiting
        ) -> PairTrace.Verdict {
            PairTracer.verdict(row: nil, campaign: campaign, deadLetter: letter, tearsheets: tearsheets, integration: integration, session: session).0
        }
        #expect(verdict() == .queued)
        #expect(verdict(session: idle) == .coveredNotAdded, "nothing waits: not queued")
        #expect(verdict(session: nil) == .coveredNotAdded)
        #expect(verdict(letter: letter) == .deadLettered)
        let inactive = IntegrationStore.Standing(active: false, watermark: watermark, lastPassAt: nil, lastPassOutcome: nil)
        #expect(verdict(letter: letter, integration: inactive) == .integrationInactive, "the publisher's stage comes before the worker's")
        let inactiveCampaign = CampaignStore.CampaignState(integrationID: "i", atsJobID: 7, active: false)
        #expect(verdict(campaign: inactiveCampaign, tearsheets: []) == .notOnATearsheetOfTheJob, "the tearsheet's stage comes first")
        #expect(verdict(campaign: inactiveCampaign) == .campaignInactive)
        let changedSince = PairTrace.Tearsheet(
            id: 1, name: "t", isPrivate: false, isDeleted: false, jobOrderIDs: [7], dateLastModified: now, memberAddedAt: now.addingTimeInterval(-3600))
        #expect(verdict(letter: letter, tearsheets: [changedSince]) == .awaitingPublishPass, "changed again: the next pass republishes it")
    }

    private static func trace(_ fixture: FleetFixture, candidate: Int64) async throws -> PairTrace {
        let run = try await CommandRun.run(
            ["trace", "--integration", fixture.integrationID, "--candidate", "\(candidate)", "--json"], environment: fixture.commandEnvironment)
        #expect(run.exitCode == 0, "\(run.standardError)")
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(PairTrace.self, from: Data(run.standardOutput.utf8))
    }
}
