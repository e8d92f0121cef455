import ServiceLifecycle

/// `depth --watch`: reads and reports the queues every interval until a graceful shutdown.
struct QueueMonitor: Service {
    let interval: Duration
    let round: @Sendable () async throws -> Void

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            try await round()
            try? await cancelWhenGracefulShutdown { [interval] in try await Task.sleep(for: interval) }
        }
    }
}
