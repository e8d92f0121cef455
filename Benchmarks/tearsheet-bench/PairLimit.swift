import AMQPClient
import Foundation
import IntegrationSupport
import TearsheetSyncCore

/// `Benchmarks/baseline/pair_limit.c`: raw-limit's thin librabbitmq client moving the messages
/// the contract asks for (a direct exchange, `mandatory`, six properties with two headers, the
/// pair's JSON) through a session queue, in a scratch virtual host with `topology.json` applied
/// (the queue is under the session policy, as ours are). Set beside raw-limit, it says what the
/// message's shape costs the broker; set beside our publish pass and dedup path, what our code
/// costs; set beside the Python peer, how far above the peer any client of this broker can be.
enum PairLimit {
    static let publishRow = "thin C, pair messages: publish (msg/s) vs raw-limit"
    static let consumeRow = "thin C, pair messages: consume (msg/s) vs raw-limit"

    /// Its figures (`publish_msgs_per_s`, `consume_msgs_per_s`) for `messages` messages, with
    /// the confirm window and prefetch raw-limit is given.
    static func run(messages: Int, options: BenchmarkOptions) async throws -> [String: Double] {
        let binary = try BaselineProcess.compile("pair_limit", libraries: "-lrabbitmq")
        defer { try? FileManager.default.removeItem(atPath: binary) }

        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let figures: [String: Double]
        do {
            let broker = try await AMQPConnection.connect(url: management.amqpURL(vhost: vhost))
            _ = try await TopologyApplier(definitions: try Topology.load(path: "topology.json").definitions).apply(
                on: broker, management: RabbitMQManagement(url: URL(string: TestServices.managementURL)!), virtualHost: vhost)
            await broker.close()
            let environment = ["AMQP_HOST": options.amqpHost, "AMQP_PORT": "\(options.amqpPort)", "AMQP_VHOST": vhost]
            let arguments = [Topology.pairsExchange, "pair-limit", "\(messages)"]
            figures = BaselineProcess.run(binary, ["publish"] + arguments + ["\(options.window)"], environment: environment)
                .merging(BaselineProcess.run(binary, ["consume"] + arguments + ["\(options.prefetch)"], environment: environment)) { $1 }
        } catch {
            await BenchEnvironment.delete(vhost, management)
            throw error
        }
        await BenchEnvironment.delete(vhost, management)  // its queue with it
        guard figures["publish_msgs_per_s"] != nil, figures["consume_msgs_per_s"] != nil else {
            throw BenchmarkFailure("Benchmarks/baseline/pair_limit.c printed no figures")
        }
        return figures
    }
}
