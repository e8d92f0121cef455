import Logging
import PostgresClient
import ServiceLifecycle
import TearsheetSyncCore

/// The worker as a service: it waits for its database and broker (they may be coming up
/// beside it), then runs until a graceful shutdown asks it to finish its pairs in hand and
/// give its sessions back.
struct WorkerService: Service {
    let worker: SessionWorker
    let pool: PostgresPool
    let settings: Settings
    let logger: Logger

    func run() async throws {
        do {
            try await cancelWhenGracefulShutdown { [pool, settings, logger] in
                try await StartupConnections.check(pool, patience: StartupConnections.servicePatience, logger: logger)
                // A bad broker URL or password stops the process here, with its one-line
                // message; the worker then opens connections of its own.
                try await StartupConnections.broker(settings, patience: StartupConnections.servicePatience, logger: logger).close()
            }
        } catch is CancellationError where Task.isShuttingDownGracefully {
            return  // stopped while still waiting for its servers: nothing to hand back
        }
        try await withGracefulShutdownHandler {
            try await worker.run()
        } onGracefulShutdown: { [worker] in
            worker.stop()
        }
    }
}
