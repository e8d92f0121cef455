import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import TearsheetSyncCore

/// A `tearsheet-sync work --max-sessions 200` process (the release binary) given 200 sessions
/// with new pairs at once, Bullhorn answering in 250 ms: every session gets its Bullhorn
/// client, budget and channel. Reports its peak RSS and the most sessions it held at once.
struct WorkerMemoryBenchmark {
    let options: BenchmarkOptions
    let sessions = 200
    let pairsPerSession = 40

    func run(into report: inout BenchmarkReport) async throws {
        let binary = try PeakRSS.releaseBinary(static: options.staticBinary)
        let world = BullhornWorld(
            seed: SimulatorSeed(candidates: pairsPerSession * 10, jobOrders: 10), faults: SimulatorFaults(latency: .milliseconds(250)))
        let (memory, mostHeld) = try await BullhornSimulatorServer(world: world).run { base in
            try await BenchEnvironment.with("tsync_bench_memory") { environment in
                try await measure(binary: binary, world: world, simulatorBase: base, environment: environment)
            }
        }
        memory.report("work, \(mostHeld) sessions at once", into: &report)
    }

    private func measure(binary: String, world: BullhornWorld, simulatorBase: String, environment: BenchEnvironment) async throws -> (PeakRSS, Int) {
        let key = IntegrationSecrets.randomKey()
        let account = SimulatedAuth.Account.standard
        var pairs: [PairMessage] = []
        let candidates = world.candidateIDs
        for index in 0..<sessions {
            let id = String(format: "memory-%03d", index)
            try await IntegrationStore(pool: environment.pool).upsert(
                id: id, clientID: account.clientID, username: account.username,
                endpoints: .discovered(loginInfoURL: "\(simulatorBase)/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: SealingKeys(current: key), callsPerMinute: 1_500)
            let job = world.jobOrderIDs[index % world.jobOrderIDs.count]
            try await CampaignStore(pool: environment.pool).upsert(id: Int64(index + 1), integrationID: id, atsJobID: job)
            for k in 0..<pairsPerSession {
                pairs.append(PairMessage(
                    integrationId: id, campaignId: Int64(index + 1), atsCandidateId: candidates[(index * 7 + k) % candidates.count], atsJobId: job,
                    tearsheetId: 1))
            }
        }
        let broker = try await AMQPConnection.connect(url: environment.amqpURL)
        for id in Set(pairs.map(\.integrationId)) { try await SessionQueue(integrationID: id).declare(on: broker) }
        try await BenchEnvironment.publish(pairs, on: broker, pool: environment.pool, window: options.window)
        await broker.close()

        // TSYNC_BENCH_WRAPPER=/usr/bin/heaptrack profiles the worker's heap (the figures are then the wrapper's).
        let process = BenchmarkOptions.childProcess(
            binary, ["work", "--max-sessions", "\(sessions)", "--metrics-port", "0", "--metrics-address", "127.0.0.1"])
        process.environment = BenchmarkOptions.childEnvironment([
            "TSYNC_DATABASE_URL": environment.databaseURL, "TSYNC_AMQP_URL": environment.amqpURL,
            "TSYNC_SECRET_KEY": Data(key).base64EncodedString(),
        ])
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        var memory = PeakRSS()
        var mostHeld = 0
        let deadline = ContinuousClock.now + .seconds(600)
        while true {
            memory.sample(process.processIdentifier)
            let held = try await environment.pool.query("SELECT coalesce(max(cardinality(sessions)), 0) FROM worker_heartbeats").scalar(Int.self)
            mostHeld = max(mostHeld, held)
            let added = try await environment.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self)
            if added >= pairs.count { break }
            guard process.isRunning else { throw BenchmarkFailure("work exited \(process.terminationStatus)") }
            guard ContinuousClock.now < deadline else { throw BenchmarkFailure("\(added) of \(pairs.count) pairs added by the deadline") }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.terminate()
        while process.isRunning {
            memory.sample(process.processIdentifier)
            try await Task.sleep(for: .milliseconds(20))
        }
        return (memory, mostHeld)
    }
}
