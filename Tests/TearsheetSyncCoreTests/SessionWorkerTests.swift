import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Synchronization
import Testing

@testable import TearsheetSyncCore

/// Several workers sharing sessions, against the real broker, database and simulator.
@Suite struct SessionWorkerTests {
    /// Six tearsheets of 40 members, each on a job of its own.
    static let seed = SimulatorSeed(candidates: 400, jobOrders: 6, tearsheets: Array(repeating: .init(members: 40, jobs: 1), count: 6))

    /// Registers five more integrations (six sessions in all), each with one campaign on the
    /// job of one tearsheet; returns the pairs expected.
    private func integrations(_ fixture: FleetFixture, count: Int = 6) async throws -> Int {
        let ids = [fixture.integrationID] + (1..<count).map { "integration-\($0)" }
        for (index, id) in ids.enumerated() {
            if index > 0 { try await fixture.registerIntegration(id) }
            let tearsheet = fixture.world.tearsheets[index]
            let job = fixture.world.jobOrderIDs[index]
            fixture.world.updateTearsheet(tearsheet.id, at: 1_764_000_000_000) { $0.jobOrderIDs = [job] }
            try await CampaignStore(pool: fixture.pool).upsert(id: Int64(100 + index), integrationID: id, atsJobID: job)
        }
        return fixture.world.tearsheets.prefix(ids.count).map(\.members.count).reduce(0, +)
    }

    /// Six tearsheets of `members`, each on a job of its own (see `integrations`).
    private static func sixTearsheets(members: Int, candidates: Int) -> SimulatorSeed {
        SimulatorSeed(candidates: candidates, jobOrders: 6, tearsheets: Array(repeating: .init(members: members, jobs: 1), count: 6))
    }

    /// Six sessions with their pairs published; from then on the simulator answers after
    /// `latency`, so that the sessions stay busy while a test acts. Returns the pairs expected.
    private func publishSixBusySessions(_ fixture: FleetFixture, latency: Duration) async throws -> Int {
        let expected = try await integrations(fixture)
        _ = try await fixture.publisher().run()
        fixture.world.setFaults(SimulatorFaults(latency: latency))
        return expected
    }

    /// No session in two workers' hands.
    private func disjoint(_ workers: [SessionWorker]) -> Bool {
        let held = workers.flatMap(\.sessions)
        return Set(held).count == held.count
    }

