import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Synchronization
import Testing

@testable import TearsheetSyncCore

/// Several workers sharing the partitions, against the real broker, database and simulator.
@Suite struct PartitionWorkerTests {
    /// Six tearsheets of 40 members, each on a job of its own.
    static let seed = SimulatorSeed(candidates: 400, jobOrders: 6, tearsheets: Array(repeating: .init(members: 40, jobs: 1), count: 6))

    /// Registers five more integrations (so that pairs spread over several partitions), each
    /// with one campaign on the job of one tearsheet; returns the pairs expected.
    private func integrations(_ fixture: FleetFixture) async throws -> Int {
        let account = SimulatedAuth.Account.standard
        let ids = [fixture.integrationID] + (1...5).map { "integration-\($0)" }
        for (index, id) in ids.enumerated() {
            if index > 0 {
                try await IntegrationStore(pool: fixture.pool).upsert(
                    id: id, clientID: account.clientID, username: account.username,
                    endpoints: .discovered(loginInfoURL: "\(fixture.simulatorBase)/rest-services/loginInfo"),
                    secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password),
                    secretKey: fixture.secretKey, callsPerMinute: 600_000)
            }
            let tearsheet = fixture.world.tearsheets[index]
            let job = fixture.world.jobOrderIDs[index]
            fixture.world.updateTearsheet(tearsheet.id, at: 1_764_000_000_000) { $0.jobOrderIDs = [job] }
            try await CampaignStore(pool: fixture.pool).upsert(id: Int64(100 + index), integrationID: id, atsJobID: job)
        }
        return fixture.world.tearsheets.prefix(ids.count).map(\.members.count).reduce(0, +)
    }

    private func worker(_ fixture: FleetFixture, _ name: String) -> PartitionWorker {
        let processor = PairProcessor(
            pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, secretKey: fixture.secretKey, configuration: FleetFixture.clientConfiguration))
        return PartitionWorker(
            workerID: name, databaseURL: fixture.databaseURL, connectBroker: { try await AMQPConnection.connect(url: fixture.amqpURL) }, topology: fixture.topology, processor: processor,
            options: WorkerOptions(batchSize: 50, batchWait: .milliseconds(50)), tick: .milliseconds(200), heartbeatExpiry: .seconds(2),
            logger: FleetFixture.quietLogger)
    }

    /// Polls `condition` every 100 ms for up to `limit`.
    private func eventually(_ limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    private func disjointAndComplete(_ workers: [PartitionWorker], maximum: Int) -> Bool {
        let held = workers.map(\.partitions)
        let all = held.flatMap { $0 }
        return all.count == 16 && Set(all).count == 16 && held.allSatisfy { $0.count <= maximum }
    }

    @Test func threeWorkersShareThePartitionsAndAddEveryPairOnce() async throws {
        try await FleetFixture.run(seed: Self.seed) { fixture in
            let expected = try await integrations(fixture)
            let summaries = try await fixture.publisher().run()
            #expect(summaries.count == 6 && summaries.allSatisfy { !$0.isFailure })
            let workers = ["w1", "w2", "w3"].map { worker(fixture, $0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers { group.addTask { try await worker.run() } }
                #expect(try await eventually { disjointAndComplete(workers, maximum: 6) }, "16 partitions, each held once, at most 6 a worker")
                #expect(try await eventually {
                    try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) >= expected
                })
                for worker in workers { worker.stop() }
                try await group.waitForAll()
            }
            #expect(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == expected)
            #expect(workers.map(\.totals.added).reduce(0, +) == expected, "the workers' totals account for every pair")
            #expect(workers.map(\.totals.acknowledged).reduce(0, +) == expected)
            for (index, tearsheet) in fixture.world.tearsheets.enumerated() {
                for member in tearsheet.members {
                    #expect(fixture.world.jobSubmissionCount(candidate: member.candidateID, jobOrder: fixture.world.jobOrderIDs[index]) == 1)
                }
            }
            #expect(try await fixture.pool.query("SELECT count(*) FROM worker_heartbeats").scalar(Int.self) == 0, "workers resign on stop")
        }
    }

    @Test func aLateWorkerTakesItsShareWithoutTwoWorkersOnOnePartition() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10)) { fixture in
            let first = [worker(fixture, "early-1"), worker(fixture, "early-2")]
            let late = worker(fixture, "late")
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in first { group.addTask { try await worker.run() } }
                #expect(try await eventually { disjointAndComplete(first, maximum: 8) })
                group.addTask { try await late.run() }
                let all = first + [late]
                #expect(try await eventually(.seconds(10)) { disjointAndComplete(all, maximum: 6) && late.partitions.count >= 4 })
                // Sampled while it rebalanced: never one partition in two workers' hands.
                for _ in 0..<20 {
                    let held = all.flatMap(\.partitions)
                    #expect(Set(held).count == held.count)
                    try await Task.sleep(for: .milliseconds(50))
                }
                for worker in all { worker.stop() }
                try await group.waitForAll()
            }
        }
    }

    @Test func aCancelledWorkerWindsDownLikeAStoppedOne() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10)) { (fixture: FleetFixture) async throws in
            let cancelled = worker(fixture, "cancelled")
            let ended = StopFlag()
            let task = Task<Void, any Error> {
                defer { ended.set() }
                try await cancelled.run()
            }
            #expect(try await eventually { cancelled.partitions.count == 16 })
            task.cancel()
            #expect(try await eventually(.seconds(10)) { ended.isSet }, "run() returns after cancellation")
            #expect(cancelled.partitions.isEmpty)
            #expect(try await fixture.pool.query("SELECT count(*) FROM worker_heartbeats").scalar(Int.self) == 0, "it resigned")
        }
    }

    @Test func aWorkerWhoseBrokerConnectionDiesReconnectsAndCarriesOn() async throws {
        let seed = SimulatorSeed(candidates: 200, jobOrders: 1, tearsheets: [.init(members: 30, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            let connections = Mutex<[AMQPConnection]>([])
            let processor = PairProcessor(
                pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, secretKey: fixture.secretKey, configuration: FleetFixture.clientConfiguration))
            let worker = PartitionWorker(
                workerID: "reconnecting", databaseURL: fixture.databaseURL,
                connectBroker: {
                    let connection = try await AMQPConnection.connect(url: fixture.amqpURL)
                    connections.withLock { $0.append(connection) }
                    return connection
                },
                topology: fixture.topology, processor: processor, options: WorkerOptions(batchSize: 50, batchWait: .milliseconds(50)),
                tick: .milliseconds(200), heartbeatExpiry: .seconds(2), logger: FleetFixture.quietLogger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                _ = try await fixture.publisher().run()
                #expect(try await eventually { try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 30 })
                let outsiders = fixture.world.candidateIDs.filter { id in !fixture.world.tearsheets[0].members.contains { $0.candidateID == id } }
                // The consuming connection dies under the worker, then the dead-letter one.
                for (round, index) in [0, 1].enumerated() {
                    await connections.withLock { $0[index] }.close()
                    let joined = Array(outsiders.dropFirst(round * 10).prefix(10))
                    fixture.world.addMembers(joined, to: fixture.world.tearsheets[0].id, at: 1_764_000_100_000 + Int64(round) * 1_000)
                    _ = try await fixture.publisher().run()
                    #expect(try await eventually {
                        try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 40 + round * 10
                    })
                }
                #expect(connections.withLock { $0.count } >= 4, "two at the start, one more after each loss")
                #expect(try await eventually { worker.partitions.count == 16 })
                worker.stop()
                try await group.waitForAll()
            }
            #expect(connections.withLock { $0 }.allSatisfy { !$0.isOpen }, "the worker closes the connections it opened")
        }
    }

    @Test func aWorkerRecoversWhenEveryDatabaseSessionIsCut() async throws {
        let seed = SimulatorSeed(candidates: 200, jobOrders: 1, tearsheets: [.init(members: 30, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            let survivor = worker(fixture, "resilient")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await survivor.run() }
                _ = try await fixture.publisher().run()
                #expect(try await eventually { try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 30 })
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
                #expect(try await eventually { try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 40 })
                #expect(try await eventually { survivor.partitions.count == 16 })
                survivor.stop()
                try await group.waitForAll()
            }
            #expect(fixture.world.jobSubmissions.count == 40)
        }
    }

    @Test func workersRecoverFromARealDatabaseRestartWithNothingLost() async throws {
        let server = try await ScratchPostgres.start()  // restarting the shared server would disturb every other test
        let seed = SimulatorSeed(candidates: 300, jobOrders: 1, tearsheets: [.init(members: 120, jobs: 1)])
        do {
            try await FleetFixture.run(seed: seed, databaseServer: server.adminURL) { fixture in
                let job = fixture.world.tearsheets[0].jobOrderIDs[0]
                try await fixture.addCampaign(1, job: job)
                _ = try await fixture.publisher().run()
                fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(20)))  // batches long enough to restart under
                let workers = [worker(fixture, "restart-a"), worker(fixture, "restart-b")]
                let added = { (try? await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self)) ?? -1 }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in workers { group.addTask { try await worker.run() } }
                    #expect(try await eventually { await added() > 0 })
                    let beforeRestart = await added()
                    try await server.restart()
                    #expect((1..<120).contains(beforeRestart), "the restart came while pairs were still being added")
                    #expect(try await eventually(.seconds(60)) { await added() == 120 })
                    #expect(try await eventually { disjointAndComplete(workers, maximum: 8) }, "the partitions are held again")
                    for worker in workers { worker.stop() }
                    try await group.waitForAll()
                }
                for member in fixture.world.tearsheets[0].members {
                    #expect(fixture.world.jobSubmissionCount(candidate: member.candidateID, jobOrder: job) == 1)
                }
            }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    private func startWorkerProcess(_ fixture: FleetFixture) throws -> Process {
        try fixture.launch(["work", "--batch", "20"])
    }

    @Test func workersSIGKILLedMidBatchRepeatedlyStillAddEveryPairOnce() async throws {
        let seed = SimulatorSeed(candidates: 1_200, jobOrders: 6, tearsheets: Array(repeating: .init(members: 150, jobs: 1), count: 6))
        try await FleetFixture.run(seed: seed) { fixture in
            let expected = try await integrations(fixture)
            _ = try await fixture.publisher().run()
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(30)))  // batches long enough to die in
            var processes = [try startWorkerProcess(fixture), try startWorkerProcess(fixture)]
            var addedAtKills: [Int] = []
            for round in 0..<3 {
                try await Task.sleep(for: .milliseconds(1_000))
                addedAtKills.append(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self))
                let victim = processes.remove(at: round % processes.count)
                kill(victim.processIdentifier, SIGKILL)
                victim.waitUntilExit()
                processes.append(try startWorkerProcess(fixture))
            }
            let done = try await eventually(.seconds(60)) {
                try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) >= expected
            }
            for process in processes { kill(process.processIdentifier, SIGTERM) }
            for process in processes { process.waitUntilExit() }
            #expect(done)
            #expect(addedAtKills.last! < expected, "the kills landed while pairs were still being added: \(addedAtKills)")
            #expect(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == expected)
            for (index, tearsheet) in fixture.world.tearsheets.enumerated() {
                for member in tearsheet.members {
                    #expect(fixture.world.jobSubmissionCount(candidate: member.candidateID, jobOrder: fixture.world.jobOrderIDs[index]) == 1)
                }
            }
        }
    }

    @Test func aKilledWorkersPartitionsAreTakenOverWithinSeconds() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10)) { fixture in
            let process = try fixture.launch(["work"])
            let survivor = worker(fixture, "survivor")
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await survivor.run() }
                #expect(try await eventually {
                    try await fixture.pool.query("SELECT count(*) FROM worker_heartbeats WHERE cardinality(partitions) > 0").scalar(Int.self) == 2
                }, "both workers hold partitions")
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let killedAt = ContinuousClock.now
                // The dead worker's heartbeat expires after 6 s (its default); then the survivor takes everything.
                #expect(try await eventually(.seconds(15)) { survivor.partitions.count == 16 })
                #expect(ContinuousClock.now - killedAt < .seconds(12))
                survivor.stop()
                try await group.waitForAll()
            }
        }
    }
}
