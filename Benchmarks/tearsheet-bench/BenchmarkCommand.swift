import ArgumentParser
import Foundation

/// The bench's command line. A bad value stops it with one line naming the option and exit 2
/// (it used to fall back to the default without a word).
struct BenchmarkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tearsheet-bench",
        abstract: "Measures the fleet's paths next to thin-C baselines run on the same services, as ratios.",
        discussion: """
            Without a suite: amqp, postgres and publisher. all: every suite but budget and sessions, \
            which take minutes. budget runs 10,000 members, 20 integrations and Bullhorn at 250 ms \
            unless --members, --integrations or --bullhorn-latency-ms say otherwise. The broker is \
            AMQP_HOST:AMQP_PORT (127.0.0.1:5672), the database TSYNC_DATABASE_URL, the baselines \
            under TSYNC_SHARED_DIR (../shared); TSYNC_BENCH_LOG_LEVEL shows what the fleet logs.
            """)

    @OptionGroup var options: BenchmarkOptions

    func run() async throws {
        try await BenchmarkMain.run(options)
    }
}

/// A suite and the sizes it runs at, as parsed, and the services from the environment: what
/// every suite reads.
struct BenchmarkOptions: ParsableArguments {
    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case amqp, postgres, publisher, worker, memory, calls, peer, all, budget, sessions
    }

    @Argument(help: "The suite to run.")
    var suite: Suite?

    @Option(help: "amqp, postgres: messages published and consumed.")
    var messages = 100_000

    @Option(help: "postgres: rows written.")
    var rows = 200_000

    @Option(help: "amqp: publisher-confirm window.")
    var window = 1024

    @Option(help: "amqp: consumer prefetch.")
    var prefetch = 1000

    @Option(name: .customLong("members"), help: "worker, peer, budget: members of each integration's tearsheet (2,500; budget 10,000).")
    var members: Int?

    @Option(name: .customLong("bullhorn-latency-ms"), help: "worker, budget: Bullhorn's answer time (0; budget 250).")
    var bullhornLatency: Int?

    @Option(name: .customLong("batch"), help: "worker: work --batch.")
    var batchSize = 200

    @Option(name: .customLong("rounds"), help: "worker: times the pairs already on their campaigns are drained (more: long enough to profile).")
    var existingRounds = 4

    @Option(name: .customLong("integrations"), help: "sessions, budget: integrations (2,000; budget 20).")
    var integrationCount: Int?

    @Option(name: .customLong("pairs"), help: "sessions: new pairs for each session under load.")
    var pairsPerSession = 5

    @Option(help: "calls: public tearsheets of the corporation.")
    var tearsheets = 770

    @Option(name: .customLong("calls-per-minute"), help: "budget: each integration's Bullhorn budget.")
    var callsPerMinute = 1_500

    @Option(name: .customLong("shared"), help: "The thin-C baselines' directory (default: TSYNC_SHARED_DIR, else ../shared).")
    var shared: String?

    @Option(help: "Runs of the suites, each next to its own baselines; more than one prints each row's medians and the range of its ratios.")
    var runs = 1

    @Flag(name: .customLong("static"), help: "publisher, memory: measure tearsheet-sync built as the image builds it (--static-swift-stdlib).")
    var staticBinary = false

    func validate() throws {
        let sizes: [(String, Int?)] = [
            ("--messages", messages), ("--rows", rows), ("--window", window), ("--prefetch", prefetch), ("--members", members),
            ("--batch", batchSize), ("--rounds", existingRounds), ("--integrations", integrationCount), ("--pairs", pairsPerSession),
            ("--tearsheets", tearsheets), ("--calls-per-minute", callsPerMinute), ("--runs", runs),
        ]
        for case let (name, value?) in sizes where value <= 0 { throw ValidationError("\(name) must be positive") }
        if let bullhornLatency, bullhornLatency < 0 { throw ValidationError("--bullhorn-latency-ms must be 0 or more") }
        if let port = ProcessInfo.processInfo.environment["AMQP_PORT"], Int(port).map({ (1...65_535).contains($0) }) != true {
            throw ValidationError("AMQP_PORT must be a port number")
        }
    }

    var suites: Set<String> {
        switch suite {
        case nil: ["amqp", "postgres", "publisher"]
        case .all: ["amqp", "postgres", "publisher", "worker", "memory", "calls", "peer"]
        case let suite?: [suite.rawValue]
        }
    }

    // The budget suite: Bullhorn's published limit and a realistic answer time; 20 integrations.
    private var isBudget: Bool { suite == .budget }
    /// Worker suite: tearsheet size of each of its 8 integrations, and Bullhorn's answer time.
    var membersPerIntegration: Int { members ?? (isBudget ? 10_000 : 2_500) }
    var bullhornLatencyMilliseconds: Int { bullhornLatency ?? (isBudget ? 250 : 0) }
    /// Sessions suite: integrations (session queues); budget suite: integrations at once.
    var integrations: Int { integrationCount ?? (isBudget ? 20 : 2_000) }

    var amqpHost: String { ProcessInfo.processInfo.environment["AMQP_HOST"] ?? "127.0.0.1" }
    var amqpPort: Int { Int(ProcessInfo.processInfo.environment["AMQP_PORT"] ?? "") ?? 5672 }
    var databaseURL: String { ProcessInfo.processInfo.environment["TSYNC_DATABASE_URL"] ?? "postgresql://postgres@127.0.0.1:5432/postgres" }
    var sharedDirectory: String { shared ?? ProcessInfo.processInfo.environment["TSYNC_SHARED_DIR"] ?? "../shared" }
}
