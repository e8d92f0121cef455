import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Logging
import PostgresClient
import Synchronization
import TearsheetSyncCore

/// `tearsheet-bench budget [--members 10000] [--integrations 20] [--calls-per-minute 1500]
/// [--bullhorn-latency-ms 250]`: how much of Bullhorn's budget the fleet spends, and that it
/// never spends more.
///
/// Each integration is a corporation with a simulator of its own, which answers every call
/// after the latency and, like Bullhorn, refuses (429) a call beyond the corporation's limit
/// in the trailing minute. A publisher pass and workers (each
/// what one `work` process holds, default settings) run at once in this process and share the
/// budget through PostgreSQL, as separate processes do.
/// 1. one integration, one tearsheet of `--members` new members: the time to add every pair
///    against the ideal (members ÷ budget), the calls a minute between 10 % and 90 % added
///    against the budget, the busiest minute, and the calls refused over the limit;
/// 2. `--integrations` integrations (each its own corporation and budget) at once, a tenth of
///    the members each, two workers (a worker holds 16 sessions): the same figures, fleet-wide.
struct BudgetBenchmark {
    let options: BenchmarkOptions

    func run(into report: inout BenchmarkReport) async throws {
        let budget = options.callsPerMinute
        print("budget suite: \(budget) calls a minute per integration, Bullhorn answering in \(options.bullhornLatencyMilliseconds) ms")
        for (integrations, members) in [(1, options.membersPerIntegration), (options.integrations, max(options.membersPerIntegration / 10, 1))] {
            let run = try await measure(integrations: integrations, members: members)
            let fleetBudget = Double(budget * integrations)
            let name = "budget x\(integrations) of \(members)"
            report.add("\(name): pairs added a minute", ours: run.pairsPerMinute, baseline: fleetBudget, unit: "pairs/min")
            report.add("\(name): calls a minute, 10-90 % added", ours: run.steadyCallsPerMinute, baseline: fleetBudget, unit: "calls/min")
            report.add("\(name): busiest minute of a corporation", ours: Double(run.busiestMinute), baseline: Double(budget), unit: "calls")
            report.add("\(name): calls refused over the limit", ours: Double(run.refused), baseline: nil, unit: "calls")
            report.add("\(name): time to add all (ideal: pairs/budget)", ours: run.seconds, baseline: Double(members) / Double(budget) * 60, unit: "s")
        }
    }

    struct Run {
        let seconds: Double
        let pairsPerMinute: Double
        let steadyCallsPerMinute: Double
        /// The most calls one corporation's Bullhorn took in any minute.
        let busiestMinute: Int
        let refused: Int
    }

    /// Each integration is a corporation of its own, with its own Bullhorn (a simulator world
    /// and server) that refuses calls over that corporation's limit: one shared world would
    /// show every integration every other's tearsheets, and each pass would read twenty
    /// corporations' members (a first pass reads the member additions of its overlap window)
    /// where a real one reads its own.
    private func measure(integrations: Int, members: Int) async throws -> Run {
        let faults = SimulatorFaults(latency: .milliseconds(options.bullhornLatencyMilliseconds), callsPerMinuteLimit: options.callsPerMinute)
        let worlds = (0..<integrations).map { index in
            BullhornWorld(
                seed: SimulatorSeed(seed: 42 + UInt64(index), candidates: members + 100, jobOrders: 1, tearsheets: [.init(members: members, jobs: 1)]),
                faults: faults)
        }
        return try await Self.withServers(for: worlds[...]) { bases in
            try await BenchEnvironment.with("tsync_bench_budget") { environment in
                try await measure(members: members, worlds: worlds, simulatorBases: bases, environment: environment)
            }
        }
    }

    /// Runs a simulator server for each world around `body`, which gets their base URLs.
    private static func withServers<T: Sendable>(
        for worlds: ArraySlice<BullhornWorld>, bases: [String] = [], _ body: @escaping @Sendable ([String]) async throws -> T
    ) async throws -> T {
        guard let world = worlds.first else { return try await body(bases) }
        return try await BullhornSimulatorServer(world: world).run { base in
            try await withServers(for: worlds.dropFirst(), bases: bases + [base], body)
        }
    }