    @Test func threeWorkersShareTheSessionsAndAddEveryPairOnce() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let expected = try await integrations(fixture)
            let summaries = try await fixture.publisher().run()
            #expect(summaries.count == 6 && summaries.allSatisfy { !$0.isFailure })
            let workers = ["w1", "w2", "w3"].map { fixture.sessionWorker($0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers { group.addTask { try await worker.run() } }
                let overlaps = Mutex(0)
                let done = try await FleetFixture.eventually {
                    if !disjoint(workers) { overlaps.withLock { $0 += 1 } }
                    return try await fixture.rows() >= expected
                }
                #expect(done)
                #expect(overlaps.withLock { $0 } == 0, "never one session in two workers' hands")
                #expect(try await FleetFixture.eventually {
                    let waiting = try await SessionWorkStore(pool: fixture.pool).waiting(limit: 10)
                    return waiting.isEmpty && workers.allSatisfy(\.sessions.isEmpty)
                }, "drained sessions are recorded as drained and given back")
                for worker in workers { worker.stop() }
                try await group.waitForAll()
            }
            #expect(try await fixture.rows() == expected)
            #expect(workers.map(\.totals.added).reduce(0, +) == expected, "the workers' totals account for every pair")
            #expect(workers.map(\.totals.acknowledged).reduce(0, +) == expected)
            fixture.expectOneJobSubmissionPerMember(of: fixture.world.tearsheets, jobs: fixture.world.jobOrderIDs)
            #expect(try await fixture.pool.query("SELECT count(*) FROM worker_heartbeats").scalar(Int.self) == 0, "workers resign on stop")
            // The publisher and three workers, each process with its own clients: one Bullhorn
            // REST session an integration, not one a process.
            #expect(fixture.world.auth.sessionsOpened == 6)
        }
    }

    /// A worker joins a busy fleet: the first gives sessions back after the pairs in hand, the
    /// newcomer takes them, and no message is handed back to the queue (each would be settled
    /// twice, and spend a delivery).
    @Test func aJoiningWorkerTakesItsShareByHandOverNotByRedelivery() async throws {
        let seed = Self.sixTearsheets(members: 100, candidates: 700)
        try await FleetFixture.run(seed: seed) { fixture in
            let expected = try await publishSixBusySessions(fixture, latency: .milliseconds(40))  // sessions stay busy while the fleet grows
            let options = WorkerOptions(batchSize: 10, batchWait: .milliseconds(20))
            let first = fixture.sessionWorker("first", options: options)
            let late = fixture.sessionWorker("late", options: options)
            let overlaps = Mutex(0)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await first.run() }
                #expect(try await FleetFixture.eventually { first.sessions.count == 6 })
                group.addTask { try await late.run() }
                let shared = try await FleetFixture.eventually(.seconds(20)) {
                    if !disjoint([first, late]) { overlaps.withLock { $0 += 1 } }
                    return late.sessions.count >= 2 && first.sessions.count <= 4
                }
                #expect(shared, "the newcomer took a share: first \(first.sessions.count), late \(late.sessions.count)")
                #expect(try await FleetFixture.eventually(.seconds(60)) { try await fixture.rows() == expected })
                first.stop()
                late.stop()
                try await group.waitForAll()
            }
            #expect(overlaps.withLock { $0 } == 0, "never one session in two workers' hands")
            #expect(first.totals.acknowledged + late.totals.acknowledged == expected, "every message settled once: none handed back")
            fixture.expectOneJobSubmissionPerMember(of: fixture.world.tearsheets, jobs: fixture.world.jobOrderIDs)
        }
    }

    /// A worker that reaches PostgreSQL but not RabbitMQ is no member of the fleet: it holds no
    /// share, so the healthy worker takes every session (issue 11, finding 5).
    @Test func aWorkerWithoutABrokerLeavesItsShareToTheOthers() async throws {
        let seed = Self.sixTearsheets(members: 100, candidates: 700)
        try await FleetFixture.run(seed: seed) { fixture in
            _ = try await publishSixBusySessions(fixture, latency: .milliseconds(40))  // sessions stay busy
            let stranded = SessionWorker(
                workerID: "no-broker", databaseURL: fixture.databaseURL,
                connectBroker: { try await AMQPConnection.connect(url: "amqp://guest:guest@127.0.0.1:1/%2F") },
                processor: PairProcessor(pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys)),
                tick: .milliseconds(200), logger: FleetFixture.quietLogger)
            let healthy = fixture.sessionWorker("healthy", options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(20)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await stranded.run() }
                try await Task.sleep(for: .seconds(1))
                group.addTask { try await healthy.run() }
                #expect(try await FleetFixture.eventually(.seconds(10)) { healthy.sessions.count == 6 }, "it holds \(healthy.sessions.count) of 6")
                #expect(!stranded.isHealthy, "no broker: /healthz says so")
                #expect(stranded.sessions.isEmpty)
                stranded.stop()
                healthy.stop()
                try await group.waitForAll()
            }
        }
    }

    @Test func aCancelledWorkerWindsDownLikeAStoppedOne() async throws {
        let seed = SimulatorSeed(candidates: 100, jobOrders: 1, tearsheets: [.init(members: 60, jobs: 1)])
        try await FleetFixture.run(seed: seed) { (fixture: FleetFixture) async throws in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            _ = try await fixture.publisher().run()
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(100)))  // it is still busy when cancelled
            // A window of two batches: a stopping worker finishes what it holds, and at 100 ms a
            // call the default five would take most of the 10 s this test allows.
            let cancelled = fixture.sessionWorker("cancelled", options: WorkerOptions(batchSize: 5, batchWait: .milliseconds(20), prefetch: 10))
            let ended = StopFlag()
            let task = Task<Void, any Error> {
                defer { ended.set() }
                try await cancelled.run()
            }
            #expect(try await FleetFixture.eventually { cancelled.sessions == [fixture.integrationID] })
            task.cancel()
            #expect(try await FleetFixture.eventually(.seconds(10)) { ended.isSet }, "run() returns after cancellation")
            #expect(cancelled.sessions.isEmpty)
            #expect(try await fixture.pool.query("SELECT count(*) FROM worker_heartbeats").scalar(Int.self) == 0, "it resigned")
        }
    }

    /// The consuming connection opens but the dead-letter one cannot (the broker refused it, a
    /// timeout under load): the first is closed, not left open beside the pair the next tick
    /// opens. (CI met one left open at the end of the test below.)
    @Test func aConnectionWhosePartnerCannotBeOpenedIsClosed() async throws {
        let seed = SimulatorSeed(candidates: 100, jobOrders: 1, tearsheets: [.init(members: 20, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            let attempts = Mutex(0)
            let connections = Mutex<[AMQPConnection]>([])
            let worker = SessionWorker(
                workerID: "half-connected", databaseURL: fixture.databaseURL,
                connectBroker: {
                    guard attempts.withLock({ $0 += 1; return $0 }) != 2 else { throw AMQPError(.transport, "refused, as a loaded broker may") }
                    let connection = try await AMQPConnection.connect(url: fixture.amqpURL)
                    connections.withLock { $0.append(connection) }
                    return connection
                },
                processor: PairProcessor(
                    pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration)),
                options: WorkerOptions(batchSize: 50, batchWait: .milliseconds(50)), tick: .milliseconds(200), heartbeatExpiry: .seconds(2),
                logger: FleetFixture.quietLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                _ = try await fixture.publisher().run()
                #expect(try await FleetFixture.eventually { try await fixture.rows() == 20 })
                #expect(connections.withLock { $0.count } >= 3, "one before the refusal, two after (more if one drops under load)")
                #expect(connections.withLock { !$0[0].isOpen }, "the one whose partner was refused is closed at once")
                worker.stop()
                try await group.waitForAll()
            }
            #expect(connections.withLock { $0 }.allSatisfy { !$0.isOpen })
        }
    }

    @Test func aWorkerWhoseBrokerConnectionDiesReconnectsAndCarriesOn() async throws {
        let seed = SimulatorSeed(candidates: 200, jobOrders: 1, tearsheets: [.init(members: 30, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            let connections = Mutex<[AMQPConnection]>([])
            let processor = PairProcessor(
                pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration))
            let worker = SessionWorker(
                workerID: "reconnecting", databaseURL: fixture.databaseURL,
                connectBroker: {
                    let connection = try await AMQPConnection.connect(url: fixture.amqpURL)
                    connections.withLock { $0.append(connection) }
                    return connection
                },
                processor: processor, options: WorkerOptions(batchSize: 50, batchWait: .milliseconds(50)),
                tick: .milliseconds(200), heartbeatExpiry: .seconds(2), logger: FleetFixture.quietLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                _ = try await fixture.publisher().run()
                #expect(try await FleetFixture.eventually { try await fixture.rows() == 30 })
                let outsiders = fixture.world.candidateIDs.filter { id in !fixture.world.tearsheets[0].members.contains { $0.candidateID == id } }
                // The consuming connection dies under the worker, then the dead-letter one.
                for (round, index) in [0, 1].enumerated() {
                    await connections.withLock { $0[index] }.close()
                    let joined = Array(outsiders.dropFirst(round * 10).prefix(10))
                    fixture.world.addMembers(joined, to: fixture.world.tearsheets[0].id, at: 1_764_000_100_000 + Int64(round) * 1_000)
                    _ = try await fixture.publisher().run()
                    #expect(try await FleetFixture.eventually {
                        try await fixture.rows() == 40 + round * 10
                    })
                }
                #expect(connections.withLock { $0.count } >= 4, "two at the start, one more after each loss")
                worker.stop()
                try await group.waitForAll()
            }
            #expect(connections.withLock { $0 }.allSatisfy { !$0.isOpen }, "the worker closes the connections it opened")
        }
    }

    /// The worker's sessions share `maxInHand`: two sessions of 40 pairs, whose windows would
    /// be 250 each (five batches), hold 20 at most between them, not all 80.
    @Test func aWorkersSessionsTogetherHoldNoMoreThanItsMaxInHand() async throws {
        let seed = SimulatorSeed(candidates: 400, jobOrders: 2, tearsheets: Array(repeating: .init(members: 40, jobs: 1), count: 2))
        try await FleetFixture.run(seed: seed) { fixture in
            let expected = try await integrations(fixture, count: 2)
            #expect(try await fixture.publisher().run().map(\.pairsPublished).reduce(0, +) == expected)
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(20)))  // pairs stay in hand a while
            let channel = try await fixture.broker.openChannel()
            let queues = [fixture.integrationID, "integration-1"].map { SessionQueue(integrationID: $0).queue }
            let worker = fixture.sessionWorker(
                "frugal", options: WorkerOptions(batchSize: 50, batchWait: .milliseconds(50), maxSessions: 2, maxInHand: 20))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                // In hand: delivered and not yet added, i.e. published, minus what the queues
                // still hold ready, minus rows (read last, so that the figure errs low).
                var mostInHand = 0
                let deadline = ContinuousClock.now + .seconds(60)
                while try await fixture.rows() < expected, ContinuousClock.now < deadline {
                    var ready = 0
                    for queue in queues { ready += Int(try await channel.declareQueue(queue, passive: true).messageCount) }
                    mostInHand = max(mostInHand, expected - ready - (try await fixture.rows()))
                    try await Task.sleep(for: .milliseconds(20))
                }
                worker.stop()
                try await group.waitForAll()
                #expect(try await fixture.rows() == expected)
                #expect(mostInHand > 0, "pairs were seen in hand")
                #expect(mostInHand <= 20)
            }
        }
    }

    @Test func aWorkerRecoversWhenEveryDatabaseSessionIsCut() async throws {
        let seed = SimulatorSeed(candidates: 200, jobOrders: 1, tearsheets: [.init(members: 30, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            let survivor = fixture.sessionWorker("resilient")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await survivor.run() }
                _ = try await fixture.publisher().run()
                #expect(try await FleetFixture.eventually { try await fixture.rows() == 30 })
                // What a database restart does to this database's sessions: all of them end.
                let admin = try await PostgresConnection.connect(TestServices.adminDatabaseURL)
                let database = String(URLComponents(string: fixture.databaseURL)!.path.dropFirst())
                try await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database) AND pid <> pg_backend_pid()")
                await admin.close()
                let joined = Array(fixture.world.candidateIDs.filter { id in !fixture.world.tearsheets[0].members.contains { $0.candidateID == id } }.prefix(10))
                fixture.world.addMembers(joined, to: fixture.world.tearsheets[0].id, at: 1_764_000_100_000)
                var published = 0
                for _ in 0..<20 where published == 0 {  // the publisher's own pool needs a moment, too
                    published = (try? await fixture.publisher().run().first?.pairsPublished) ?? 0
                    if published == 0 { try await Task.sleep(for: .milliseconds(200)) }
                }
                #expect(published == 10)
                #expect(try await FleetFixture.eventually { try await fixture.rows() == 40 })
                survivor.stop()
                try await group.waitForAll()
            }
            #expect(fixture.world.jobSubmissions.count == 40)
        }
    }

    @Test func workersRecoverFromARealDatabaseRestartWithNothingLost() async throws {
        let seed = SimulatorSeed(candidates: 300, jobOrders: 1, tearsheets: [.init(members: 120, jobs: 1)])
        try await ScratchPostgres.with { server in  // restarting the shared server would disturb every other test
            try await FleetFixture.run(seed: seed, databaseServer: server.adminURL) { fixture in
                let job = fixture.world.tearsheets[0].jobOrderIDs[0]
                try await fixture.addCampaign(1, job: job)
                _ = try await fixture.publisher().run()
                fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(20)))  // batches long enough to restart under
                let workers = [fixture.sessionWorker("restart-a"), fixture.sessionWorker("restart-b")]
                let added = { (try? await fixture.rows()) ?? -1 }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in workers { group.addTask { try await worker.run() } }
                    #expect(try await FleetFixture.eventually { await added() > 0 })
                    let beforeRestart = await added()
                    try await server.restart()
                    #expect((1..<120).contains(beforeRestart), "the restart came while pairs were still being added")
                    #expect(try await FleetFixture.eventually(.seconds(60)) { await added() == 120 })
                    for worker in workers { worker.stop() }
                    try await group.waitForAll()
                }
                fixture.expectOneJobSubmissionPerMember(of: [fixture.world.tearsheets[0]], jobs: [job])
            }
        }
    }

    private func startWorkerProcess(_ fixture: FleetFixture) throws -> Process {
        // The simulator applies a write at once: a short grace is enough for the PUTs a kill
        // leaves without an answer (Bullhorn's own needs the default, 3 min).
        try fixture.launch(["work", "--batch", "20", "--uncertain-write-grace", "5s"])
    }

    @Test func workersSIGKILLedMidBatchRepeatedlyStillAddEveryPairOnce() async throws {
        let seed = Self.sixTearsheets(members: 150, candidates: 1_200)
        try await FleetFixture.run(seed: seed) { fixture in
            let expected = try await publishSixBusySessions(fixture, latency: .milliseconds(30))  // batches long enough to die in
            var processes = [try startWorkerProcess(fixture), try startWorkerProcess(fixture)]
            var addedAtKills: [Int] = []
            for round in 1...3 {
                // At a quarter, half and three quarters of the pairs, every worker is killed (one
                // of them holds the busy sessions, mid-batch) and two new ones start: kills timed
                // by the clock found the work done when the fleet was quick.
                #expect(try await FleetFixture.eventually(.seconds(60)) { try await fixture.rows() >= expected * round / 4 })
                addedAtKills.append(try await fixture.rows())
                for victim in processes { kill(victim.processIdentifier, SIGKILL) }
                for victim in processes { await victim.exited() }
                processes = [try startWorkerProcess(fixture), try startWorkerProcess(fixture)]
            }
            let done = try await FleetFixture.eventually(.seconds(60)) {
                try await fixture.rows() >= expected
            }
            for process in processes { kill(process.processIdentifier, SIGTERM) }
            for process in processes { await process.exited() }
            #expect(done)
            #expect(addedAtKills.last! < expected, "the kills landed while pairs were still being added: \(addedAtKills)")
            #expect(try await fixture.rows() == expected)
            fixture.expectOneJobSubmissionPerMember(of: fixture.world.tearsheets, jobs: fixture.world.jobOrderIDs)
        }
    }

    @Test func aKilledWorkersSessionsAreTakenOverWithinSeconds() async throws {
        let seed = Self.sixTearsheets(members: 150, candidates: 1_200)
        try await FleetFixture.run(seed: seed) { fixture in
            let expected = try await publishSixBusySessions(fixture, latency: .milliseconds(50))  // sessions stay busy for a while
            let process = try fixture.launch(["work", "--batch", "10", "--uncertain-write-grace", "5s"])  // see startWorkerProcess
            let sessionsOf = { (worker: String) in
                try await fixture.pool.query("SELECT coalesce(cardinality(sessions), 0) FROM worker_heartbeats WHERE worker_id LIKE \(worker)").rows
                    .map { try $0.decode(at: 0, as: Int.self) }.reduce(0, +)
            }
            #expect(try await FleetFixture.eventually { try await sessionsOf("%:%:%") > 0 }, "the worker process holds sessions")
            let survivor = fixture.sessionWorker("survivor", options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(20)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await survivor.run() }
                #expect(try await FleetFixture.eventually { !survivor.sessions.isEmpty })
                let victims = try await sessionsOf("%:%:%")
                kill(process.processIdentifier, SIGKILL)
                await process.exited()
                let killedAt = ContinuousClock.now
                // Its advisory locks, its own included, die with its connection: the survivor
                // sees it gone on its next tick, without waiting for its heartbeat to expire.
                let tookOver = try await FleetFixture.eventually(.seconds(15)) {
                    if survivor.sessions.count >= min(6, victims + 1) { return true }
                    return try await fixture.rows() == expected
                }
                #expect(tookOver)
                let takeover = ContinuousClock.now - killedAt
                #expect(takeover < .seconds(4), "taken over in \(takeover)")
                #expect(try await FleetFixture.eventually(.seconds(90)) { try await fixture.rows() == expected })
                survivor.stop()
                try await group.waitForAll()
            }
            fixture.expectOneJobSubmissionPerMember(of: fixture.world.tearsheets, jobs: fixture.world.jobOrderIDs)
        }
    }
}
