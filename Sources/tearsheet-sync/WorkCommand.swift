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
        abstract: "A worker: takes a fair share of the partitions and adds their pairs to campaigns.",
        discussion: "Runs until SIGTERM or SIGINT, then finishes and acknowledges its batches in hand, releases its partitions and exits 0.")

    @OptionGroup var options: GlobalOptions

    @OptionGroup var metrics: MetricsOptions

    @Option(help: "Messages per batch at most.")
    var batch = 200

    @Option(help: "Unacknowledged messages per partition consumer (default: twice --batch, at least --batch).")
    var prefetch: Int?

    @Option(name: .customLong("topology"), help: "RabbitMQ definitions file (TSYNC_TOPOLOGY).")
    var topologyFile: String?

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive") }
    }

    func run() async throws {
        try await runCommand(options) { settings in
            let key = try settings.secretKey()
            let topology = try Topology.load(path: topologyFile ?? settings.topologyPath())
            let databaseURL = try settings.databaseURL()
            let pool = PostgresPool(connectionString: databaseURL, maxConnections: 6, applicationName: "tearsheet-sync worker")
            try await StartupConnections.check(pool)
            // A bad broker URL or password stops the process here, with its one-line message;
            // the worker then opens connections of its own.
            try await StartupConnections.broker(settings).close()
            let amqp = try settings.amqp()
            let workerID = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):\(UInt16.random(in: 0...UInt16.max))"
            let worker = PartitionWorker(
                workerID: workerID, databaseURL: databaseURL,
                connectBroker: { try await AMQPConnection.connect(amqp) }, topology: topology,
                processor: PairProcessor(pool: pool, clients: BullhornClients(pool: pool, secretKey: key)),
                options: WorkerOptions(batchSize: batch, prefetch: prefetch), logger: Logger(label: "tearsheet-sync.worker"))
            let signals = StopSignals { worker.stop() }
            let endpoint = metrics.start { worker.isHealthy }
            try await worker.run()
            withExtendedLifetime(signals) {}
            await endpoint?.stop()
            await pool.close()
        }
    }
}
