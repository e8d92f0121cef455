import AMQPClient
import ArgumentParser
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

    @Option(help: "Unacknowledged messages per session at most (default: five times --batch; less for a small Bullhorn budget).")
    var prefetch: Int?

    @Option(help: "Sessions (integrations) this worker processes at once at most.")
    var maxSessions = 16

    @Option(help: "Unacknowledged messages this worker holds at most, shared among its sessions (each gets at least 10; at least 10 × --max-sessions).")
    var maxInHand = 20_000

    @Option(help: "How long a JobSubmission whose creation had an unknown outcome (a timeout, a crash) is not created again: longer than Bullhorn may hold a write.")
    var uncertainWriteGrace = DurationArgument(argument: "3m")!

    @OptionGroup var topology: TopologyOption

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
        guard maxSessions > 0 else { throw ValidationError("--max-sessions must be positive") }
        // Each session's window is at least 10, so a smaller total could not be kept to.
        guard maxInHand >= 10 * maxSessions else {
            throw ValidationError("--max-in-hand must be at least 10 × --max-sessions (\(10 * maxSessions))")
        }
    }

    func run() async throws {
        try await runCommand(options) { settings in
            let keys = try settings.sealingKeys()
            // Read for its errors: a worker with a broken topology file should not start.
            _ = try topology.load(settings)
            let databaseURL = try settings.databaseURL()
            let amqp = try settings.amqp()
            let pool = PostgresPool(connectionString: databaseURL, maxConnections: WorkerOptions.databaseConnections, applicationName: "tearsheet-sync worker")
            let logger = Logger(label: "tearsheet-sync.worker")
            let workerID = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UInt16.random(in: 0...UInt16.max))"
            let worker = SessionWorker(
                workerID: workerID, databaseURL: databaseURL,
                connectBroker: { try await AMQPConnection.connect(amqp) },
                processor: PairProcessor(
                    pool: pool, clients: BullhornClients(pool: pool, keys: keys), uncertainWriteGrace: uncertainWriteGrace.duration),
                options: WorkerOptions(batchSize: batch, prefetch: prefetch, maxSessions: maxSessions, maxInHand: maxInHand), logger: logger)
            try await closing(pool) {
                try await runServices(
                    WorkerService(worker: worker, pool: pool, settings: settings, logger: logger),
                    metrics: metrics.server { worker.isHealthy }, logger: logger)
            }
        }
    }
}
