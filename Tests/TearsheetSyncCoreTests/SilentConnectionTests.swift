import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// A worker whose connections go silent (bytes stop, sockets stay open: a dropped route, a
/// frozen host, a firewall that forgot the connection) replaces them and carries on, adding
/// every pair once (issue 11, findings 4 and 5).
@Suite struct SilentConnectionTests {
    static let seed = SimulatorSeed(candidates: 300, jobOrders: 1, tearsheets: [.init(members: 200, jobs: 1)])

    /// One integration, 200 pairs published; Bullhorn then answers after `latency`, so that
    /// the session is still busy when its connection goes silent.
    private func publishBusySession(_ fixture: FleetFixture, latency: Duration) async throws -> Int {
        try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
        _ = try await fixture.publisher().run()
        fixture.world.setFaults(SimulatorFaults(latency: latency))
        return fixture.world.tearsheets[0].members.count
    }

    /// The backend that holds an advisory lock, if any.
    private func holder(of key: Int64, _ fixture: FleetFixture) async throws -> Int? {
        try await fixture.pool.query(
            """
            SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 1 AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND ((classid::bigint << 32) | objid::bigint) = \(key)
            """
        ).rows.first?.decode(at: 0, as: Int.self)
    }

    /// Without a deadline the lease loop would wait on the silent connection for ever, and the
    /// server would keep that connection's leases until its keepalives gave up (the proxy's
    /// kernel still acknowledges, so here they never would).
    @Test func aSilentLeaseSessionIsReplacedAndTheWorkerKeepsItsSession() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let expected = try await publishBusySession(fixture, latency: .milliseconds(120))
            let proxy = try TCPProxy(inFrontOf: fixture.databaseURL)
            defer { proxy.close() }
            let worker = fixture.sessionWorker("silent-lease", leaseDatabaseURL: proxy.route(fixture.databaseURL))
            // The worker's own lock lives as long as its lease session: whose backend holds it
            // says which lease session the worker has.
            let workerKey = SessionLeases.workerKey("silent-lease")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                #expect(try await FleetFixture.eventually { worker.sessions == [fixture.integrationID] })
                let before = try #require(try await holder(of: workerKey, fixture))
                #expect(try await holder(of: SessionLeases.key(fixture.integrationID), fixture) == before)
                #expect(try await fixture.rows() < expected, "still busy when the lease session goes silent")
                let silenced = ContinuousClock.now
                #expect(proxy.blackhole() == 1, "only the lease session goes through the proxy")
                let replaced = try await FleetFixture.eventually(.seconds(45)) {
                    guard let now = try await holder(of: workerKey, fixture) else { return false }
                    return now != before
                }
                #expect(replaced, "a new lease session holds the worker's lock")
                let took = ContinuousClock.now - silenced
                #expect(took < .seconds(30), "noticed by the answer deadline (10 s), took \(took)")
                #expect(
                    try await fixture.pool.query("SELECT count(*) FROM pg_stat_activity WHERE pid = \(before)").scalar(Int.self) == 0,
                    "the silent session's backend was ended, not left holding its locks")
                #expect(try await FleetFixture.eventually(.seconds(60)) { try await fixture.rows() == expected })
                worker.stop()
                try await group.waitForAll()
            }
            #expect(try await fixture.rows() == expected)
            fixture.expectOneJobSubmissionPerMember(of: fixture.world.tearsheets, jobs: fixture.world.jobOrderIDs)
        }
    }

    /// The worker's broker connection goes silent: with the default heartbeat (10 s) it is
    /// declared dead, a new one takes the session over, and what was in hand is redelivered
    /// and found already done.
    @Test func aSilentBrokerConnectionIsReplacedAndEveryPairIsAddedOnce() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let expected = try await publishBusySession(fixture, latency: .milliseconds(20))
            let proxy = try TCPProxy(inFrontOf: fixture.amqpURL)
            defer { proxy.close() }
            #expect(!fixture.amqpURL.contains("heartbeat"), "the default heartbeat is what is tried")
            // A window of half the session: the rest can only come over a new connection.
            let worker = fixture.sessionWorker(
                "silent-broker", options: WorkerOptions(batchSize: 50, batchWait: .milliseconds(50), prefetch: 100), amqpURL: proxy.route(fixture.amqpURL))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                #expect(try await FleetFixture.eventually { try await fixture.rows() >= 20 })
                let connectionsBefore = proxy.connectionCount
                #expect(proxy.blackhole() >= 1)
                let silenced = ContinuousClock.now
                #expect(try await FleetFixture.eventually(.seconds(120)) { try await fixture.rows() == expected })
                let took = ContinuousClock.now - silenced
                #expect(proxy.connectionCount > connectionsBefore, "a new broker connection replaced the silent one")
                #expect(took < .seconds(90), "heartbeat 10 s: dead after about 20 s, took \(took)")
                worker.stop()
                try await group.waitForAll()
            }
            #expect(try await fixture.rows() == expected)
            fixture.expectOneJobSubmissionPerMember(of: fixture.world.tearsheets, jobs: fixture.world.jobOrderIDs)
        }
    }
}
