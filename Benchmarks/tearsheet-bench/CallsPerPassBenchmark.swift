import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Logging
import PostgresClient
import TearsheetSyncCore

/// `tearsheet-bench calls [--tearsheets 770]`: the Bullhorn calls a publish pass makes, for a
/// corporation the size of the held-out one (about 770 public tearsheets, most small, a few of
/// thousands; jobs with campaigns on three in five), counted by the simulator:
/// 1. the first pass (no watermark: every tearsheet);
/// 2. a pass after 5 % of the tearsheets changed.
///
/// "before" is what the previous read strategy (one job-order association call per
/// tearsheet, one member query per tearsheet with campaigns, nothing embedded) makes for the
/// same tearsheets and the same pass, counted from them: the tearsheet and member-addition
/// pages are the same in both.
struct CallsPerPassBenchmark {
    let options: BenchmarkOptions
    let epoch: Int64 = 1_764_000_000_000

    func run(into report: inout BenchmarkReport) async throws {
        let specs = Self.tearsheets(count: options.tearsheets)
        let candidates = 20_000
        let world = BullhornWorld(seed: SimulatorSeed(candidates: candidates, jobOrders: 400, tearsheets: specs, epochMillis: epoch))
        // Tearsheets changed over time, not at one instant: the newest was modified a day after
        // the rest, so that a first pass's overlap window holds no old member additions.
        world.updateTearsheet(world.tearsheets[0].id, at: epoch + 86_400_000) { _ in }
        let counts = try await BullhornSimulatorServer(world: world).run { base in
            try await BenchEnvironment.with("tsync_bench_calls") { environment in
                try await passes(world: world, simulatorBase: base, environment: environment)
            }
        }
        let members = specs.map(\.members).reduce(0, +)
        print("calls suite: \(specs.count) tearsheets, \(members) members, \(world.jobOrderIDs.count) jobs (campaigns on \(counts.campaignJobs.count))")
        for (name, pass) in [("first pass", counts.first), ("pass after 5 % changed", counts.incremental)] {
            let before = previousStrategyCalls(pass, world: world, campaignJobs: counts.campaignJobs)
            report.add("calls: \(name), \(pass.tearsheetIDs.count) tearsheets", ours: Double(pass.calls), baseline: Double(before), unit: "calls")
            report.add("calls: \(name), per tearsheet (x100)", ours: Double(pass.calls) * 100 / Double(max(pass.tearsheetIDs.count, 1)),
                baseline: Double(before) * 100 / Double(max(pass.tearsheetIDs.count, 1)), unit: "calls")
        }
    }

    struct Pass {
        let calls: Int
        let byEndpoint: [String: Int]
        /// The tearsheets the pass read in full.
        let tearsheetIDs: [Int64]
    }

    /// Most tearsheets small, a few large: 40 % of 0–5 members, 45 % of 6–150, 10 % of
    /// 151–499, 5 % of 500–4,000; one to three jobs, one in fifty with seven.
    static func tearsheets(count: Int) -> [SimulatorSeed.TearsheetSpec] {
        (0..<count).map { index in
            let members: Int
            switch index % 20 {
            case 0..<8: members = index % 6
            case 8..<17: members = 6 + (index * 37) % 145
            case 17, 18: members = 151 + (index * 53) % 349
            default: members = 500 + (index * 131) % 3_500
            }
            return .init(members: members, jobs: index % 50 == 0 ? 7 : 1 + index % 3)
        }
    }

    private func passes(world: BullhornWorld, simulatorBase: String, environment: BenchEnvironment) async throws -> (first: Pass, incremental: Pass, campaignJobs: Set<Int64>) {
        let key = IntegrationSecrets.randomKey()
        let account = SimulatedAuth.Account.standard
        try await IntegrationStore(pool: environment.pool).upsert(
            id: "calls", clientID: account.clientID, username: account.username,
            endpoints: .discovered(loginInfoURL: "\(simulatorBase)/rest-services/loginInfo"),
            secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: SealingKeys(current: key), callsPerMinute: 600_000)
        var campaignJobs = Set<Int64>()
        for (index, job) in world.jobOrderIDs.enumerated() where index % 5 < 3 {
            try await CampaignStore(pool: environment.pool).upsert(id: Int64(index + 1), integrationID: "calls", atsJobID: job)
            campaignJobs.insert(job)
        }
        var quiet = Logger(label: "bench")
        quiet.logLevel = BenchmarkOptions.logLevel
        let broker = try await AMQPConnection.connect(url: environment.amqpURL)
        let pool = PostgresPool(connectionString: environment.databaseURL, maxConnections: 3)
        let publisher = TearsheetPublisher(pool: pool, broker: broker, topology: environment.topology, keys: SealingKeys(current: key), logger: quiet)
        func pass(reading tearsheetIDs: [Int64]) async throws -> Pass {
            world.resetCounters()
            let summaries = try await publisher.run()
            if let failed = summaries.first(where: \.isFailure) { throw BenchmarkFailure("publish failed: \(failed)") }
            // Calls to log in are not REST calls: the budget counts only the data API's.
            let counts = world.callCounts.filter { $0.key.contains("entity/") || $0.key.contains("query/") }
            return Pass(calls: counts.values.reduce(0, +), byEndpoint: counts, tearsheetIDs: tearsheetIDs)
        }
        let all = world.tearsheets.filter { !$0.isPrivate && !$0.isDeleted }.map(\.id)
        let first = try await pass(reading: all)
        // One in twenty, from every size class in turn (the classes repeat every 20).
        let changed = all.enumerated().filter { $0.offset % 20 == ($0.offset / 20) % 20 }.map(\.element)
        for id in changed { world.updateTearsheet(id, at: epoch + 2 * 86_400_000) { _ in } }
        let incremental = try await pass(reading: changed)
        await broker.close()
        await pool.close()
        for (name, pass) in [("first", first), ("incremental", incremental)] {
            print("calls suite, \(name) pass: " + pass.byEndpoint.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        return (first, incremental, campaignJobs)
    }

    /// What the previous strategy called, for the same pass: the same tearsheet and
    /// member-addition pages, plus a job-order association call per tearsheet read, plus a
    /// member query per page of each tearsheet with a campaign (at least one).
    private func previousStrategyCalls(_ pass: Pass, world: BullhornWorld, campaignJobs: Set<Int64>) -> Int {
        // The member-additions read is one page in both passes (no addition is new).
        var calls = (pass.byEndpoint["GET query/Tearsheet"] ?? 0) + 1
        for id in pass.tearsheetIDs {
            guard let tearsheet = world.tearsheet(id) else { continue }
            calls += max(1, (tearsheet.jobOrderIDs.count + 499) / 500)
            if tearsheet.jobOrderIDs.contains(where: campaignJobs.contains) {
                calls += max(1, (tearsheet.members.count + 499) / 500)
            }
        }
        return calls
    }
}
