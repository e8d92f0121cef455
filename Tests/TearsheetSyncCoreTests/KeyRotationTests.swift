import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

/// Rotating `TSYNC_SECRET_KEY` against the real database and the built command: the processes
/// get the new key with the old one as `TSYNC_PREVIOUS_SECRET_KEY`, `integration rekey` seals
/// everything again, and the old key goes; the fleet works and keeps its one Bullhorn session
/// throughout.
@Suite struct KeyRotationTests {
    static let seed = SimulatorSeed(candidates: 20, jobOrders: 1, tearsheets: [.init(members: 5, jobs: 1)])

    @Test func aRotatedKeyKeepsTheFleetWorkingOnItsSessionAndTheOldKeyCanGo() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let old = fixture.keys  // the fixture's integration is sealed under it
            let newKey = IntegrationSecrets.randomKey()
            let (oldText, newText) = (Data(old.current).base64EncodedString(), Data(newKey).base64EncodedString())
            SecretScanningLogHandler.register(newText)
            let tearsheet = fixture.world.tearsheets[0].id
            func client(_ keys: SealingKeys) async throws -> BullhornClient {
                let integration = try #require(try await IntegrationStore(pool: fixture.pool).load(ids: [fixture.integrationID]).first)
                return try integration.bullhornClient(keys: keys, pool: fixture.pool, configuration: FleetFixture.clientConfiguration)
            }

            // Before: a process on the old key makes the fleet's session.
            #expect(try await client(old).tearsheets(ids: [tearsheet]).count == 1)
            #expect(fixture.world.auth.sessionsOpened == 1)

            // Every process gets the new key, the old one as the previous: both the secrets and
            // the kept session still open. The new key alone opens nothing yet.
            let rotating = SealingKeys(current: newKey, previous: old.current)
            #expect(try await client(rotating).tearsheets(ids: [tearsheet]).count == 1)
            #expect(fixture.world.auth.sessionsOpened == 1, "the kept session opened under the previous key")
            await #expect(throws: SecretsError.self) { try await client(SealingKeys(current: newKey)) }
            // A worker restarted with both keys, and one that missed the restart (the old key alone).
            let restarted = BullhornClients(pool: fixture.pool, keys: rotating, configuration: FleetFixture.clientConfiguration, recheckEvery: .zero)
            let missed = BullhornClients(pool: fixture.pool, keys: old, configuration: FleetFixture.clientConfiguration, recheckEvery: .zero)
            let (restartedBefore, missedBefore) = (try await restarted.client(for: fixture.integrationID), try await missed.client(for: fixture.integrationID))
            #expect(try await missedBefore.tearsheets(ids: [tearsheet]).count == 1, "working, on the kept session")

            // `integration rekey` without the previous key is a setting missing, and changes nothing.
            var environment = fixture.commandEnvironment
            environment["TSYNC_SECRET_KEY"] = newText
            let blind = try await CommandRun.run(["integration", "rekey"], environment: environment)
            #expect(blind.exitCode == 2)
            #expect(blind.standardError.contains("TSYNC_PREVIOUS_SECRET_KEY: not set"))
            #expect(try await client(old).tearsheets(ids: [tearsheet]).count == 1, "still sealed under the old key")

            // With it, everything is sealed again under the new key; a second run has nothing to do.
            environment["TSYNC_PREVIOUS_SECRET_KEY"] = oldText
            let rekey = try await CommandRun.run(["integration", "rekey"], environment: environment)
            #expect(rekey.exitCode == 0, "\(rekey.standardError)")
            #expect(rekey.standardOutput.contains("the Bullhorn secrets of 1 integration(s) (0 already were) and 1 kept Bullhorn session(s)"))
            let again = try await CommandRun.run(["integration", "rekey"], environment: environment)
            #expect(again.exitCode == 0, "\(again.standardError)")
            #expect(again.standardOutput.contains("the Bullhorn secrets of 0 integration(s) (1 already were) and 0 kept Bullhorn session(s)"))

            // The restarted worker builds its client again from the resealed row, on the same
            // session; the one that missed the restart keeps the client it has, and its session.
            let restartedAfter = try await restarted.client(for: fixture.integrationID)
            #expect(restartedAfter !== restartedBefore)
            #expect(try await restartedAfter.tearsheets(ids: [tearsheet]).count == 1)
            #expect(try await missed.client(for: fixture.integrationID) === missedBefore)
            #expect(try await missedBefore.tearsheets(ids: [tearsheet]).count == 1)
            #expect(fixture.world.auth.sessionsOpened == 1)

            // The previous key gone: the new key alone opens the secrets and the same session;
            // the old key opens nothing.
            #expect(try await client(SealingKeys(current: newKey)).tearsheets(ids: [tearsheet]).count == 1)
            #expect(fixture.world.auth.sessionsOpened == 1, "the session was sealed again, not replaced")
            await #expect(throws: SecretsError.self) { try await client(old) }

            let account = SimulatedAuth.Account.standard
            for output in [blind, rekey, again].flatMap({ [$0.standardOutput, $0.standardError] }) {
                #expect(![oldText, newText, account.password, account.clientSecret].contains { output.contains($0) })
            }
        }
    }

    @Test func aRekeyDuringARenewalNeitherUndoesNorBlocksIt() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let old = fixture.keys
            let newKey = IntegrationSecrets.randomKey()
            SecretScanningLogHandler.register(Data(newKey).base64EncodedString())
            let rotating = SealingKeys(current: newKey, previous: old.current)
            let tearsheet = fixture.world.tearsheets[0].id
            let integration = try #require(try await IntegrationStore(pool: fixture.pool).load(ids: [fixture.integrationID]).first)
            let first = try integration.bullhornClient(keys: old, pool: fixture.pool, configuration: FleetFixture.clientConfiguration)
            #expect(try await first.tearsheets(ids: [tearsheet]).count == 1)

            // Bullhorn ends the session; a process on both keys renews it, slowly, and the rekey
            // runs while it holds the lease.
            fixture.world.auth.expireAllSessions()
            fixture.world.setFaults(SimulatorFaults(endpointLatency: ["POST login": .seconds(2)]))
            let renewing = try integration.bullhornClient(keys: rotating, pool: fixture.pool, configuration: FleetFixture.clientConfiguration)
            let call = Task { try await renewing.tearsheets(ids: [tearsheet]).count }
            #expect(try await FleetFixture.eventually { fixture.world.callCounts["POST login", default: 0] == 2 }, "the renewal's login is under way")
            var environment = fixture.commandEnvironment
            environment["TSYNC_SECRET_KEY"] = Data(newKey).base64EncodedString()
            environment["TSYNC_PREVIOUS_SECRET_KEY"] = Data(old.current).base64EncodedString()
            let rekey = try await CommandRun.run(["integration", "rekey"], environment: environment)
            #expect(rekey.exitCode == 0, "\(rekey.standardError)")
            #expect(try await call.value == 1)

            // The renewal's session was kept (its write was not refused for the rekey's), and it
            // opens with the new key alone: a process started after the rotation adopts it.
            #expect(try await fixture.pool.query("SELECT generation FROM bullhorn_sessions").scalar(Int.self) == 2)
            let after = try #require(try await IntegrationStore(pool: fixture.pool).load(ids: [fixture.integrationID]).first)
                .bullhornClient(keys: SealingKeys(current: newKey), pool: fixture.pool, configuration: FleetFixture.clientConfiguration)
            #expect(try await after.tearsheets(ids: [tearsheet]).count == 1)
            #expect(fixture.world.auth.sessionsOpened == 2, "the first, and the renewal's")
        }
    }
}
