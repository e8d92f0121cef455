import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Synchronization
import Testing

@testable import TearsheetSyncCore

/// One Bullhorn REST session an integration for the whole fleet (`FleetBullhornSessions`),
/// against the real database and a simulator that counts the corporation's sessions and
/// refuses a login beyond its limit.
@Suite struct SharedBullhornSessionTests {
    static let seed = SimulatorSeed(candidates: 50, jobOrders: 1, tearsheets: [.init(members: 10, jobs: 1)])

    /// A client as a separate process builds it: its own database pool, HTTP client and
    /// budget, the integration's row read afresh.
    private func processClient(_ fixture: FleetFixture) async throws -> (BullhornClient, PostgresPool) {
        let pool = PostgresPool(connectionString: fixture.databaseURL, maxConnections: 2)
        let integration = try #require(try await IntegrationStore(pool: pool).load(ids: [fixture.integrationID]).first)
        return (try integration.bullhornClient(keys: fixture.keys, pool: pool, configuration: FleetFixture.clientConfiguration), pool)
    }

    /// A process's client that opened the integration's session (kept in the store), which
    /// Bullhorn has since ended; and the tearsheet it read.
    private func clientWhoseSessionBullhornEnded(_ fixture: FleetFixture) async throws -> (BullhornClient, PostgresPool, Int64) {
        let (client, pool) = try await processClient(fixture)
        let tearsheet = fixture.world.tearsheets[0].id
        _ = try await client.tearsheets(ids: [tearsheet])
        fixture.world.auth.expireAllSessions()
        return (client, pool, tearsheet)
    }

    /// Every client reads the tearsheet, all at once.
    private func readAtOnce(_ clients: [BullhornClient], tearsheet: Int64) async throws {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for client in clients { group.addTask { try await client.tearsheets(ids: [tearsheet]).count } }
            for try await found in group { #expect(found == 1) }
        }
    }

    @Test func processesOfOneIntegrationLogInOnceAndRenewARefusedSessionOnce() async throws {
        // One session allowed: a process that logged in for itself would be refused.
        try await FleetFixture.run(seed: Self.seed, faults: SimulatorFaults(sessionLimit: 1)) { fixture in
            var processes: [(BullhornClient, PostgresPool)] = []
            for _ in 0..<3 { processes.append(try await processClient(fixture)) }
            let tearsheet = fixture.world.tearsheets[0].id
            try await readAtOnce(processes.map(\.0), tearsheet: tearsheet)
            #expect(fixture.world.auth.sessionsOpened == 1, "three processes, one REST session")

            // Bullhorn times the session out: every process is refused at once, one renews.
            fixture.world.auth.expireAllSessions()
            try await readAtOnce(processes.map(\.0), tearsheet: tearsheet)
            #expect(fixture.world.auth.sessionsOpened == 2, "one renewal for the three")
            let calls = fixture.world.callCounts
            // The renewal refreshed with the refresh token the first login kept: no second
            // password login (a process with a spent copy of the token would have needed one).
            #expect(calls["GET oauth/authorize"] == 1)
            #expect(calls["POST oauth/token"] == 2)
            #expect(fixture.world.auth.mostLiveSessions == 1)
            for (_, pool) in processes { await pool.close() }
        }
    }

