import AMQPClient
import Foundation
import Synchronization
import IntegrationSupport
import Testing

/// A broker that goes silent (bytes stop, the socket stays open): an RPC fails by its deadline
/// and takes the connection with it, instead of holding the connection's thread for ever
/// (issue 11, finding 4).
@Suite struct AMQPSilentBrokerTests {
    @Test func anRPCToASilentBrokerFailsByItsDeadline() async throws {
        let proxy = try TCPProxy(inFrontOf: TestServices.amqpURL)
        defer { proxy.close() }
        var viaProxy = URLComponents(string: proxy.route(TestServices.amqpURL))!
        viaProxy.queryItems = [URLQueryItem(name: "heartbeat", value: "0"), URLQueryItem(name: "rpc_timeout", value: "5000")]
        let connection = try await AMQPConnection.connect(url: viaProxy.string!)
        let channel = try await connection.openChannel()
        proxy.blackhole()
        let started = ContinuousClock.now
        // Not awaited directly: without a deadline the RPC never returns, and the test should
        // fail, not hang.
        let outcome = Mutex<String?>(nil)
        Task {
            let result: String
            do {
                _ = try await channel.declareQueue("amq.silent-check", passive: true)
                result = "answered"
            } catch let error as AMQPError {
                result = "\(error.code)"
            } catch {
                result = "other error"
            }
            outcome.withLock { $0 = result }
        }
        while outcome.withLock({ $0 }) == nil, ContinuousClock.now - started < .seconds(60) {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(outcome.withLock { $0 } == "timeout")
        #expect(ContinuousClock.now - started < .seconds(30), "by its deadline (5 s), not by a TCP timeout")
        #expect(!connection.isOpen, "the connection's state is unknown after a lost answer: it goes")
        await connection.close()
    }
}
