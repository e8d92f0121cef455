import AMQPClient
import Foundation
import Logging
import PostgresClient
import ServiceLifecycle
import Synchronization
import TearsheetSyncCore

/// `publish` as a service: one pass, or with `every` a pass every interval until a graceful
/// shutdown. A pass is never cut short: its watermark would stay put anyway, but finishing it
/// saves republishing its pairs on the next one.
final class PublishLoop: Service, Sendable {
    let every: Duration?
    let pool: PostgresPool
    let settings: Settings
    let makePublisher: @Sendable (AMQPConnection) -> TearsheetPublisher
    let integrationIDs: [String]
    let logger: Logger
    /// With JSON logs, everything the loop reports goes through the logger, as JSON (the
    /// publisher logs each pass's summary); otherwise a summary line a pass on standard
    /// output, for people and cron mail.
    let reportsAsLogs: Bool
    private let connected = Atomic<Bool>(false)
    private let lastPassSucceeded = Atomic<Bool>(false)

    init(
        every: Duration?, pool: PostgresPool, settings: Settings, integrationIDs: [String], logger: Logger, reportsAsLogs: Bool,
        makePublisher: @escaping @Sendable (AMQPConnection) -> TearsheetPublisher
    ) {
        self.reportsAsLogs = reportsAsLogs
        self.every = every
        self.pool = pool
        self.settings = settings
        self.integrationIDs = integrationIDs
        self.logger = logger
        self.makePublisher = makePublisher
    }

    /// For `/healthz/ready`: the database and broker were reached at start.
    var isReady: Bool { connected.load(ordering: .relaxed) }

    /// Whether the (last) pass published every integration: the exit code.
    var succeeded: Bool { lastPassSucceeded.load(ordering: .relaxed) }

    func run() async throws {
        // A looping publisher is a service: it waits for a database or broker that is not up yet.
        let patience = every == nil ? Duration.zero : StartupConnections.servicePatience
        // A pass starts on three connections: its lock's, its statements' and its Bullhorn budget's.
        guard var broker = try await connectUnlessStopped(pool, settings, patience: patience, databaseConnections: 3, logger: logger) else {
            return
        }
        connected.store(true, ordering: .relaxed)
        let progress = TerminalProgress()
        repeat {
            do {
                // A broker restart closes the connection: the next pass opens a new one.
                if !broker.isOpen { broker = try await AMQPConnection.connect(settings.amqp()) }
                let summaries = try await makePublisher(broker).run(integrationIDs: integrationIDs) { progress.show($0) }
                progress.clear()
                report(summaries)
                lastPassSucceeded.store(!summaries.contains { $0.isFailure }, ordering: .relaxed)
            } catch where every == nil {
                progress.clear()
                await broker.close()  // a one-shot pass's failure is the command's
                throw error
            } catch {
                // A database or broker outage fails this pass, not the loop.
                progress.clear()
                if !reportsAsLogs { print("pass failed: \(error)") }
                logger.error("publisher pass failed", metadata: ["error": "\(error)"])
                lastPassSucceeded.store(false, ordering: .relaxed)
            }
            // stdout is block-buffered when it is a pipe or a file: a looping publisher's
            // summaries must reach the log now, not when the buffer fills.
            fflush(nil)
            guard let every else { break }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: every) }
        } while !Task.isShuttingDownGracefully && !Task.isCancelled
        await broker.close()
    }

    private func report(_ summaries: [PassSummary]) {
        guard reportsAsLogs else {
            for summary in summaries { print(summary) }
            if summaries.isEmpty { print("no active integrations") }
            return
        }
        if summaries.isEmpty { logger.info("no active integrations") }
    }
}
