import AMQPClient
import ArgumentParser
import Foundation
import Logging
import PostgresClient
import TearsheetSyncCore

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publishes one message per (campaign, candidate) pair of every tearsheet changed since each integration's watermark.",
        discussion: """
            One pass and exit (as cron runs it), or --every to loop; a looping publisher stops on SIGTERM or SIGINT after \
            the pass in progress. Exit 0 only when every integration's (last) pass succeeded.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var metrics: MetricsOptions

    @Option(name: .customLong("integration"), help: "Only this integration (repeatable).")
    var integrations: [String] = []

    @Option(help: "Loop: run a pass every DURATION (e.g. 5m).")
    var every: DurationArgument?

    @Flag(help: "Ignore the watermark and reconcile every tearsheet.")
    var full = false

    @Option(help: "Re-read this much before the watermark (clock skew margin).")
    var overlap = DurationArgument(argument: "5m")!

    @Option(help: "Integrations processed at once.")
    var concurrency = 4

    @OptionGroup var topology: TopologyOption

    func validate() throws {
        if let every, every.duration == .zero { throw ValidationError("--every takes a duration such as 30s, 5m or 1h") }
        guard concurrency > 0 else { throw ValidationError("--concurrency must be positive") }
    }

    func run() async throws {
        try await runCommand(options) { settings in
            let keys = try settings.sealingKeys()
            let topology = try self.topology.load(settings)
            let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: concurrency * 2 + 1)
            _ = try settings.amqp()
            let options = PublisherOptions(overlap: overlap.duration, full: full, concurrency: concurrency)
            let loop = PublishLoop(
                every: every?.duration, pool: pool, settings: settings, integrationIDs: integrations,
                logger: Logger(label: "tearsheet-sync.publisher"), reportsAsLogs: try settings.logFormat() == .json
            ) { broker in
                TearsheetPublisher(pool: pool, broker: broker, topology: topology, keys: keys, options: options)
            }
            try await closing(pool) {
                try await runServices(loop, metrics: metrics.server { loop.isReady }, handlingSignals: every != nil, logger: loop.logger)
            }
            if !loop.succeeded { throw ExitCode(1) }
        }
    }
}

/// A self-overwriting progress line on stderr, only when stderr is a terminal.
final class TerminalProgress: Sendable {
    private let enabled = isatty(STDERR_FILENO) == 1

    func show(_ summary: PassSummary) {
        guard enabled else { return }
        let line = "\(summary.integrationID): \(summary.tearsheetsScanned) tearsheets, \(summary.pairsFound) pairs, \(summary.pairsAlreadyOnCampaign) skipped, \(summary.pairsPublished) published"
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
    }

    func clear() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
