import ArgumentParser
import TearsheetSyncCore

struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Broker topology (exchanges, the session policy, the dead-letter queue).",
        subcommands: [Apply.self])

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declares topology.json on the broker; refuses when a queue exists with other arguments.",
            discussion: "The file's virtual host and TSYNC_AMQP_URL's must be the same (exit 2 otherwise).")

        @OptionGroup var options: GlobalOptions

        @Option(name: .customLong("file"), help: "RabbitMQ definitions file (TSYNC_TOPOLOGY, default topology.json).")
        var file: String?

        func run() async throws {
            try await runCommand(options) { settings in
                let path = file ?? settings.topologyPath()
                let topology = try Topology.load(path: path)
                let virtualHost = try settings.amqp().virtualHost
                try topology.checkVirtualHost(virtualHost)
                let connection = try await StartupConnections.broker(settings)
                let summary = try await TopologyApplier(definitions: topology.definitions).apply(
                    on: connection, management: RabbitMQManagement(url: try settings.managementURL()), virtualHost: virtualHost)
                await connection.close()
                print(
                    "declared \(summary.exchanges) exchanges, \(summary.queues) queues, \(summary.bindings) bindings and \(summary.policies) policies from \(path); session queues are declared per integration")
            }
        }
    }
}
