import BullhornSimulator
import Foundation
import Testing

@testable import TearsheetSyncCore

/// A pass spends as few Bullhorn calls as the tearsheets allow, and still publishes every pair.
@Suite struct PublisherCallsTests {
    /// 12 tearsheets of at most 5 members and 5 jobs (embedded whole), 8 of 40 to 60 members
    /// (sharing member queries), one of 1,200 (read on its own), one with 7 jobs (its job
    /// orders paged).
    static let seed = SimulatorSeed(
        candidates: 3_000, jobOrders: 12,
        tearsheets: (0..<12).map { .init(members: 1 + $0 % 5, jobs: 1 + $0 % 3) } + (0..<8).map { .init(members: 40 + 2 * $0, jobs: 1) }
            + [.init(members: 1_200, jobs: 1), .init(members: 30, jobs: 7)])

    @Test func tearsheetsWithFewMembersAndJobsNeedNoAssociationCallAndSmallOnesShareMemberQueries() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            // A campaign on every job: every tearsheet's members are read.
            for (index, job) in fixture.world.jobOrderIDs.enumerated() { try await fixture.addCampaign(Int64(index + 1), job: job) }
            fixture.world.resetCounters()
            let summary = try #require(try await fixture.publisher().run().first)
            #expect(!summary.isFailure, "\(summary)")

            let calls = fixture.world.callCounts
            // Only the 7-job tearsheet pages its job orders.
            #expect(calls["GET entity/Tearsheet/jobOrders"] == 1, "\(calls)")
            // Member queries: the 8 mid-sized tearsheets and the 7-job one (436 members) share
            // one page, the 1,200-member one takes three. A first pass also reads the member
            // additions of its overlap window (here every member: the seed added them all at
            // once), to mark them handled.
            let members = fixture.world.tearsheets.map(\.members.count).reduce(0, +)
            #expect(calls["GET query/TearsheetMember"] == 1 + 3 + (members + 499) / 500, "\(calls)")
            #expect(calls["GET query/Tearsheet"] == 1, "\(calls)")
            #expect(calls["GET entity/Tearsheet/candidates"] == nil)

            // Every pair, once per tearsheet it is on.
            let taken = try await fixture.drainSessions()
            var expected: [String: Int] = [:]
            let campaignOf = Dictionary(uniqueKeysWithValues: fixture.world.jobOrderIDs.enumerated().map { ($1, Int64($0 + 1)) })
            for tearsheet in fixture.world.tearsheets {
                for job in tearsheet.jobOrderIDs {
                    for member in tearsheet.members { expected["\(campaignOf[job]!):\(member.candidateID)", default: 0] += 1 }
                }
            }
            var published: [String: Int] = [:]
            for message in taken { published["\(message.pair.campaignId):\(message.pair.atsCandidateId)", default: 0] += 1 }
            #expect(published == expected)
        }
    }

    /// A pass that finds nothing changed makes two calls (changed tearsheets, added members)
    /// and no login: the session the first pass opened is kept for the next. What a looping
    /// publisher costs an idle integration against Bullhorn's monthly allowance (README).
    @Test func aPassThatFindsNothingChangedMakesTwoCallsAndNoLogin() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            for (index, job) in fixture.world.jobOrderIDs.enumerated() { try await fixture.addCampaign(Int64(index + 1), job: job) }
            // No overlap: the seed's changes are all a moment old, and the window would read them again.
            let publisher = fixture.publisher(options: PublisherOptions(overlap: .zero))
            #expect(try await publisher.run().allSatisfy { !$0.isFailure })
            fixture.world.resetCounters()
            let summary = try #require(try await publisher.run().first)
            #expect(!summary.isFailure && summary.pairsPublished == 0, "\(summary)")
            #expect(fixture.world.callCounts == ["GET query/Tearsheet": 1, "GET query/TearsheetMember": 1])
        }
    }

    /// The member additions of a first pass's overlap window (here every member: four pages)
    /// are read while the pass reads the tearsheets' members, not after: the first additions
    /// query reaches Bullhorn before the last member query of the 1,200-member tearsheet (whose
    /// three pages, at 250 ms an answer, take the pass most of a second).
    @Test func aFirstPassReadsTheMemberAdditionsBesideTheMembers() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            for (index, job) in fixture.world.jobOrderIDs.enumerated() { try await fixture.addCampaign(Int64(index + 1), job: job) }
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(250)))
            let big = try #require(fixture.world.tearsheets.first { $0.members.count == 1_200 })
            let summary = try #require(try await fixture.publisher().run().first)
            #expect(!summary.isFailure, "\(summary)")
            let queries = fixture.world.queriesArrived
            let firstAdditions = try #require(queries.firstIndex { $0.contains("dateAdded >") }, "\(queries)")
            let lastMembers = try #require(queries.lastIndex { $0.contains("tearsheet.id = \(big.id) AND") }, "\(queries)")
            #expect(firstAdditions < lastMembers, "\(queries)")

            // And the next pass, incremental, publishes the members added since, once.
            let newcomers = Array(Set(fixture.world.candidateIDs).subtracting(big.members.map(\.candidateID)).sorted().prefix(3))
            _ = try await fixture.drainSessions()
            fixture.world.addMembers(newcomers, to: big.id, at: 1_764_000_060_000)  // a minute after the seed
            let next = try #require(try await fixture.publisher().run().first)
            #expect(!next.isFailure, "\(next)")
            let taken = try await fixture.drainSessions()
            #expect(Set(taken.map(\.pair.atsCandidateId)) == Set(newcomers), "\(taken.map(\.pair))")
            #expect(taken.count == newcomers.count * big.jobOrderIDs.count)
        }
    }

    /// A pass that fails while its member additions are being read returns only once that
    /// read has ended: no call of a failed pass goes on beside the next one, spending its budget.
    @Test func aFailedPassLeavesNoCallOfItsOwnInFlight() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            for (index, job) in fixture.world.jobOrderIDs.enumerated() { try await fixture.addCampaign(Int64(index + 1), job: job) }
            let first = try #require(try await fixture.publisher().run().first)
            #expect(!first.isFailure, "\(first)")  // a watermark: the next pass reads the additions from its start
            // The additions' query is answered after 3 s; the tearsheets' page, corrupt, after 0.5 s.
            fixture.world.setFaults(
                SimulatorFaults(
                    endpointLatency: ["query/TearsheetMember": .seconds(3), "query/Tearsheet": .milliseconds(500)],
                    corruptEndpoints: ["query/Tearsheet"]))
            let started = ContinuousClock.now
            let failed = try #require(try await fixture.publisher().run().first)
            #expect(failed.isFailure, "\(failed)")
            #expect(fixture.world.callsInFlight == 0, "returned \(ContinuousClock.now - started) after it started")
            #expect(fixture.world.queriesArrived.last { $0.contains("dateAdded >") } != nil, "the additions were being read")
        }
    }

    @Test func smallTearsheetsArePackedIntoSharedReadsOfAtMostAPage() {
        let groups = IntegrationPass.sharedReads([(1, 300), (2, 250), (3, 200), (4, 100), (5, 60), (6, 500)], pageSize: 500)
        #expect(groups.map { $0.sorted() } == [[6], [1, 3], [2, 4, 5]])
        let many = IntegrationPass.sharedReads((1...250).map { (Int64($0), 1) }, pageSize: 500)
        #expect(many.map(\.count) == [100, 100, 50], "at most 100 ids in one query")
    }
}
