import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Logging
import PostgresClient
import TearsheetSyncCore

/// Workers draining the partitions, with 1 and then 2 workers, next to raw-limit's consume rate
/// on the same broker and to the same client consuming pair messages (`PairLimit`):
/// (b) new pairs: index, JobSubmission search and creation against the simulator, rows added;
/// (a) the same pairs again, four times over (`--rounds`): every one already on its campaign
///     (one database statement a batch, no Bullhorn call).
///
/// Each worker is what one `tearsheet-sync work` process holds: its own broker connection,
/// database pool and Bullhorn clients. The workers are started and hold all 16 partitions
/// before a phase begins. Like raw-limit's consume figure, a phase drains queues that are
/// already full: while its messages are published, a lock on `campaigns` holds every batch
/// at its first query (the consumers hold at most their prefetch); the clock starts when the
/// lock is released and stops when the workers have acknowledged every message. The simulator
/// runs in the bench process and shares the machine's two cores with the workers, RabbitMQ
/// and PostgreSQL.
struct WorkerBenchmark {
    let options: BenchmarkOptions
    let integrations = 8
    var existingRounds: Int { options.existingRounds }

    func run(into report: inout BenchmarkReport) async throws {
        let pairs = integrations * options.membersPerIntegration
        let baseline = try await RawLimit.run(messages: pairs, options: options)
        let consume = baseline["consume_msgs_per_s"]
        let pairShaped = try await PairLimit.run(messages: pairs, options: options)
        report.add(PairLimit.consumeRow, ours: pairShaped["consume_msgs_per_s"]!, baseline: consume, unit: "msg/s")
        let latency = options.bullhornLatencyMilliseconds > 0 ? ", Bullhorn +\(options.bullhornLatencyMilliseconds) ms" : ""
        for workers in [1, 2] {
            let result = try await measure(workers: workers)
            report.add("worker x\(workers): new pairs\(latency) (pairs/s)", ours: Double(pairs) / result.newSeconds, baseline: consume, unit: "msg/s")
            report.add("worker x\(workers): Bullhorn calls per 100 new pairs", ours: result.callsPerNewPair * 100, baseline: nil, unit: "calls")
            report.add("worker x\(workers): pairs already on campaign (pairs/s)", ours: Double(pairs) / result.existingSeconds, baseline: consume, unit: "msg/s")
            report.add(
                "worker x\(workers): the same vs thin C consuming pair messages", ours: Double(pairs) / result.existingSeconds,
                baseline: pairShaped["consume_msgs_per_s"], unit: "msg/s")
        }
    }

    private struct Measurement {
        let newSeconds: Double
        let existingSeconds: Double
        let callsPerNewPair: Double
    }

    private func measure(workers count: Int) async throws -> Measurement {
        let members = options.membersPerIntegration
        let seed = SimulatorSeed(
            candidates: integrations * members + 100, jobOrders: integrations,
            tearsheets: Array(repeating: .init(members: members, jobs: 1), count: integrations))
        let world = BullhornWorld(seed: seed, faults: SimulatorFaults(latency: .milliseconds(options.bullhornLatencyMilliseconds)))
        return try await BullhornSimulatorServer(world: world).run { base in
            let management = ManagementAPI()
            let vhost = try await management.createScratchVirtualHost()
            let databaseURL = try await TestServices.createDatabase("tsync_bench_worker")
            let result: Result<Measurement, any Error>
            do {
                result = .success(try await measure(
                    workers: count, world: world, simulatorBase: base, amqpURL: management.amqpURL(vhost: vhost), databaseURL: databaseURL))
            } catch {
                result = .failure(error)
            }
            await BenchEnvironment.delete(vhost, management)
            try? await TestServices.dropDatabase(databaseURL)
            return try result.get()
        }
    }

    private func measure(workers count: Int, world: BullhornWorld, simulatorBase: String, amqpURL: String, databaseURL: String) async throws -> Measurement {
        let setup = PostgresPool(connectionString: databaseURL, maxConnections: 2)
        defer { Task { await setup.close() } }
        try await setup.withConnection { try await SchemaMigrator().migrate($0) }
        let topology = try Topology.load(path: "topology.json")
        let publisher = try await AMQPConnection.connect(url: amqpURL)
        _ = try await TopologyApplier(definitions: topology.definitions).apply(
            on: publisher, management: RabbitMQManagement(url: URL(string: TestServices.managementURL)!),
            virtualHost: String(URLComponents(string: amqpURL)!.path.dropFirst()))
        let key = IntegrationSecrets.randomKey()
        let pairs = try await registerIntegrations(world: world, pool: setup, simulatorBase: simulatorBase, key: key)

        var quiet = Logger(label: "bench")
        quiet.logLevel = BenchmarkOptions.logLevel
        var pools: [PostgresPool] = []
        let workers = (0..<count).map { index in
            // What one `work` process has: its own pool, Bullhorn clients and broker connection.
            let pool = PostgresPool(connectionString: databaseURL, maxConnections: WorkerOptions.databaseConnections)
            pools.append(pool)
            return SessionWorker(
                workerID: "bench-\(index)", databaseURL: databaseURL, connectBroker: { try await AMQPConnection.connect(url: amqpURL) },
                processor: PairProcessor(pool: pool, clients: BullhornClients(pool: pool, keys: SealingKeys(current: key))),
                options: WorkerOptions(batchSize: options.batchSize), logger: quiet)
        }
        let measurement = try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { try await worker.run() } }
            defer { for worker in workers { worker.stop() } }

