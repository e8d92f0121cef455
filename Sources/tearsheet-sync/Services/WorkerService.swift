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
        // A bad database or broker setting stops the process here, with its one-line message;
        // the worker then opens broker connections of its own.
        guard let broker = try await connectUnlessStopped(pool, settings, patience: StartupConnections.servicePatience, logger: logger)
        else { return }
        await broker.close()
        try await withGracefulShutdownHandler {
            try await worker.run()
        } onGracefulShutdown: { [worker] in
            worker.stop()
        }
    }
}
