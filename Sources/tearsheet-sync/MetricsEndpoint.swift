import Foundation
import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

/// `/metrics` (Prometheus text format) and `/healthz` for a long-running command, when it is
/// given `--metrics-port`. Bootstraps swift-metrics with the Prometheus registry.
final class MetricsEndpoint: Sendable {
    private let services: ServiceGroup
    private let task: Task<Void, any Error>

    init(address: String, port: Int, healthy: @escaping @Sendable () -> Bool) {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let router = Router()
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        router.get("/healthz") { _, _ in
            healthy() ? Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
                : Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "unhealthy\n")))
        }
        var logger = Logger(label: "tearsheet-sync.metrics")
        logger.logLevel = .warning
        let app = Application(router: router, configuration: .init(address: .hostname(address, port: port)), logger: logger)
        let services = ServiceGroup(configuration: .init(services: [app], logger: logger))
        self.services = services
        task = Task { try await services.run() }
    }

    func stop() async {
        await services.triggerGracefulShutdown()
        _ = try? await task.value
    }
}
