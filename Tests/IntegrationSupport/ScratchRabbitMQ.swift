import Foundation

/// A RabbitMQ 3.10 node of a test's own (its own node name, data directory and ports on
/// 127.0.0.1, the management plugin on), so that the test can restart it for real without
/// touching the shared broker that the rest of the suite runs against.
public final class ScratchRabbitMQ: Sendable {
    public let nodeName: String
    public let amqpPort: Int
    public let managementPort: Int
    public let directory: String
    private let distributionPort: Int
    private static let binaries = "/usr/lib/rabbitmq/bin"

    /// The default virtual host, as guest (allowed from 127.0.0.1).
    public var amqpURL: String { "amqp://guest:guest@127.0.0.1:\(amqpPort)/%2F" }
    public var managementURL: String { "http://guest:guest@127.0.0.1:\(managementPort)" }

    private init(directory: String) throws {
        self.directory = directory
        nodeName = "\(TestServices.uniqueName("tsync-scratch"))@localhost"
        amqpPort = try ServerTool.freePort()
        managementPort = try ServerTool.freePort()
        distributionPort = try ServerTool.freePort()
    }

    private var environment: [String: String] {
        [
            "RABBITMQ_NODENAME": nodeName, "RABBITMQ_MNESIA_BASE": "\(directory)/mnesia", "RABBITMQ_LOG_BASE": "\(directory)/log",
            "RABBITMQ_PID_FILE": pidFile, "RABBITMQ_ENABLED_PLUGINS_FILE": "\(directory)/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": "\(directory)/rabbitmq", "RABBITMQ_DIST_PORT": "\(distributionPort)", "ERL_EPMD_ADDRESS": "127.0.0.1",
        ]
    }

    private var pidFile: String { "\(directory)/rabbitmq.pid" }

    /// Writes the node's configuration and starts it; returns once the management API answers.
    public static func start() async throws -> ScratchRabbitMQ {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("tsync-rabbitmq")).path
        try FileManager.default.createDirectory(atPath: "\(directory)/log", withIntermediateDirectories: true)
        let node = try ScratchRabbitMQ(directory: directory)
        try "[rabbitmq_management].\n".write(toFile: "\(directory)/enabled_plugins", atomically: true, encoding: .utf8)
        try """
            listeners.tcp.default = 127.0.0.1:\(node.amqpPort)
            management.tcp.ip = 127.0.0.1
            management.tcp.port = \(node.managementPort)
            collect_statistics_interval = 1000
            log.console = false
            log.file.level = warning

            """.write(toFile: "\(directory)/rabbitmq.conf", atomically: true, encoding: .utf8)
        try await node.boot()
        return node
    }

    /// Runs `body` with a node of its own, stopped and deleted afterwards whatever happens.
    public static func with<T>(_ body: (ScratchRabbitMQ) async throws -> T) async throws -> T {
        let node = try await start()
        do {
            let value = try await body(node)
            await node.stop()
            return value
        } catch {
            await node.stop()
            throw error
        }
    }

    /// What a broker restart does: every connection closes, the node is gone for a while,
    /// then it comes back with its durable queues and their messages.
    public func restart() async throws {
        try await halt()
        try await boot()
    }

    /// Stops the node and deletes its files.
    public func stop() async {
        try? await halt()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Stops the node and waits until its ports are closed. Not `rabbitmqctl stop PIDFILE`:
    /// it waits for the process to vanish, and here nothing reaps an orphan, so a stopped
    /// node stays a zombie that `kill -0` still finds (the wait never ended).
    private func halt() async throws {
        let wrapper = launchingShell()
        try await ctl(["stop"])
        for _ in 0..<300 {
            if !ServerTool.isListening(amqpPort), !ServerTool.isListening(distributionPort) {
                // The `rabbitmq-server` shell that started the VM stays behind otherwise (here,
                // waiting for ever on a child nothing reaps), holding the test's inherited files.
                if let wrapper { kill(wrapper, SIGKILL) }
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ScratchServerError(description: "\(nodeName) did not stop")
    }

    /// The `rabbitmq-server` script process whose child is the node's Erlang VM.
    private func launchingShell() -> pid_t? {
        guard let vm = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap({ pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }),
            let status = try? String(contentsOfFile: "/proc/\(vm)/status", encoding: .utf8),
            let parent = status.split(separator: "\n").first(where: { $0.hasPrefix("PPid:") }).flatMap({ pid_t($0.dropFirst(5).trimmingCharacters(in: .whitespaces)) }),
            let command = try? String(contentsOfFile: "/proc/\(parent)/cmdline", encoding: .utf8), command.contains("rabbitmq-server")
        else { return nil }
        return parent
    }

    private func boot() async throws {
        try? FileManager.default.removeItem(atPath: pidFile)
        try await ServerTool.run(["\(Self.binaries)/rabbitmq-server"], environment: environment, background: true)
        try await ctl(["wait", "--timeout", "120", pidFile])
        try await ctl(["await_startup", "--timeout", "120"])
        // The management listener comes up a moment after the broker itself.
        let management = ManagementAPI(url: managementURL)
        for _ in 0..<120 {
            if (try? await management.request("GET", "/api/overview")) != nil { return }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw ScratchServerError(description: "the management API of \(nodeName) did not answer")
    }

    private func ctl(_ arguments: [String]) async throws {
        try await ServerTool.run(["\(Self.binaries)/rabbitmqctl", "-n", nodeName] + arguments, environment: environment)
    }
}
