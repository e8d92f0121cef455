import Foundation
import Glibc
import IntegrationSupport
import Testing

/// The proxy the silent-connection tests stand on: what it promises must hold under a busy
/// test run, where one test closes its proxy as another opens its own.
@Suite struct TCPProxyTests {
    /// A closed proxy's threads may still be on their way into `accept`; they must not take the
    /// connections of the proxy opened next (which then never went silent when told to).
    @Test func aClosedProxyNeverTakesTheConnectionsOfTheNextOne() async throws {
        let port = URLComponents(string: TestServices.adminDatabaseURL)?.port ?? 5432
        var taken = 0
        for _ in 0..<200 {
            try TCPProxy(toPort: port).close()
            let proxy = try TCPProxy(toPort: port)
            let client = try Self.connect(toPort: proxy.port)
            let deadline = ContinuousClock.now + .seconds(2)
            while proxy.connectionCount == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
            if proxy.connectionCount == 0 { taken += 1 }
            Glibc.close(client)
            proxy.close()
        }
        #expect(taken == 0, "connections accepted by an earlier, closed proxy")
    }

    private static func connect(toPort port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        return fd
    }
}
