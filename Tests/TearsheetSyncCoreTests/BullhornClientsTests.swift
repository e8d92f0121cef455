import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

/// A worker's Bullhorn clients (`BullhornClients`) follow their integration's row.
@Suite struct BullhornClientsTests {
    @Test func aClientIsReplacedOnceItsIntegrationsCredentialsChangeAndKeptOtherwise() async throws {
        try await FleetFixture.run(seed: SharedBullhornSessionTests.seed) { fixture in
            let id = fixture.integrationID
            let eager = BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration, recheckEvery: .zero)
            let patient = BullhornClients(
                pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration, recheckEvery: .seconds(3_600))
            let first = try await eager.client(for: id)
            let patientFirst = try await patient.client(for: id)
            try await first.connect()
            #expect(try await eager.client(for: id) === first, "the row read again, unchanged: the same client and session")
            // A limit changed is not a credential changed (the fleet's budget reads it live).
            try await fixture.pool.query("UPDATE integrations SET calls_per_minute = 1200 WHERE id = \(id)")
            #expect(try await eager.client(for: id) === first)

            // The password is rotated (to one the simulator does not know).
            let account = SimulatedAuth.Account.standard
            try await IntegrationStore(pool: fixture.pool).upsert(
                id: id, clientID: account.clientID, username: account.username,
                endpoints: .discovered(loginInfoURL: "\(fixture.simulatorBase)/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: "rotated-Qp83vLx"), keys: fixture.keys,
                callsPerMinute: 1_200)
            let second = try await eager.client(for: id)
            #expect(second !== first, "a new client for the new credentials")
            // It logs in with them, not on the session the old ones made.
            let refused = await #expect(throws: BullhornError.self) { try await second.connect() }
            #expect(refused?.code == .authentication)
            #expect(try await patient.client(for: id) === patientFirst, "read again only every recheckEvery")
        }
    }
}
