import Foundation

/// Three clustered RabbitMQ 3.10 nodes of a test's own, run by `deploy/local/cluster.sh` (the
/// script operators use to try the fleet against a cluster), in a temporary directory and on
/// ports of their own, stopped and deleted afterwards.
public final class ScratchRabbitMQCluster: Sendable {
    public let nodes = [1, 2, 3]
    private let script: String
    private let directory: String
    private let portBase: Int

    private init(script: String, directory: String, portBase: Int) {
        self.script = script
        self.directory = directory
        self.portBase = portBase
    }

    public func amqpPort(_ node: Int) -> Int { portBase + node }
    public func managementURL(_ node: Int) -> String { "http://guest:guest@127.0.0.1:\(portBase + 10_000 + node)" }
    public func nodeName(_ node: Int) -> String { "tsync-cluster-\(portBase)-\(node)@localhost" }

    /// Every node's URL in one `TSYNC_AMQP_URL` (the first that answers is used).
    public func amqpURL(vhost: String) -> String {
        nodes.map { "amqp://guest:guest@127.0.0.1:\(amqpPort($0))/\(vhost)" }.joined(separator: ",")
    }

    /// Starts a cluster (trying another place for its ports when one is taken) and runs `body`.
    public static func with<T>(script: String, _ body: (ScratchRabbitMQCluster) async throws -> T) async throws -> T {
        var lastError: (any Error)?
        for _ in 0..<3 {
            let cluster = ScratchRabbitMQCluster(
                script: script, directory: FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("tsync-cluster")).path,
                portBase: 6_000 + 10 * Int.random(in: 0..<90))
            do {
                try await cluster.run("start")
            } catch {
                lastError = error
                await cluster.stop()
                continue
            }
            do {
                let value = try await body(cluster)
                await cluster.stop()
                return value
            } catch {
                await cluster.stop()
                throw error
            }
        }
        throw lastError!
    }

    /// `rabbitmqctl stop_app` on the node: its RabbitMQ stops, its Erlang VM stays.
    public func stopApp(_ node: Int) async throws { try await run("stop-app", "\(node)") }
    public func startApp(_ node: Int) async throws { try await run("start-app", "\(node)") }
    /// SIGKILL of the node's Erlang VM.
    public func kill(_ node: Int) async throws { try await run("kill", "\(node)") }
    public func boot(_ node: Int) async throws { try await run("boot", "\(node)") }

    /// How many queues of `vhost` each node leads (asking the first node that answers).
    public func leaders(vhost: String) async throws -> [String: Int] {
        struct Queue: Decodable { let leader: String? }
        var lastError: (any Error)?
        for node in nodes {
            do {
                let body = try await ManagementAPI(url: managementURL(node)).request("GET", "/api/queues/\(vhost)?columns=name,leader").body
                let queues = try JSONDecoder().decode([Queue].self, from: Data(body))
                return queues.compactMap(\.leader).reduce(into: [:]) { $0[$1, default: 0] += 1 }
            } catch {
                lastError = error
            }
        }
        throw lastError!
    }

    private func stop() async {
        try? await run("stop")
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func run(_ words: String...) async throws {
        try await ServerTool.run(
            ["/bin/bash", script] + words,
            environment: ["TSYNC_CLUSTER_DIR": directory, "TSYNC_CLUSTER_PORT_BASE": "\(portBase)", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
    }
}