            let callsBefore = world.totalCalls
            let newSeconds = try await publishAndDrain(pairs, to: publisher, workers: workers, pool: setup, databaseURL: databaseURL)
            let callsPerNewPair = Double(world.totalCalls - callsBefore) / Double(pairs.count)
            let added = try await setup.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self)
            guard added == pairs.count else { throw BenchmarkFailure("\(added) of \(pairs.count) pairs added") }

            // Four times over (`--rounds`): this phase is fast, and a longer drain measures it
            // better.
            let again = Array(repeating: pairs, count: existingRounds).flatMap { $0 }
            let existingSeconds = try await publishAndDrain(again, to: publisher, workers: workers, pool: setup, databaseURL: databaseURL)
            return Measurement(newSeconds: newSeconds, existingSeconds: existingSeconds / Double(existingRounds), callsPerNewPair: callsPerNewPair)
        }
        await publisher.close()
        for pool in pools { await pool.close() }
        return measurement
    }

    /// One integration per tearsheet, each with one campaign on the tearsheet's job; returns
    /// every (campaign, candidate) pair as its message.
    private func registerIntegrations(world: BullhornWorld, pool: PostgresPool, simulatorBase: String, key: [UInt8]) async throws -> [PairMessage] {
        let account = SimulatedAuth.Account.standard
        var pairs: [PairMessage] = []
        for index in 0..<integrations {
            let id = "bench-\(index)"
            try await IntegrationStore(pool: pool).upsert(
                id: id, clientID: account.clientID, username: account.username,
                endpoints: .discovered(loginInfoURL: "\(simulatorBase)/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: SealingKeys(current: key),
                callsPerMinute: 600_000)
            let tearsheet = world.tearsheets[index]
            let job = world.jobOrderIDs[index]
            let campaign = Int64(index + 1)
            try await CampaignStore(pool: pool).upsert(id: campaign, integrationID: id, atsJobID: job)
            for member in tearsheet.members {
                pairs.append(PairMessage(integrationId: id, campaignId: campaign, atsCandidateId: member.candidateID, atsJobId: job, tearsheetId: tearsheet.id))
            }
        }
        return pairs
    }

    /// Publishes `pairs` to their sessions (as the publisher does) while the workers are held
    /// back, then returns the seconds from letting them go until they have acknowledged every
    /// one (accepting the sessions included).
    private func publishAndDrain(
        _ pairs: [PairMessage], to broker: AMQPConnection, workers: [SessionWorker], pool: PostgresPool, databaseURL: String
    ) async throws -> Double {
        let sessions = Set(pairs.map { SessionQueue(integrationID: $0.integrationId) })
        for session in sessions { try await session.declare(on: broker) }
        let publishes = pairs.map { pair in
            AMQPPublish(exchange: Topology.pairsExchange, routingKey: SessionQueue(integrationID: pair.integrationId).routingKey, message: pair.amqpMessage())
        }
        let acknowledgedBefore = workers.map(\.totals.acknowledged).reduce(0, +)
        let gate = try await PostgresConnection.connect(databaseURL)
        try await gate.executeScript(unsafeSQL: "BEGIN; LOCK TABLE campaigns IN ACCESS EXCLUSIVE MODE")
        let channel = try await broker.openChannel(confirms: true)
        let outcomes = try await channel.publish(publishes, window: options.window)
        guard outcomes.allSatisfy(\.isConfirmed) else { throw BenchmarkFailure("the broker did not take every pair") }
        try await channel.close()
        for session in sessions { try await SessionWorkStore(pool: pool).markPublished(session.integrationID) }
        let started = ContinuousClock.now
        // Marks the drain's start for a profiler started then (`perf record -p`).
        FileHandle.standardError.write(Data("bench: \(workers.count) worker(s) draining \(pairs.count) pairs\n".utf8))
        try await gate.executeScript(unsafeSQL: "COMMIT")
        await gate.close()
        try await until("workers acknowledge \(pairs.count) pairs") {
            workers.map(\.totals.acknowledged).reduce(0, +) - acknowledgedBefore >= pairs.count
        }
        return (ContinuousClock.now - started).timeInterval
    }

    /// Polls every 5 ms; gives up after 5 minutes.
    private func until(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(300)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BenchmarkFailure("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
