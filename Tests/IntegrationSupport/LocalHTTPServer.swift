import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// Runs a real Hummingbird server on 127.0.0.1 with a random port for the duration of `body`,
/// which receives its base URL. It ends with a graceful shutdown, never by cancelling the
/// server: a connection accepted just as the serving task is cancelled traps in NIO
/// ("Deinited NIOAsyncWriter without calling finish()", apple/swift-nio#3481), and took the
/// whole test process down once.
public func withLocalServer(
    _ router: Router<BasicRequestContext>, _ body: @Sendable (_ baseURL: String) async throws -> Void
) async throws {
    let (portStream, portSink) = AsyncStream<Int>.makeStream()
    var logger = Logger(label: "local-http-server")
    logger.logLevel = .warning
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portSink.yield(channel.localAddress?.port ?? 0)
            portSink.finish()
        },
        logger: logger)
    let services = ServiceGroup(configuration: .init(services: [app], logger: logger))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await services.run() }
        var ports = portStream.makeAsyncIterator()
        let port = await ports.next() ?? 0
        let result: Result<Void, any Error>
        do {
            result = .success(try await body("http://127.0.0.1:\(port)"))
        } catch {
            result = .failure(error)
        }
        await services.triggerGracefulShutdown()
        try await group.waitForAll()
        try result.get()
    }
}
