import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import TearsheetSyncCore

/// `/metrics` (Prometheus text format) and the two probes of a long-running command given
/// `--metrics-port`, as one of the services of its group.
///
/// The probes answer different questions, so that an orchestrator acts on each correctly:
/// *live* is "the process still serves" (restart it if not); *ready* is "it can do its work
/// now" (a worker whose broker or database is away is not ready, but restarting it would
/// only lose the pairs it holds and its place in the fleet).
struct MetricsServer: Service {
    enum Path {
        static let metrics = "/metrics"
        static let live = "/healthz/live"
        static let ready = "/healthz/ready"
        /// Kept for the systemd units and scripts written against the first release.
        static let readyAlias = "/healthz"
    }

    let address: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let isReady: @Sendable () -> Bool

    func run() async throws {
        let router = Router()
        let registry = registry
        let process = ProcessMetrics()
        router.get(RouterPath(Path.metrics)) { _, _ in
            process.update()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get(RouterPath(Path.live)) { _, _ in Self.answer(true) }
        for path in [Path.ready, Path.readyAlias] {
            router.get(RouterPath(path)) { [isReady] _, _ in Self.answer(isReady()) }
        }
        var logger = Logger(label: "tearsheet-sync.metrics")
        logger.logLevel = .warning
        let listening = Atomic<Bool>(false)
        let app = Application(
            router: router, configuration: .init(address: .hostname(address, port: port)),
            onServerRunning: { _ in listening.store(true, ordering: .relaxed) }, logger: logger)
        do {
            try await app.run()
        } catch where !listening.load(ordering: .relaxed) {
            // A port taken or not ours to bind is a setting to fix: exit 2 with its name.
            throw ConfigurationError(setting: "--metrics-port", "cannot listen on \(address):\(port): \(error)")
        }
    }

    private static func answer(_ ok: Bool) -> Response {
        ok ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
            : Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "not ready\n")))
    }
}
