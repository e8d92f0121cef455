import ArgumentParser
import Foundation

/// The bench's command line: a suite and the sizes it runs at. A bad value stops it with one
/// line naming the option and exit 2 (it used to fall back to the default without a word).
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

    enum Suite: String, ExpressibleByArgument, CaseIterable {
        case amqp, postgres, publisher, worker, memory, calls, peer, all, budget, sessions

        var suites: Set<String> {
            switch self {
            case .all: ["amqp", "postgres", "publisher", "worker", "memory", "calls", "peer"]
            default: [rawValue]
            }
        }
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

    @Option(help: "worker, peer, budget: members of each integration's tearsheet (2,500; budget 10,000).")
    var members: Int?

    @Option(name: .customLong("bullhorn-latency-ms"), help: "worker, budget: Bullhorn's answer time (0; budget 250).")
    var bullhornLatencyMilliseconds: Int?

    @Option(help: "worker: work --batch.")
    var batch = 200

    @Option(help: "worker: times the pairs already on their campaigns are drained (more: long enough to profile).")
    var rounds = 4

    @Option(help: "sessions, budget: integrations (2,000; budget 20).")
    var integrations: Int?

    @Option(help: "sessions: new pairs for each session under load.")
    var pairs = 5

    @Option(help: "calls: public tearsheets of the corporation.")
    var tearsheets = 770

    @Option(name: .customLong("calls-per-minute"), help: "budget: each integration's Bullhorn budget.")
    var callsPerMinute = 1_500

    @Option(help: "The thin-C baselines' directory (default: TSYNC_SHARED_DIR, else ../shared).")
    var shared: String?

    @Flag(name: .customLong("static"), help: "publisher, memory: measure tearsheet-sync built as the image builds it (--static-swift-stdlib).")
    var staticBinary = false

    func validate() throws {
        let sizes: [(String, Int?)] = [
            ("--messages", messages), ("--rows", rows), ("--window", window), ("--prefetch", prefetch), ("--members", members),
            ("--batch", batch), ("--rounds", rounds), ("--integrations", integrations), ("--pairs", pairs),
            ("--tearsheets", tearsheets), ("--calls-per-minute", callsPerMinute),
        ]
        for case let (name, value?) in sizes where value <= 0 { throw ValidationError("\(name) must be positive") }
        if let latency = bullhornLatencyMilliseconds, latency < 0 { throw ValidationError("--bullhorn-latency-ms must be 0 or more") }
        if let port = ProcessInfo.processInfo.environment["AMQP_PORT"], Int(port).map({ (1...65_535).contains($0) }) != true {
            throw ValidationError("AMQP_PORT must be a port number")
        }
    }

    func run() async throws {
        var options = BenchmarkOptions()
        let budget = suite == .budget
        options.suites = suite?.suites ?? ["amqp", "postgres", "publisher"]
        options.messages = messages
        options.rows = rows
        options.window = window
        options.prefetch = prefetch
        // The budget suite: Bullhorn's published limit and a realistic answer time; 20 integrations.
        options.membersPerIntegration = members ?? (budget ? 10_000 : 2_500)
        options.bullhornLatencyMilliseconds = bullhornLatencyMilliseconds ?? (budget ? 250 : 0)
        options.integrations = integrations ?? (budget ? 20 : 2_000)
        options.batchSize = batch
        options.existingRounds = rounds
        options.pairsPerSession = pairs
        options.tearsheets = tearsheets
        options.callsPerMinute = callsPerMinute
        options.staticBinary = staticBinary
        if let shared { options.sharedDirectory = shared }
        try await BenchmarkMain.run(options)
    }
}
