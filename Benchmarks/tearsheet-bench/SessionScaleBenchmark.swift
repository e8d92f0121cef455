import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Logging
import PostgresClient
import TearsheetSyncCore

/// `tearsheet-bench sessions [--integrations 2000]`: the session design at scale, on the
/// local RabbitMQ node (quorum queues are Raft groups: measured, not assumed).
///
/// 1. declares one session queue per integration (as `integration add` and the publisher do);
/// 2. the broker idle: its memory (node, and the session queues' processes) and CPU;
/// 3. under load: `--pairs` new pairs for every session, drained by two workers (each what
///    one `work` process holds), with broker CPU and memory while they run;
/// 4. an idle session's first message: how long it waits until a worker has settled it;
/// 5. takeover: a worker in a child process holds the sessions that have work (Bullhorn slow,
///    so they stay busy), is SIGKILLed, and the survivor's takeover of all of them is timed.
struct SessionScaleBenchmark {
    let options: BenchmarkOptions

    func run() async throws {
        let count = options.integrations
        let world = BullhornWorld(seed: SimulatorSeed(candidates: 200, jobOrders: 10))
        try await BullhornSimulatorServer(world: world).run { base in
            let management = ManagementAPI()
            let vhost = try await management.createScratchVirtualHost()
            let databaseURL = try await TestServices.createDatabase("tsync_bench_sessions")
            do {
                try await measure(count: count, world: world, simulatorBase: base, vhost: vhost, databaseURL: databaseURL)
            } catch {
                print("sessions benchmark failed: \(error)")
            }
            await BenchEnvironment.delete(vhost, management)
            try? await TestServices.dropDatabase(databaseURL)
        }
    }

