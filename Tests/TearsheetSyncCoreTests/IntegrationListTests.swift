import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

/// `integration list` against the real database: an integration before its first call, with
/// the fleet's session, then paused after Bullhorn refused a login; and one the host
/// application made inactive. Nothing sealed is shown.
@Suite struct IntegrationListTests {
    static let seed = SimulatorSeed(candidates: 20, jobOrders: 1, tearsheets: [.init(members: 5, jobs: 1)])

    @Test func theListShowsEachIntegrationsSessionAndAPauseAfterARefusedLogin() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            try await fixture.pool.query(
                "INSERT INTO integrations (id, provider, active, calls_per_minute) VALUES ('host-only', 'bullhorn', false, 300)")
            var list = try await IntegrationList.load(pool: fixture.pool)
            #expect(list.integrations.map(\.integration.id) == ["host-only", fixture.integrationID].sorted())
            var ours = try #require(list.integrations.first { $0.integration.id == fixture.integrationID })
            #expect(ours.integration.active)
            #expect(ours.bullhornSession == nil, "no call made yet")
            let hostOnly = try #require(list.integrations.first { $0.integration.id == "host-only" })
            #expect(!hostOnly.integration.active && hostOnly.integration.callsPerMinute == 300)
            #expect(list.text().contains("host-only (inactive, bullhorn, 300 calls/min, its own budget)"))

            // A call: the fleet's session is kept.
            let integration = try #require(try await IntegrationStore(pool: fixture.pool).load(ids: [fixture.integrationID]).first)
            let client = try integration.bullhornClient(keys: fixture.keys, pool: fixture.pool, configuration: FleetFixture.clientConfiguration)
            let tearsheet = fixture.world.tearsheets[0].id
            _ = try await client.tearsheets(ids: [tearsheet])
            list = try await IntegrationList.load(pool: fixture.pool)
            ours = try #require(list.integrations.first { $0.integration.id == fixture.integrationID })
            let kept = try #require(ours.bullhornSession)
            #expect(kept.establishedAt != nil && kept.generation == 1 && kept.refusals == 0 && kept.pausedForSeconds == nil)

            // Bullhorn ends it and refuses the next login (the corporation's sessions all taken).
            fixture.world.setFaults(SimulatorFaults(sessionLimit: 0))
            fixture.world.auth.expireAllSessions()
            await #expect(throws: BullhornError.self) { try await client.tearsheets(ids: [tearsheet]) }
            list = try await IntegrationList.load(pool: fixture.pool)
            ours = try #require(list.integrations.first { $0.integration.id == fixture.integrationID })
            let paused = try #require(ours.bullhornSession)
            #expect(paused.establishedAt == nil, "the refused session is not kept")
            #expect(paused.refusals == 1)
            #expect((1...30).contains(paused.pausedForSeconds ?? 0), "paused for the first refusal's 30 s")
            #expect(paused.refusal?.contains("Maximum number of concurrent API sessions") == true)

            // As an operator reads it, and as a script does; the secrets nowhere.
            let account = SimulatedAuth.Account.standard
            let human = try await CommandRun.run(["integration", "list"], environment: fixture.commandEnvironment)
            #expect(human.exitCode == 0, "\(human.standardError)")
            #expect(human.standardOutput.contains("\(fixture.integrationID) (active, bullhorn, user \(account.username)"))
            #expect(human.standardOutput.contains("Bullhorn session: logins paused for"))
            #expect(human.standardOutput.contains("after 1 refused in a row"))
            let script = try await CommandRun.run(["integration", "list", "--json"], environment: fixture.commandEnvironment)
            #expect(script.exitCode == 0, "\(script.standardError)")
            let decoded = try JSONSerialization.jsonObject(with: Data(script.standardOutput.utf8)) as? [String: Any]
            let entries = try #require(decoded?["integrations"] as? [[String: Any]])
            #expect(entries.count == 2)
            for output in [human.standardOutput, script.standardOutput] {
                #expect(!output.contains(account.password) && !output.contains(account.clientSecret))
            }
        }
    }
}