    private func measure(members: Int, worlds: [BullhornWorld], simulatorBases: [String], environment: BenchEnvironment) async throws -> Run {
        let integrations = worlds.count
        let key = IntegrationSecrets.randomKey()
        let account = SimulatedAuth.Account.standard
        for (index, world) in worlds.enumerated() {
            let id = "budget-\(index)"
            try await IntegrationStore(pool: environment.pool).upsert(
                id: id, clientID: account.clientID, username: account.username,
                endpoints: .discovered(loginInfoURL: "\(simulatorBases[index])/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: SealingKeys(current: key),
                callsPerMinute: options.callsPerMinute)
            try await CampaignStore(pool: environment.pool).upsert(id: Int64(index + 1), integrationID: id, atsJobID: world.tearsheets[0].jobOrderIDs[0])
        }
        var quiet = Logger(label: "bench")
        quiet.logLevel = BenchmarkOptions.logLevel
        let workerCount = (integrations + WorkerOptions().maxSessions - 1) / WorkerOptions().maxSessions
        var pools: [PostgresPool] = []
        let workers = (0..<workerCount).map { index in
            let pool = PostgresPool(connectionString: environment.databaseURL, maxConnections: 6)
            pools.append(pool)
            return SessionWorker(
                workerID: "budget-\(index)", databaseURL: environment.databaseURL,
                connectBroker: { try await AMQPConnection.connect(url: environment.amqpURL) },
                processor: PairProcessor(pool: pool, clients: BullhornClients(pool: pool, keys: SealingKeys(current: key))), logger: quiet)
        }
        let publisherBroker = try await AMQPConnection.connect(url: environment.amqpURL)
        // As `publish` sizes it: a connection per pass for its lock, one per pass for the rest.
        let publisherOptions = PublisherOptions()
        let publisherPool = PostgresPool(connectionString: environment.databaseURL, maxConnections: publisherOptions.concurrency * 2 + 1)
        let publisher = TearsheetPublisher(
            pool: publisherPool, broker: publisherBroker, topology: environment.topology, keys: SealingKeys(current: key), options: publisherOptions, logger: quiet)
        let total = integrations * members
        let run = try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { try await worker.run() } }
            defer { for worker in workers { worker.stop() } }
            let started = ContinuousClock.now
            let publishFailure = Mutex<String?>(nil)
            group.addTask {
                let summaries = try await publisher.run()
                publishFailure.withLock { $0 = summaries.first(where: \.isFailure).map { "\($0)" } }
            }
            // Samples of (seconds, pairs added, calls so far), once a second.
            var samples: [(seconds: Double, added: Int, calls: Int)] = []
            let deadline = started + .seconds(max(120, 4 * total * 60 / (options.callsPerMinute * integrations)))
            while true {
                let added = try await environment.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self)
                samples.append(((ContinuousClock.now - started).timeInterval, added, worlds.reduce(0) { $0 + $1.totalCalls }))
                if added >= total { break }
                if let failure = publishFailure.withLock({ $0 }) { throw BenchmarkFailure("the publish pass failed: \(failure)") }
                guard ContinuousClock.now < deadline else { throw BenchmarkFailure("\(added) of \(total) pairs added by the deadline") }
                try await Task.sleep(for: .seconds(1))
            }
            FileHandle.standardError.write(Data("budget: \(integrations) x \(members) pairs added in \(Int(samples.last!.seconds)) s\n".utf8))
            let seconds = samples.last!.seconds
            let from = samples.first { $0.added >= total / 10 } ?? samples[0]
            let to = samples.first { $0.added >= total * 9 / 10 } ?? samples.last!
            let steady = to.seconds > from.seconds ? Double(to.calls - from.calls) / (to.seconds - from.seconds) * 60 : 0
            return Run(
                seconds: seconds, pairsPerMinute: Double(total) / seconds * 60, steadyCallsPerMinute: steady,
                busiestMinute: worlds.map(\.busiestMinute).max() ?? 0,
                refused: worlds.reduce(0) { $0 + ($1.faultsServed["429 over the limit"] ?? 0) })
        }
        await publisherBroker.close()
        await publisherPool.close()
        for pool in pools { await pool.close() }
        return run
    }
}

/// A scratch virtual host with the topology applied and a migrated scratch database, removed
/// afterwards.
struct BenchEnvironment: Sendable {
    let amqpURL: String
    let databaseURL: String
    let pool: PostgresPool
    let topology: Topology

    static func with<T: Sendable>(_ prefix: String, _ body: (BenchEnvironment) async throws -> T) async throws -> T {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let databaseURL = try await TestServices.createDatabase(prefix)
        let pool = PostgresPool(connectionString: databaseURL, maxConnections: 4)
        let result: Result<T, any Error>
        do {
            try await pool.withConnection { try await SchemaMigrator().migrate($0) }
            let topology = try Topology.load(path: "topology.json")
            let broker = try await AMQPConnection.connect(url: management.amqpURL(vhost: vhost))
            _ = try await TopologyApplier(definitions: topology.definitions).apply(
                on: broker, management: RabbitMQManagement(url: URL(string: TestServices.managementURL)!), virtualHost: vhost)
            await broker.close()
            result = .success(
                try await body(BenchEnvironment(amqpURL: management.amqpURL(vhost: vhost), databaseURL: databaseURL, pool: pool, topology: topology)))
        } catch {
            result = .failure(error)
        }
        await pool.close()
        await BenchEnvironment.delete(vhost, management)
        try? await TestServices.dropDatabase(databaseURL)
        return try result.get()
    }

    /// Deletes a scratch virtual host, saying so when it cannot: one left behind keeps its
    /// queues (the memory suite's are 200 quorum queues) on the broker, which then serves every
    /// later run more slowly.
    static func delete(_ vhost: String, _ management: ManagementAPI) async {
        do {
            try await management.deleteVirtualHost(vhost)
        } catch {
            FileHandle.standardError.write(Data("bench: could not delete virtual host \(vhost): \(error)\n".utf8))
        }
    }

    /// Publishes pairs confirmed to their (declared) session queues, then tells the workers
    /// which sessions have work, as the publisher does.
    static func publish(_ pairs: [PairMessage], on broker: AMQPConnection, pool: PostgresPool, window: Int) async throws {
        let channel = try await broker.openChannel(confirms: true)
        let outcomes = try await channel.publish(
            pairs.map {
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: SessionQueue(integrationID: $0.integrationId).routingKey, message: $0.amqpMessage())
            }, window: window)
        try await channel.close()
        guard outcomes.allSatisfy(\.isConfirmed) else { throw BenchmarkFailure("the broker did not take every pair") }
        let store = SessionWorkStore(pool: pool)
        for id in Set(pairs.map(\.integrationId)) { try await store.markPublished(id) }
    }
}