    private func measure(count: Int, world: BullhornWorld, simulatorBase: String, vhost: String, databaseURL: String) async throws {
        let amqpURL = ManagementAPI().amqpURL(vhost: vhost)
        let pool = PostgresPool(connectionString: databaseURL, maxConnections: 4)
        defer { Task { await pool.close() } }
        try await pool.withConnection { try await SchemaMigrator().migrate($0) }
        let topology = try Topology.load(path: "topology.json")
        let broker = try await AMQPConnection.connect(url: amqpURL)
        let rabbit = RabbitMQManagement(url: URL(string: TestServices.managementURL)!)
        _ = try await TopologyApplier(definitions: topology.definitions).apply(on: broker, management: rabbit, virtualHost: vhost)
        let key = IntegrationSecrets.randomKey()
        let ids = (0..<count).map { String(format: "agency-%05d", $0) }
        let account = SimulatedAuth.Account.standard
        for (index, id) in ids.enumerated() {
            try await IntegrationStore(pool: pool).upsert(
                id: id, clientID: account.clientID, username: account.username,
                endpoints: .discovered(loginInfoURL: "\(simulatorBase)/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: SealingKeys(current: key), callsPerMinute: 600_000)
            try await CampaignStore(pool: pool).upsert(id: Int64(index + 1), integrationID: id, atsJobID: world.jobOrderIDs[index % world.jobOrderIDs.count])
        }

        // 1. Declaring the sessions.
        let memoryBefore = try await BrokerStats.nodeMemory(rabbit)
        var started = ContinuousClock.now
        let channel = try await broker.openChannel()
        for id in ids { try await SessionQueue(integrationID: id).declare(on: channel) }
        try await channel.close()
        let declareSeconds = (ContinuousClock.now - started).timeInterval
        print(String(format: "sessions: declared %d session queues in %.1f s (%.1f ms each)", count, declareSeconds, declareSeconds * 1000 / Double(count)))

        // 2. Idle.
        try await Task.sleep(for: .seconds(10))
        let idleCPU = try await BrokerStats.cpu(over: .seconds(10))
        let idleNode = try await BrokerStats.nodeMemory(rabbit)
        let idleQueues = try await BrokerStats.queueMemory(rabbit, vhost: vhost)
        print(String(
            format: "sessions: idle broker: node memory %.0f MB (%.0f MB before declaring), session queue processes %.0f MB, CPU %.1f %% of a core",
            idleNode / 1e6, memoryBefore / 1e6, idleQueues / 1e6, idleCPU * 100))

        // 3. Load: every session gets new pairs; two workers drain them.
        var quiet = Logger(label: "bench")
        quiet.logLevel = BenchmarkOptions.logLevel
        let workers = (0..<2).map { index in
            SessionWorker(
                workerID: "bench-\(index)", databaseURL: databaseURL, connectBroker: { try await AMQPConnection.connect(url: amqpURL) },
                processor: PairProcessor(pool: PostgresPool(connectionString: databaseURL, maxConnections: 8), clients: BullhornClients(pool: pool, keys: SealingKeys(current: key))),
                logger: quiet)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in workers { group.addTask { try await worker.run() } }
            defer { for worker in workers { worker.stop() } }
            let candidates = world.candidateIDs
            let pairs = ids.enumerated().flatMap { index, id in
                (0..<options.pairsPerSession).map { k in
                    PairMessage(
                        integrationId: id, campaignId: Int64(index + 1), atsCandidateId: candidates[(index + k * 7) % candidates.count],
                        atsJobId: world.jobOrderIDs[index % world.jobOrderIDs.count], tearsheetId: 1)
                }
            }
            let sampler = BrokerStats.Sampler(rabbit)
            started = ContinuousClock.now
            let cpuDuringLoad = Task { try await BrokerStats.cpu(over: .seconds(15)) }
            try await publish(pairs, on: broker, pool: pool)
            try await until("workers settle \(pairs.count) pairs", limit: .seconds(900)) { workers.map(\.totals.acknowledged).reduce(0, +) >= pairs.count }
            let loadSeconds = (ContinuousClock.now - started).timeInterval
            let peak = await sampler.stop()
            let loadCPU = try await cpuDuringLoad.value
            print(String(
                format: "sessions: load: %d new pairs in %d sessions settled by 2 workers in %.1f s (%.0f pairs/s, publish included); broker CPU %.0f %% of a core (first 15 s), node memory peak %.0f MB",
                pairs.count, count, loadSeconds, Double(pairs.count) / loadSeconds, loadCPU * 100, peak / 1e6))

            // 4. An idle session's first message.
            try await until("sessions drained", limit: .seconds(120)) { workers.allSatisfy(\.sessions.isEmpty) }
            var waits: [Double] = []
            for round in 0..<20 {
                let index = (round * 97) % count
                let before = workers.map(\.totals.acknowledged).reduce(0, +)
                let pair = pairs[index * options.pairsPerSession]  // already on its campaign: the wait is the session's, not Bullhorn's
                started = ContinuousClock.now
                try await publish([pair], on: broker, pool: pool)
                try await until("the first message is settled", limit: .seconds(60)) { workers.map(\.totals.acknowledged).reduce(0, +) > before }
                waits.append((ContinuousClock.now - started).timeInterval)
                try await until("the session is given back", limit: .seconds(60)) { workers.allSatisfy(\.sessions.isEmpty) }
            }
            waits.sort()
            print(String(
                format: "sessions: an idle session's first message settled after %.0f ms median, %.0f ms at most (20 sessions of %d; publish and confirm included)",
                waits[waits.count / 2] * 1000, waits.last! * 1000, count))
            for worker in workers { worker.stop() }
            try await group.waitForAll()
        }

        // 5. Takeover: a worker process holding busy sessions is SIGKILLed.
        world.setFaults(SimulatorFaults(latency: .milliseconds(100)))
        let busy = Array(ids.prefix(12))
        let child = Process()
        child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
        child.arguments = [Self.childCommand]
        child.environment = ProcessInfo.processInfo.environment.merging(
            ["TSYNC_BENCH_DATABASE_URL": databaseURL, "TSYNC_BENCH_AMQP_URL": amqpURL, "TSYNC_BENCH_KEY": Data(key).base64EncodedString()]) { _, new in new }
        try child.run()
        let candidates = world.candidateIDs
        let slow = busy.enumerated().flatMap { offset, id in
            (5..<185).map { k in
                PairMessage(
                    integrationId: id, campaignId: Int64(offset + 1), atsCandidateId: candidates[(offset + k * 7) % candidates.count],
                    atsJobId: world.jobOrderIDs[offset % world.jobOrderIDs.count], tearsheetId: 1)
            }
        }
        try await publish(slow, on: broker, pool: pool)
        let heldByChild = {
            try await pool.query("SELECT coalesce(sum(cardinality(sessions)), 0) FROM worker_heartbeats WHERE worker_id = 'bench-child'").scalar(Int.self)
        }
        let deadline = ContinuousClock.now + .seconds(60)
        while try await heldByChild() < busy.count {
            guard ContinuousClock.now < deadline else { throw BenchmarkFailure("the child worker did not take the sessions") }
            try await Task.sleep(for: .milliseconds(50))
        }
        let survivor = SessionWorker(
            workerID: "bench-survivor", databaseURL: databaseURL, connectBroker: { try await AMQPConnection.connect(url: amqpURL) },
            processor: PairProcessor(pool: PostgresPool(connectionString: databaseURL, maxConnections: 8), clients: BullhornClients(pool: pool, keys: SealingKeys(current: key))),
            logger: quiet)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await survivor.run() }
            try await Task.sleep(for: .seconds(1))  // the survivor is up and finds every busy session held
            guard child.isRunning, survivor.sessions.isEmpty else {
                throw BenchmarkFailure("before the kill: child running \(child.isRunning), survivor holds \(survivor.sessions.count) sessions")
            }
            let store = SessionWorkStore(pool: pool)
            started = ContinuousClock.now
            kill(child.processIdentifier, SIGKILL)
            let orphaned = Set(try await store.waiting(limit: 100).map(\.integrationID)).intersection(busy)
            let heldAtKill = Set(survivor.sessions).intersection(orphaned).count
            try await until("the survivor holds the killed worker's sessions", limit: .seconds(60)) { Set(survivor.sessions).isSuperset(of: orphaned) }
            let takeover = (ContinuousClock.now - started).timeInterval
            print("sessions: (takeover check: the survivor held \(heldAtKill) of them when the kill's orphans were listed)")
            print(String(
                format: "sessions: a SIGKILLed worker's %d busy sessions (of %d queues) all taken over by the survivor in %.2f s",
                orphaned.count, count, takeover))
            survivor.stop()
            try await group.waitForAll()
        }
        child.waitUntilExit()
        await broker.close()
    }

