import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Synchronization
import TearsheetSyncCore

/// One `tearsheet-sync publish` pass (the release binary, as cron runs it) over a 10,000-member
/// tearsheet whose job has 10 campaigns: 100,000 confirmed pairs, against the simulator, next
/// to raw-limit's confirmed-publish rate on the same broker and to the same client publishing
/// the pass's own messages (`PairLimit`). Reports the pass's peak RSS.
struct PublisherBenchmark {
    static let row = "publish pass, 10k members x 10 campaigns (pairs/s)"
    let options: BenchmarkOptions
    let members = 10_000
    let campaigns = 10

    func run(into report: inout BenchmarkReport) async throws {
        let binary = try PeakRSS.releaseBinary(static: options.staticBinary)
        let pairs = members * campaigns
        let baseline = try await RawLimit.run(messages: pairs, options: options)

        let world = BullhornWorld(seed: SimulatorSeed(candidates: members + 500, jobOrders: 2, tearsheets: [.init(members: members, jobs: 1)]))
        let measured = try await BullhornSimulatorServer(world: world).run { base in
            try await passOnce(binary: binary, world: world, simulatorBase: base)
        }
        let pairShaped = try await PairLimit.run(messages: pairs, options: options)
        let ours = Double(pairs) / measured.seconds
        report.add(Self.row, ours: ours, baseline: baseline["publish_msgs_per_s"], unit: "msg/s")
        report.add(PairLimit.publishRow, ours: pairShaped["publish_msgs_per_s"]!, baseline: baseline["publish_msgs_per_s"], unit: "msg/s")
        report.add("publish pass vs thin C publishing pair messages", ours: ours, baseline: pairShaped["publish_msgs_per_s"], unit: "msg/s")
        measured.memory.report("publish pass", into: &report)
    }

    private func passOnce(binary: String, world: BullhornWorld, simulatorBase: String) async throws -> (seconds: Double, memory: PeakRSS) {
        try await BenchEnvironment.with("tsync_bench") { environment in
            try await passOnce(binary: binary, world: world, simulatorBase: simulatorBase, environment: environment)
        }
    }

    private func passOnce(binary: String, world: BullhornWorld, simulatorBase: String, environment: BenchEnvironment) async throws -> (seconds: Double, memory: PeakRSS) {
        let pool = environment.pool
        let key = IntegrationSecrets.randomKey()
        let account = SimulatedAuth.Account.standard
        try await IntegrationStore(pool: pool).upsert(
            id: "bench", clientID: account.clientID, username: account.username,
            endpoints: .discovered(loginInfoURL: "\(simulatorBase)/rest-services/loginInfo"),
            secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: SealingKeys(current: key), callsPerMinute: 6_000)
        let job = world.tearsheets[0].jobOrderIDs[0]
        for campaign in 1...Int64(campaigns) {
            try await CampaignStore(pool: pool).upsert(id: campaign, integrationID: "bench", atsJobID: job)
        }

        let process = BenchmarkOptions.childProcess(binary, ["publish", "--integration", "bench"])
        process.environment = BenchmarkOptions.childEnvironment([
            "TSYNC_DATABASE_URL": environment.databaseURL, "TSYNC_AMQP_URL": environment.amqpURL,
            "TSYNC_SECRET_KEY": Data(key).base64EncodedString(),
        ])
        // The end is stamped when the process exits, not when the sampling loop next looks
        // (every 20 ms: about 1 % of a two-second pass).
        let ended = ExitStamp()
        process.terminationHandler = { _ in ended.stamp() }
        let started = ContinuousClock.now
        try process.run()
        // VmHWM is the process's own peak: read it until the process is gone.
        var memory = PeakRSS()
        while process.isRunning {
            memory.sample(process.processIdentifier)
            try await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        let seconds = ((ended.instant ?? .now) - started).timeInterval
        guard process.terminationStatus == 0 else { throw BenchmarkFailure("publish exited \(process.terminationStatus)") }
        return (seconds, memory)
    }
}

/// When a child process exited, as its termination handler saw it.
final class ExitStamp: Sendable {
    private let stamped = Mutex<ContinuousClock.Instant?>(nil)

    func stamp() { stamped.withLock { $0 = .now } }

    var instant: ContinuousClock.Instant? { stamped.withLock { $0 } }
}
