import AMQPClient
import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Logging
import PostgresClient

@testable import TearsheetSyncCore

/// A whole environment for one test: a fresh database (migrated), a scratch RabbitMQ virtual
/// host with the topology applied, and a running Bullhorn simulator with one integration
/// registered against it.
struct FleetFixture: Sendable {
    let world: BullhornWorld
    let simulatorBase: String
    let databaseURL: String
    let pool: PostgresPool
    let vhost: String
    let amqpURL: String
    let broker: AMQPConnection
    let topology: Topology
    let secretKey: [UInt8]
    let integrationID: String

    /// The fixture's sealing keys: `secretKey` alone.
    var keys: SealingKeys { SealingKeys(current: secretKey) }

    static let clientConfiguration = BullhornClientConfiguration(
        callsPerMinute: 600_000, maxConcurrentCalls: 4,
        retry: BullhornRetryPolicy(baseDelay: .milliseconds(1), maxDelay: .milliseconds(20), maxAttempts: 12))

    static func run<T: Sendable>(
        seed: SimulatorSeed, faults: SimulatorFaults = SimulatorFaults(), integrationID: String = "acme-staffing",
        databaseServer: String = TestServices.adminDatabaseURL, brokerServer: (amqp: String, management: String)? = nil,
        _ body: @Sendable (FleetFixture) async throws -> T
    ) async throws -> T {
        _ = SecretScanningLogHandler.installed
        let world = BullhornWorld(seed: seed, faults: faults)
        return try await BullhornSimulatorServer(world: world).run { base in
            let databaseURL = try await TestServices.createDatabase("tsync_fleet", adminURL: databaseServer)
            let pool = PostgresPool(connectionString: databaseURL, maxConnections: 8)
            let management = brokerServer.map { ManagementAPI(url: $0.management, amqpURL: $0.amqp) } ?? ManagementAPI()
            let vhost = try await management.createScratchVirtualHost()
            do {
                try await pool.withConnection { _ = try await SchemaMigrator().migrate($0) }
                let topology = try Topology.load(path: RepositoryFiles.topologyJSON)
                let amqpURL = management.amqpURL(vhost: vhost)
                let broker = try await AMQPConnection.connect(url: amqpURL)
                _ = try await TopologyApplier(definitions: topology.definitions).apply(
                    on: broker, management: RabbitMQManagement(url: URL(string: brokerServer?.management ?? TestServices.managementURL)!), virtualHost: vhost)
                let key = IntegrationSecrets.randomKey()
                SecretScanningLogHandler.register(Data(key).base64EncodedString())
                let account = SimulatedAuth.Account.standard
                try await IntegrationStore(pool: pool).upsert(
                    id: integrationID, clientID: account.clientID, username: account.username,
                    endpoints: .discovered(loginInfoURL: "\(base)/rest-services/loginInfo"),
                    secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: SealingKeys(current: key),
                    callsPerMinute: 600_000)
                let fixture = FleetFixture(
                    world: world, simulatorBase: base, databaseURL: databaseURL, pool: pool, vhost: vhost, amqpURL: amqpURL, broker: broker,
                    topology: topology, secretKey: key, integrationID: integrationID)
                let value = try await body(fixture)
                await fixture.tearDown(management)
                return value
            } catch {
                await pool.close()
                try? await TestServices.dropDatabase(databaseURL)
                try? await management.deleteVirtualHost(vhost)
                throw error
            }
        }
    }

    private func tearDown(_ management: ManagementAPI) async {
        await broker.close()
        await pool.close()
        try? await TestServices.dropDatabase(databaseURL)
        try? await management.deleteVirtualHost(vhost)
    }

    func publisher(options: PublisherOptions = PublisherOptions()) -> TearsheetPublisher {
        TearsheetPublisher(
            pool: pool, broker: broker, topology: topology, keys: keys, options: options,
            clientConfiguration: Self.clientConfiguration, logger: Self.quietLogger)
    }

    /// Tests read summaries; the fleet's own log lines would only clutter the output. They are
    /// all searched for secrets, and printed from `TSYNC_TEST_LOG_LEVEL` up.
    static var quietLogger: Logger {
        _ = SecretScanningLogHandler.installed
        return Logger(label: "test.fleet")
    }

    /// The fixture's settings as `tearsheet-sync` reads them from the environment.
    var commandEnvironment: [String: String] {
        [
            "TSYNC_DATABASE_URL": databaseURL, "TSYNC_AMQP_URL": amqpURL,
            "TSYNC_SECRET_KEY": Data(secretKey).base64EncodedString(), "TSYNC_LOG_LEVEL": "error",
        ]
    }

    /// Starts the built command against this fixture and returns it running.
    func launch(_ arguments: [String], standardOutput: Any? = nil) throws -> Process {
        let process = Process()
        process.executableURL = RepositoryFiles.commandBinary
        process.arguments = arguments
        process.currentDirectoryURL = RepositoryFiles.root
        process.environment = commandEnvironment
        if let standardOutput { process.standardOutput = standardOutput }
        try process.run()
        return process
    }

    func addCampaign(_ id: Int64, job: Int64, active: Bool = true) async throws {
        try await CampaignStore(pool: pool).upsert(id: id, integrationID: integrationID, atsJobID: job, active: active)
    }

    func watermark() async throws -> Date? {
        try await IntegrationStore(pool: pool).watermark(of: integrationID)
    }

    /// A message taken off a session queue, with where it was.
    struct Taken: Sendable {
        let queue: String
        let delivery: AMQPDelivery
        let pair: PairMessage
    }

    /// Takes (and acks) every message now in the session queues of these integrations (the
    /// fixture's own by default).
    func drainSessions(_ integrationIDs: [String]? = nil) async throws -> [Taken] {
        let channel = try await broker.openChannel()
        try await channel.setPrefetch(1000)
        var taken: [Taken] = []
        for partition in (integrationIDs ?? [integrationID]).map(SessionQueue.init) {
            try await partition.declare(on: channel)
            let count = try await channel.declareQueue(partition.queue, passive: true).messageCount
            guard count > 0 else { continue }
            let consumer = try await channel.consume(queue: partition.queue)
            var received = 0
            for try await delivery in consumer {
                taken.append(Taken(queue: partition.queue, delivery: delivery, pair: try PairMessage.decode(delivery.message)))
                received += 1
                // Ack as we go: the prefetch window would stall the consumer otherwise.
                if received % 250 == 0 || received == count { try await channel.ack(delivery.deliveryTag, multiple: true) }
                if received == count { break }
            }
            try await consumer.cancel()
        }
        try await channel.close()
        return taken
    }
}
