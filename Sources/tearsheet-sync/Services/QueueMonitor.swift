import Logging
import ServiceLifecycle
import TearsheetSyncCore

/// `depth --watch`: reads and reports the queues every interval until a graceful shutdown. A
/// round that fails (the management API unreachable or in maintenance) is logged and counted
/// (`tsync_monitor_errors_total`), and the next one tried: the monitor is there to see the
/// broker come back.
struct QueueMonitor: Service {
    let interval: Duration
    let logger: Logger
    let round: @Sendable () async throws -> Void

    func run() async throws {
        // Cancelled too (another service of the group failed, or the graceful shutdown ran out
        // of time): not only shut down gracefully.
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await round()
                FleetMetrics.monitorRound(succeeded: true)
            } catch {
                FleetMetrics.monitorRound(succeeded: false)
                logger.warning("queue depths not read; trying again", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
        }
    }
}