    @Test func theSessionIsKeptSealedWithTheCredentialsThatMadeIt() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (client, pool) = try await processClient(fixture)
            try await client.connect()
            let sealed = try await fixture.pool.query("SELECT sealed FROM bullhorn_sessions").scalar(Data.self)
            let tokens = fixture.world.auth.issuedTokens
            #expect(tokens.count >= 4, "a code, an access and a refresh token, a session")
            for token in tokens { #expect(sealed.range(of: Data(token.utf8)) == nil, "no token in clear at rest") }

            let integration = try #require(try await IntegrationStore(pool: pool).load(ids: [fixture.integrationID]).first)
            let account = SimulatedAuth.Account.standard
            let goodCredentials = BullhornCredentials(
                clientID: account.clientID, clientSecret: account.clientSecret, username: account.username, password: account.password)
            // A process whose TSYNC_SECRET_KEY is another does not use the kept session: the
            // blob does not open.
            let otherKey = FleetBullhornSessions(
                pool: pool, integrationID: integration.id, keys: SealingKeys(current: IntegrationSecrets.randomKey()), credentials: goodCredentials,
                endpoints: integration.endpoints)
            #expect(try await otherKey.load() == nil)
            let good = FleetBullhornSessions(
                pool: pool, integrationID: integration.id, keys: fixture.keys, credentials: goodCredentials, endpoints: integration.endpoints)
            #expect(try await good.load()?.generation == 1)

            // Nor does a client of the integration with another password (registered since): it
            // logs in for itself, Bullhorn refuses the password, and the refusal, now the
            // integration's, pauses these credentials' next logins.
            let otherCredentials = BullhornCredentials(
                clientID: account.clientID, clientSecret: account.clientSecret, username: account.username, password: "not-the-password")
            let sessions = FleetBullhornSessions(
                pool: pool, integrationID: integration.id, keys: fixture.keys, credentials: otherCredentials, endpoints: integration.endpoints)
            #expect(try await sessions.load() == nil)
            let stranger = BullhornClient(
                credentials: otherCredentials, endpoints: integration.endpoints, configuration: FleetFixture.clientConfiguration, sessions: sessions)
            for _ in 0..<2 {
                let refused = await #expect(throws: BullhornError.self) { try await stranger.tearsheets(ids: [fixture.world.tearsheets[0].id]) }
                #expect(refused?.code == .authentication)
            }
            #expect(fixture.world.callCounts["GET oauth/authorize"] == 2, "the first login, and the stranger's once: then paused")
            // The good client goes on with the session in hand.
            #expect(try await client.tearsheets(ids: [fixture.world.tearsheets[0].id]).count == 1)
            await pool.close()
        }
    }

    @Test func aLoopingPublisherAndItsWorkersShareTheIntegrationsSession() async throws {
        try await FleetFixture.run(seed: Self.seed, faults: SimulatorFaults(sessionLimit: 1)) { fixture in
            let tearsheet = fixture.world.tearsheets[0]
            try await fixture.addCampaign(1, job: tearsheet.jobOrderIDs[0])
            let outside = fixture.world.candidateIDs.filter { candidate in !tearsheet.members.contains { $0.candidateID == candidate } }
            for pass in 0..<3 {
                // Each later pass has a new member to publish.
                if pass > 0 { fixture.world.addMembers([outside[pass]], to: tearsheet.id) }
                let summaries = try await fixture.publisher().run()
                #expect(summaries.allSatisfy { !$0.isFailure }, "pass \(pass): \(summaries)")
            }
            let worker = fixture.sessionWorker("w1")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                #expect(try await FleetFixture.eventually { try await fixture.rows() == 12 })
                worker.stop()
                try await group.waitForAll()
            }
            #expect(fixture.world.auth.sessionsOpened == 1, "three passes and a worker, one REST session")
            #expect(fixture.world.faultsServed["login refused: session limit", default: 0] == 0)
        }
    }

    @Test func aLoginRefusedForGoodPausesTheFleetsNextLoginsForThatIntegration() async throws {
        // The corporation holds every session it may: Bullhorn refuses each REST login.
        try await FleetFixture.run(seed: Self.seed, faults: SimulatorFaults(sessionLimit: 0)) { fixture in
            let (first, firstPool) = try await processClient(fixture)
            let (second, secondPool) = try await processClient(fixture)
            let tearsheet = fixture.world.tearsheets[0].id
            let refused = await #expect(throws: BullhornError.self) { try await first.tearsheets(ids: [tearsheet]) }
            #expect(refused?.code == .authentication)
            let logins = fixture.world.callCounts["POST login", default: 0]
            #expect(logins >= 1)

            // Another process, and the first again, are told at once, without a login.
            for client in [second, first] {
                let paused = await #expect(throws: BullhornError.self) { try await client.tearsheets(ids: [tearsheet]) }
                #expect(paused?.code == .authentication)
                #expect(paused?.message.contains("the next is in") == true, "\(String(describing: paused))")
                #expect(paused?.message.contains("Maximum number of concurrent API sessions") == true, "the refusal recorded says why")
            }
            #expect(fixture.world.callCounts["POST login", default: 0] == logins, "no login during the pause")
            #expect(fixture.world.callCounts["GET oauth/authorize", default: 0] == 1)

            // The pause over: Bullhorn still refuses, and the pause doubles.
            try await fixture.pool.query("UPDATE bullhorn_sessions SET refused_at = refused_at - interval '31 seconds'")
            await #expect(throws: BullhornError.self) { try await second.tearsheets(ids: [tearsheet]) }
            #expect(fixture.world.callCounts["POST login", default: 0] > logins, "a login after the pause")
            #expect(try await fixture.pool.query("SELECT refusals FROM bullhorn_sessions").scalar(Int.self) == 2)

            // The corporation's sessions freed, the operator registers the integration again
            // (as `integration add` does): the pause is lifted, the next call logs in.
            fixture.world.setFaults(SimulatorFaults())
            try await fixture.registerIntegration(fixture.integrationID)
            #expect(try await second.tearsheets(ids: [tearsheet]).count == 1)
            #expect(try await first.tearsheets(ids: [tearsheet]).count == 1)
            #expect(fixture.world.auth.sessionsOpened == 1)
            #expect(try await fixture.pool.query("SELECT refusals FROM bullhorn_sessions").scalar(Int.self) == 0)
            await firstPool.close()
            await secondPool.close()
        }
    }

    @Test func aRefusedRenewalLeavesNoDeadSessionToSpendACallOn() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (client, pool, tearsheet) = try await clientWhoseSessionBullhornEnded(fixture)
            // Bullhorn refuses every new session.
            fixture.world.setFaults(SimulatorFaults(sessionLimit: 0))
            for _ in 0..<3 { await #expect(throws: BullhornError.self) { try await client.tearsheets(ids: [tearsheet]) } }
            // One call found the session dead; the next two were told of the pause before any call.
            #expect(fixture.world.faultsServed["401 session expired", default: 0] == 1)
            await pool.close()
        }
    }

    @Test func aLoginThatFailsForAnOutageIsNoRefusalAndPausesNothing() async throws {
        try await FleetFixture.run(seed: Self.seed, faults: SimulatorFaults(loginUnavailable: true)) { fixture in
            let (client, pool) = try await processClient(fixture)
            let tearsheet = fixture.world.tearsheets[0].id
            let failed = await #expect(throws: BullhornError.self) { try await client.tearsheets(ids: [tearsheet]) }
            #expect(failed?.isRetriable == true, "\(String(describing: failed))")
            #expect(try await fixture.pool.query("SELECT refusals FROM bullhorn_sessions").scalar(Int.self) == 0)
            // Bullhorn back: the next call logs in at once, no pause to wait out.
            fixture.world.setFaults(SimulatorFaults())
            #expect(try await client.tearsheets(ids: [tearsheet]).count == 1)
            await pool.close()
        }
    }

    @Test func theFleetPausesLongerWithEachRefusalInARow() {
        #expect(FleetBullhornSessions.pause(refusals: 1) == .seconds(30))
        #expect(FleetBullhornSessions.pause(refusals: 2) == .seconds(60))
        #expect(FleetBullhornSessions.pause(refusals: 5) == .seconds(480))
        #expect(FleetBullhornSessions.pause(refusals: 6) == .seconds(600))
        #expect(FleetBullhornSessions.pause(refusals: 60) == .seconds(600))
    }

    @Test func aRenewalThatFailsAfterARefreshKeepsTheRefreshTokenItWasGiven() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (client, pool, tearsheet) = try await clientWhoseSessionBullhornEnded(fixture)
            // Every REST login flakes: the renewal refreshes (the kept refresh token is spent, a
            // new one given), then its REST logins fail.
            fixture.world.setFaults(SimulatorFaults(loginFlakeEvery: 1))
            await #expect(throws: BullhornError.self) { try await client.tearsheets(ids: [tearsheet]) }
            #expect(fixture.world.callCounts["POST oauth/token", default: 0] >= 2, "the renewal refreshed")

            // Bullhorn well again, the pause over: the next renewal refreshes with the token the
            // failed one was given. Had the spent one been kept, Bullhorn would refuse it and
            // the password login would run again.
            fixture.world.setFaults(SimulatorFaults())
            try await fixture.pool.query("UPDATE bullhorn_sessions SET refused_at = refused_at - interval '1 hour'")
            #expect(try await client.tearsheets(ids: [tearsheet]).count == 1)
            #expect(fixture.world.callCounts["GET oauth/authorize", default: 0] == 1, "one password login, the first")
            await pool.close()
        }
    }

    @Test func aSlowLoginOutlastsTheServersIdleInTransactionTimeout() async throws {
        // Managed PostgreSQL services often end a transaction left idle for a while: a renewal
        // must keep none open while Bullhorn answers the login, here slowly.
        try await FleetFixture.run(seed: Self.seed, faults: SimulatorFaults(endpointLatency: ["POST login": .milliseconds(600)])) { fixture in
            let database = try #require(URLComponents(string: fixture.databaseURL)?.path.dropFirst())
            try await fixture.pool.query("SELECT 1")
            try await fixture.pool.withConnection { try await $0.executeScript(unsafeSQL: "ALTER DATABASE \(database) SET idle_in_transaction_session_timeout = '200ms'") }
            let (client, pool) = try await processClient(fixture)  // its connections open after the change
            #expect(try await client.tearsheets(ids: [fixture.world.tearsheets[0].id]).count == 1)
            #expect(try await fixture.pool.query("SELECT generation FROM bullhorn_sessions").scalar(Int.self) == 1, "the session was kept")
            await pool.close()
        }
    }

    @Test func aLoginUnderWayHoldsNoDatabaseConnection() async throws {
        // A worker starting with many sessions logs in for each: were a login to hold one of its
        // few database connections, every other statement would wait behind the logins.
        try await FleetFixture.run(seed: Self.seed, faults: SimulatorFaults(endpointLatency: ["POST login": .seconds(2)])) { fixture in
            let pool = PostgresPool(connectionString: fixture.databaseURL, maxConnections: 1)
            let integration = try #require(try await IntegrationStore(pool: pool).load(ids: [fixture.integrationID]).first)
            let client = try integration.bullhornClient(keys: fixture.keys, pool: pool, configuration: FleetFixture.clientConfiguration)
            let call = Task { try await client.tearsheets(ids: [fixture.world.tearsheets[0].id]).count }
            #expect(try await FleetFixture.eventually { fixture.world.callCounts["POST login", default: 0] == 1 }, "the login is under way")
            #expect(try await pool.query("SELECT 1").scalar(Int.self) == 1)
            #expect(fixture.world.auth.sessionsOpened == 0, "the pool's one connection answered while Bullhorn was still logging in")
            #expect(try await call.value == 1)
            await pool.close()
        }
    }

    @Test func aLeaseLeftByAProcessKilledMidLoginRunsOutAndAnotherRenews() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let (client, pool, tearsheet) = try await clientWhoseSessionBullhornEnded(fixture)
            // A process took the renewal's lease and was killed during its login: the lease has
            // a second and a half left.
            try await fixture.pool.query(
                "UPDATE bullhorn_sessions SET renewal_lease = 'killed', renewing_until = now() + interval '1.5 seconds'")
            let started = ContinuousClock.now
            #expect(try await client.tearsheets(ids: [tearsheet]).count == 1)
            #expect(ContinuousClock.now - started >= .seconds(1), "it waited for the lease to run out, then renewed")
            #expect(try await fixture.pool.query("SELECT generation FROM bullhorn_sessions").scalar(Int.self) == 2)
            #expect(try await fixture.pool.query("SELECT renewal_lease IS NULL FROM bullhorn_sessions").scalar(Bool.self), "and released it")
            await pool.close()
        }
    }

    @Test func aLoginThatOutlastsItsLeaseKeepsItAndOtherProcessesWaitForItsSession() async throws {
        // Bullhorn answers the login in 4 s; the lease is 1.5 s unless extended. A process that
        // took a lease run out would log in too: a second session.
        try await FleetFixture.run(seed: Self.seed, faults: SimulatorFaults(endpointLatency: ["POST login": .seconds(4)])) { fixture in
            let integration = try #require(try await IntegrationStore(pool: fixture.pool).load(ids: [fixture.integrationID]).first)
            let account = SimulatedAuth.Account.standard
            let credentials = BullhornCredentials(
                clientID: account.clientID, clientSecret: account.clientSecret, username: account.username, password: account.password)
            func process() -> (BullhornClient, PostgresPool) {
                let pool = PostgresPool(connectionString: fixture.databaseURL, maxConnections: 2)
                let sessions = FleetBullhornSessions(
                    pool: pool, integrationID: integration.id, keys: fixture.keys, credentials: credentials, endpoints: integration.endpoints,
                    lease: .milliseconds(1_500))
                return (BullhornClient(credentials: credentials, endpoints: integration.endpoints, configuration: FleetFixture.clientConfiguration, sessions: sessions), pool)
            }
            let tearsheet = fixture.world.tearsheets[0].id
            let (first, firstPool) = process()
            let firstCall = Task { try await first.tearsheets(ids: [tearsheet]).count }
            #expect(try await FleetFixture.eventually { fixture.world.callCounts["POST login", default: 0] == 1 }, "the first login is under way")
            try await Task.sleep(for: .seconds(2))  // past the lease's first length
            let (second, secondPool) = process()
            #expect(try await second.tearsheets(ids: [tearsheet]).count == 1)
            #expect(try await firstCall.value == 1)
            #expect(fixture.world.auth.sessionsOpened == 1, "the second process waited for the first's session")
            #expect(fixture.world.callCounts["POST login"] == 1)
            #expect(try await fixture.pool.query("SELECT generation FROM bullhorn_sessions").scalar(Int.self) == 1, "the first kept its session")
            #expect(try await fixture.pool.query("SELECT renewal_lease IS NULL FROM bullhorn_sessions").scalar(Bool.self), "and released the lease")
            await firstPool.close()
            await secondPool.close()
        }
    }

    @Test func aLoginThatCannotPassIsAnAuthenticationFailureWhateverBullhornAnswered() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            // Registered with a loginInfo URL that answers 404 (a typo, another host): no login
            // can pass until the operator fixes it, and no pair is at fault.
            try await fixture.registerIntegration(fixture.integrationID, loginInfoPath: "/nowhere/loginInfo")
            let (client, pool) = try await processClient(fixture)
            let error = await #expect(throws: BullhornError.self) { try await client.tearsheets(ids: [fixture.world.tearsheets[0].id]) }
            #expect(error?.code == .authentication, "the worker waits on it (a .server 404 would dead-letter the batch)")
            #expect(error?.message.contains("logging in failed: unexpected answer") == true, "\(String(describing: error))")
            #expect(error?.status == 404)
            #expect(try await fixture.pool.query("SELECT refusals FROM bullhorn_sessions").scalar(Int.self) == 1, "and it pauses the fleet's logins")
            await pool.close()
        }
    }

    @Test func aSessionStoreWhoseDatabaseIsGoneFailsTheCallAndSaysItMayPass() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let gone = PostgresPool(connectionString: "postgresql://tsync@127.0.0.1:1/none?connect_timeout=2", maxConnections: 1)
            let integration = try #require(try await IntegrationStore(pool: fixture.pool).load(ids: [fixture.integrationID]).first)
            let account = SimulatedAuth.Account.standard
            let credentials = BullhornCredentials(
                clientID: account.clientID, clientSecret: account.clientSecret, username: account.username, password: account.password)
            let client = BullhornClient(
                credentials: credentials, endpoints: integration.endpoints, configuration: FleetFixture.clientConfiguration,
                sessions: FleetBullhornSessions(
                    pool: gone, integrationID: integration.id, keys: fixture.keys, credentials: credentials, endpoints: integration.endpoints))
            let error = await #expect(throws: BullhornError.self) { try await client.tearsheets(ids: [1]) }
            #expect(error?.code == .sessionStoreUnavailable)
            #expect(error?.isRetriable == true)
            #expect(fixture.world.totalCalls == 0, "nothing reached Bullhorn")
            await gone.close()
        }
    }
}
