import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// The lookups the publisher and the worker make for every batch, against the real database.
@Suite struct CampaignStoreTests {
    /// Exactly the pairs of campaigns × candidates that are on their campaign come back: not
    /// a candidate of another campaign, not another candidate of the campaign, whatever plan
    /// the server picks for a large array of candidates (several key ranges, 2,500 rows each).
    @Test func existingPairsAreExactlyThosePresentAmongTheAsked() async throws {
        let url = try await TestServices.createDatabase("tsync_campaigns")
        let pool = PostgresPool(connectionString: url, maxConnections: 2)
        defer { Task { await pool.close(); try? await TestServices.dropDatabase(url) } }
        try await pool.withConnection { _ = try await SchemaMigrator().migrate($0) }
        try await pool.query("INSERT INTO integrations (id) VALUES ('acme')")
        let store = CampaignStore(pool: pool)
        for campaign in Int64(1)...3 { try await store.upsert(id: campaign, integrationID: "acme", atsJobID: 100 + campaign) }
        // Campaign 1 holds every candidate 1…2500, campaign 2 the even ones, campaign 3 none.
        var present = Set((1...2_500).map { PairKey(campaignID: 1, candidateID: Int64($0)) })
        present.formUnion(stride(from: 2, through: 2_500, by: 2).map { PairKey(campaignID: 2, candidateID: Int64($0)) })
        _ = try await store.addPairs(Array(present), integrationID: "acme", applications: [:])
        try await pool.query("ANALYZE campaign_candidates")

        let asked = (0..<300).map { Int64($0 * 9 + 1) }  // 1, 10, 19, …, 2,692: some beyond the last
        let found = try await store.existingPairs(campaignIDs: [1, 2, 3, 4], candidateIDs: asked)
        let expected = Set([1, 2, 3, 4].flatMap { campaign in asked.map { PairKey(campaignID: campaign, candidateID: $0) } }).intersection(present)
        #expect(found == expected)
        #expect(found.contains(PairKey(campaignID: 2, candidateID: 10)) && !found.contains(PairKey(campaignID: 2, candidateID: 19)))
        #expect(try await store.existingPairs(campaignIDs: [3], candidateIDs: asked).isEmpty)
        #expect(try await store.existingPairs(campaignIDs: [1], candidateIDs: []).isEmpty)

        // The worker's one statement says the same, and each campaign's state beside it: an
        // inactive one, one of another integration, an unknown one (absent).
        try await pool.query("INSERT INTO integrations (id) VALUES ('other')")
        try await store.upsert(id: 3, integrationID: "acme", atsJobID: 103, active: false)
        try await store.upsert(id: 5, integrationID: "other", atsJobID: 105)
        let both = try await store.campaignsAndExistingPairs(campaignIDs: [1, 2, 3, 4, 5], candidateIDs: asked)
        #expect(both.existing == expected)
        #expect(both.campaigns == [
            1: .init(integrationID: "acme", atsJobID: 101, active: true), 2: .init(integrationID: "acme", atsJobID: 102, active: true),
            3: .init(integrationID: "acme", atsJobID: 103, active: false), 5: .init(integrationID: "other", atsJobID: 105, active: true),
        ])
        let none = try await store.campaignsAndExistingPairs(campaignIDs: [1], candidateIDs: [])
        #expect(none.existing.isEmpty && none.campaigns.keys.sorted() == [1])
    }
}
