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
    var every: String?

    @Flag(help: "Ignore the watermark and reconcile every tearsheet.")
    var full = false

    @Option(help: "Re-read this much before the watermark (clock skew margin).")
    var overlap = "5m"

    @Option(help: "Integrations processed at once.")
    var concurrency = 4

    @Option(name: .customLong("topology"), help: "RabbitMQ definitions file (TSYNC_TOPOLOGY).")
    var topologyFile: String?

    func validate() throws {
        if let every, DurationParser.parse(every) == nil || DurationParser.parse(every) == .zero {
            throw ValidationError("--every takes a duration such as 30s, 5m or 1h")
        }
        guard DurationParser.parse(overlap) != nil else { throw ValidationError("--overlap takes a duration such as 5m") }
        guard concurrency > 0 else { throw ValidationError("--concurrency must be positive") }
    }

    func run() async throws {
        try await runCommand(options) { settings in
            let key = try settings.secretKey()
            let topology = try Topology.load(path: topologyFile ?? settings.topologyPath())
            let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: concurrency * 2 + 1)
            let logger = Logger(label: "tearsheet-sync.publisher")
            // A looping publisher is a service: it waits for a database or broker that is not up yet.
            let patience = every == nil ? Duration.zero : StartupConnections.servicePatience
            try await StartupConnections.check(pool, patience: patience, logger: logger)
            var broker = try await StartupConnections.broker(settings, patience: patience, logger: logger)
            let options = PublisherOptions(overlap: DurationParser.parse(overlap)!, full: full, concurrency: concurrency)
            let progress = TerminalProgress()
            let endpoint = metrics.start()
            // A pass is never cut short: its watermark would stay put anyway, but finishing
            // it saves republishing its pairs on the next one.
            let stop = StopFlag()
            let signals = every == nil ? nil : StopSignals { stop.set() }
            var allSucceeded = true
            repeat {
                do {
                    // A broker restart closes the connection: the next pass opens a new one.
                    if !broker.isOpen { broker = try await AMQPConnection.connect(settings.amqp()) }
                    let publisher = TearsheetPublisher(pool: pool, broker: broker, topology: topology, secretKey: key, options: options)
                    let summaries = try await publisher.run(integrationIDs: integrations) { progress.show($0) }
                    progress.clear()
                    for summary in summaries { print(summary) }
                    if summaries.isEmpty { print("no active integrations") }
                    allSucceeded = !summaries.contains { $0.isFailure }
                } catch where every != nil {
                    // A database or broker outage fails this pass, not the loop.
                    progress.clear()
                    print("pass failed: \(error)")
                    logger.error("publisher pass failed", metadata: ["error": "\(error)"])
                    allSucceeded = false
                }
                // stdout is block-buffered when it is a pipe or a file: a looping publisher's
                // summaries must reach the log now, not when the buffer fills.
                fflush(nil)
                if let every { await stop.sleep(for: DurationParser.parse(every)!) }
            } while every != nil && !stop.isSet
            withExtendedLifetime(signals) {}
            await endpoint?.stop()
            await broker.close()
            await pool.close()
            if !allSucceeded { throw ExitCode(1) }
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