    static let childCommand = "session-worker"

    /// The takeover stage's victim: a worker in a process of its own, settings from the environment.
    static func runChildWorker() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let databaseURL = environment["TSYNC_BENCH_DATABASE_URL"], let amqpURL = environment["TSYNC_BENCH_AMQP_URL"],
            let key = environment["TSYNC_BENCH_KEY"].flatMap({ Data(base64Encoded: $0) })
        else { throw BenchmarkFailure("the child worker needs TSYNC_BENCH_DATABASE_URL, TSYNC_BENCH_AMQP_URL and TSYNC_BENCH_KEY") }
        var quiet = Logger(label: "bench-child")
        quiet.logLevel = BenchmarkOptions.logLevel
        let pool = PostgresPool(connectionString: databaseURL, maxConnections: 8)
        try await SessionWorker(
            workerID: "bench-child", databaseURL: databaseURL, connectBroker: { try await AMQPConnection.connect(url: amqpURL) },
            processor: PairProcessor(pool: pool, clients: BullhornClients(pool: pool, keys: SealingKeys(current: Array(key)))), logger: quiet
        ).run()
    }

    private func publish(_ pairs: [PairMessage], on broker: AMQPConnection, pool: PostgresPool) async throws {
        try await BenchEnvironment.publish(pairs, on: broker, pool: pool, window: options.window)
    }

    private func until(_ what: String, limit: Duration, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BenchmarkFailure("timed out waiting until \(what)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// The local broker's resources: memory from the management API, CPU from /proc (the node
/// runs on this machine in the local services).
enum BrokerStats {
    static func nodeMemory(_ rabbit: RabbitMQManagement) async throws -> Double {
        struct Node: Decodable { let mem_used: Double? }
        return try await rabbit.get("/api/nodes", as: [Node].self).compactMap(\.mem_used).reduce(0, +)
    }

    static func queueMemory(_ rabbit: RabbitMQManagement, vhost: String) async throws -> Double {
        struct Queue: Decodable { let memory: Double? }
        return try await rabbit.get("/api/queues/\(RabbitMQManagement.segment(vhost))?columns=memory", as: [Queue].self).compactMap(\.memory).reduce(0, +)
    }

    /// Cores the Erlang VM used over `duration` (1.0 = one core busy).
    static func cpu(over duration: Duration) async throws -> Double {
        guard let pid = beamPID() else { throw BenchmarkFailure("no beam.smp process: is RabbitMQ local?") }
        let before = ticks(pid)
        try await Task.sleep(for: duration)
        return Double(ticks(pid) - before) / Double(sysconf(Int32(_SC_CLK_TCK))) / duration.timeInterval
    }

    private static func beamPID() -> Int32? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        for entry in entries {
            guard let pid = Int32(entry), let command = try? String(contentsOfFile: "/proc/\(entry)/comm", encoding: .utf8) else { continue }
            if command.hasPrefix("beam") { return pid }
        }
        return nil
    }

    /// utime + stime of the process, in clock ticks.
    private static func ticks(_ pid: Int32) -> Int {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
    }

    /// Samples node memory every second until stopped; returns the peak.
    final class Sampler: Sendable {
        private let task: Task<Double, Never>

        init(_ rabbit: RabbitMQManagement) {
            task = Task {
                var peak = 0.0
                while !Task.isCancelled {
                    peak = max(peak, (try? await BrokerStats.nodeMemory(rabbit)) ?? 0)
                    try? await Task.sleep(for: .seconds(1))
                }
                return peak
            }
        }

        func stop() async -> Double {
            task.cancel()
            return await task.value
        }
    }
}
