import AMQPClient
import ArgumentParser
import Dispatch
import Foundation
import Logging
import PostgresClient
import TearsheetSyncCore

struct WorkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work",
        abstract: "A worker: accepts sessions (integrations) with work and adds their pairs to campaigns.",
        discussion: "Runs until SIGTERM or SIGINT, then finishes and acknowledges its pairs in hand, releases its sessions and exits 0.")

    @OptionGroup var options: GlobalOptions

    @OptionGroup var metrics: MetricsOptions

    @Option(help: "Messages per batch at most.")
    var batch = 200

    @Option(help: "Unacknowledged messages per session at most (default: twice --batch; less for a small Bullhorn budget).")
    var prefetch: Int?

    @Option(help: "Sessions (integrations) this worker processes at once at most.")
    var maxSessions = 16

    @Option(help: "How long a JobSubmission whose creation had an unknown outcome (a timeout, a crash) is not created again: longer than Bullhorn may hold a write.")
    var uncertainWriteGrace = "3m"

    @Option(name: .customLong("topology"), help: "RabbitMQ definitions file (TSYNC_TOPOLOGY).")
    var topologyFile: String?

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard maxSessions > 0 else { throw ValidationError("--max-sessions must be positive") }
        guard DurationParser.parse(uncertainWriteGrace) != nil else { throw ValidationError("--uncertain-write-grace takes a duration such as 3m") }
    }

    func run() async throws {
        try await runCommand(options) { settings in
            let key = try settings.secretKey()
            // Read for its errors: a worker with a broken topology file should not start.
            _ = try Topology.load(path: topologyFile ?? settings.topologyPath())
            let databaseURL = try settings.databaseURL()
            let pool = PostgresPool(connectionString: databaseURL, maxConnections: 8, applicationName: "tearsheet-sync worker")
            let logger = Logger(label: "tearsheet-sync.worker")
            try await StartupConnections.check(pool, patience: StartupConnections.servicePatience, logger: logger)
            // A bad broker URL or password stops the process here, with its one-line message;
            // the worker then opens connections of its own.
            try await StartupConnections.broker(settings, patience: StartupConnections.servicePatience, logger: logger).close()
            let amqp = try settings.amqp()
            let workerID = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UInt16.random(in: 0...UInt16.max))"
            let worker = SessionWorker(
                workerID: workerID, databaseURL: databaseURL,
                connectBroker: { try await AMQPConnection.connect(amqp) },
                processor: PairProcessor(
                    pool: pool, clients: BullhornClients(pool: pool, secretKey: key), uncertainWriteGrace: DurationParser.parse(uncertainWriteGrace)!),
                options: WorkerOptions(batchSize: batch, prefetch: prefetch, maxSessions: maxSessions), logger: logger)
            let signals = StopSignals { worker.stop() }
            let endpoint = metrics.start { worker.isHealthy }
            try await worker.run()
            withExtendedLifetime(signals) {}
            await endpoint?.stop()
            await pool.close()
        }
    }
}
