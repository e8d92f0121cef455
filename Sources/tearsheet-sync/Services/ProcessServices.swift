import Logging
import PostgresClient
import ServiceLifecycle

/// Runs a long-running command as one `ServiceGroup`: SIGTERM and SIGINT shut it down
/// gracefully (also as PID 1 in a container: the group installs handlers, and the kernel
/// delivers to PID 1 only the signals that have one); what has not ended 90 s after is
/// cancelled (swift-service-lifecycle refuses one signal for both, so a second SIGTERM cannot be
/// the escalation; 90 s is inside the workers' 120 s grace period in Kubernetes and systemd).
/// The command's own service is shut down first and the metrics server last, so that the final
/// scrape still sees the drained state; the command's service ending by itself ends the group
/// the same way. Without `handlingSignals` (a one-shot command), signals keep their default.
func runServices(_ main: some Service, metrics: MetricsServer?, handlingSignals: Bool = true, logger: Logger) async throws {
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let metrics { services.append(.init(service: metrics)) }
    services.append(.init(service: main, successTerminationBehavior: .gracefullyShutdownGroup))
    var configuration = ServiceGroupConfiguration(services: services, logger: logger)
    if handlingSignals {
        configuration.gracefulShutdownSignals = [.sigterm, .sigint]
    }
    configuration.maximumGracefulShutdownDuration = .seconds(90)
    try await ServiceGroup(configuration: configuration).run()
}

/// Runs `body`, then closes the command's pool whether it succeeded or not.
func closing<T>(_ pool: PostgresPool, _ body: () async throws -> T) async throws -> T {
    do {
        let value = try await body()
        await pool.close()
        return value
    } catch {
        await pool.close()
        throw error
    }
}
