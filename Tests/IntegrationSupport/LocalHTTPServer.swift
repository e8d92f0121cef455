import Hummingbird
import NIOCore

/// Runs a real Hummingbird server on 127.0.0.1 with a random port for the duration of `body`,
/// which receives its base URL.
public func withLocalServer(
    _ router: Router<BasicRequestContext>, _ body: @Sendable (_ baseURL: String) async throws -> Void
) async throws {
    let (portStream, portSink) = AsyncStream<Int>.makeStream()
    let app = Application(
        router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portSink.yield(channel.localAddress?.port ?? 0)
            portSink.finish()
        })
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await app.run() }
        var ports = portStream.makeAsyncIterator()
        let port = await ports.next() ?? 0
        do {
            try await body("http://127.0.0.1:\(port)")
        } catch {
            group.cancelAll()
            throw error
        }
        group.cancelAll()
    }
}
