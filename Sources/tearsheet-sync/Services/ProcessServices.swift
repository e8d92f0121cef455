import AMQPClient
import Logging
import PostgresClient
import ServiceLifecycle
import TearsheetSyncCore

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

/// Waits for a service's database and broker (`patience`: it may be starting beside them) and
/// returns the broker connection; nil when the group stopped meanwhile (a signal, or another of
/// its services failing, such as a metrics port that cannot be had): there is then nothing to
/// do and nothing to hand back.
func connectUnlessStopped(
    _ pool: PostgresPool, _ settings: Settings, patience: Duration, databaseConnections: Int = 1, logger: Logger
) async throws -> AMQPConnection? {
    let broker: AMQPConnection
    do {
        broker = try await cancelWhenGracefulShutdown {
            // Both at once: a one-shot `publish` spends its start waiting for handshakes (about
            // 10 ms for the database's TLS, a few for the broker's), and each was waiting for
            // the other. A bad database setting is still the one named when both are bad; a
            // service waiting for its broker then stops waiting (the task is cancelled), and a
            // connection made meanwhile is closed.
            let connecting = Task { try await StartupConnections.broker(settings, patience: patience, logger: logger) }
            do {
                try await withTaskCancellationHandler {
                    try await StartupConnections.check(pool, connections: databaseConnections, patience: patience, logger: logger)
                } onCancel: {
                    connecting.cancel()
                }
            } catch {
                connecting.cancel()
                if let connected = try? await connecting.value { await connected.close() }
                throw error
            }
            return try await withTaskCancellationHandler { try await connecting.value } onCancel: { connecting.cancel() }
        }
    } catch is CancellationError where Task.isShuttingDownGracefully || Task.isCancelled {
        return nil
    }
    // Connected, but stopped while connecting: the libpq and AMQP calls do not end early.
    guard !Task.isShuttingDownGracefully, !Task.isCancelled else {
        await broker.close()
        return nil
    }
    return broker
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
