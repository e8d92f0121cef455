import AMQPClient
import ArgumentParser
import BullhornSimulator
import Foundation
import Logging
import PostgresClient
import TearsheetSyncCore

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "The whole fleet on this machine against the built-in Bullhorn simulator.",
        discussion: """
            Recreates the database tsync_demo next to TSYNC_DATABASE_URL and the queues of the virtual host tsync-demo \
            on the broker (refusing either if the demo did not make it), starts a seeded simulator, registers three integrations with \
            campaigns, runs one publish pass and two workers until the queues drain, and prints what happened.
            """)

    @OptionGroup var options: GlobalOptions

    @Option(help: "Seed of the simulated Bullhorn.")
    var seed: UInt64 = 42

    func run() async throws {
        try await runCommand(options) { settings in
            let started = ContinuousClock.now
            let quiet: Logger = {
                var logger = Logger(label: "tearsheet-sync.demo")
                logger.logLevel = .error
                return logger
            }()
            let topology = try Topology.load(path: settings.topologyPath())
            let management = RabbitMQManagement(url: try settings.managementURL())
            let amqp = try settings.amqp().inVirtualHost(DemoVirtualHost.name)
            try await DemoVirtualHost.claim(management: management, user: amqp.username)
            let databaseURL = try await DemoDatabase.recreate(from: try settings.databaseURL())
            let pool = PostgresPool(connectionString: databaseURL, maxConnections: 12)
            try await pool.withConnection { try await SchemaMigrator().migrate($0) }
            let broker = try await AMQPConnection.connect(amqp)
            _ = try await TopologyApplier(definitions: topology.definitions).apply(
                on: broker, management: management, virtualHost: amqp.virtualHost)
            for integrationID in DemoData.integrationIDs { try await SessionQueue(integrationID: integrationID).declare(on: broker) }
            let purge = try await broker.openChannel()
            for queue in DemoData.integrationIDs.map(SessionQueue.queueName) + [Topology.deadLetterQueue] { try await purge.purgeQueue(queue) }
            try await purge.close()

            let world = BullhornWorld(seed: .demo(seed: seed))
            let keys = SealingKeys(current: IntegrationSecrets.randomKey())
            try await BullhornSimulatorServer(world: world).run { base in
                print("Bullhorn simulator on \(base): \(world.tearsheets.count) tearsheets, \(world.candidateIDs.count) candidates")
                let campaigns = try await DemoData.register(world: world, simulatorBase: base, pool: pool, keys: keys)
                print("registered 3 integrations and \(campaigns) campaigns")

                let publisher = TearsheetPublisher(pool: pool, broker: broker, topology: topology, keys: keys, logger: quiet)
                let summaries = try await publisher.run()
                for summary in summaries { print("publish  \(summary)") }
                let published = summaries.map(\.pairsPublished).reduce(0, +)

                let clients = BullhornClients(pool: pool, keys: keys)
                let workers = (1...2).map { index in
                    SessionWorker(
                        workerID: "demo-worker-\(index)", databaseURL: databaseURL, connectBroker: { try await AMQPConnection.connect(amqp) },
                        processor: PairProcessor(pool: pool, clients: clients), logger: quiet)
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in workers { group.addTask { try await worker.run() } }
                    try await DemoProgress.waitUntilDrained(published: published, pool: pool, broker: broker, workers: workers)
                    for worker in workers { worker.stop() }
                    try await group.waitForAll()
                }
                try await DemoProgress.finalTable(pool: pool, broker: broker, world: world, published: published, elapsed: ContinuousClock.now - started)
            }
            await broker.close()
            await pool.close()
        }
    }
}
