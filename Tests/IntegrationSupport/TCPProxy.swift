import Foundation
import Glibc
import Synchronization

/// A TCP proxy on 127.0.0.1 in front of a local service whose connections can go silent:
/// after `blackhole()` the connections open at that moment forward no byte in either direction
/// while every socket stays open, which is what a peer behind a dropped route, a frozen VM or a
/// stateful firewall that forgot the connection looks like: no reset, no close, only silence.
/// Connections made afterwards pass, as they would through a new route.
public final class TCPProxy: Sendable {
    public let port: Int
    private let listener: Int32
    private let targetPort: Int
    private let state = Mutex<State>(State())

    private struct State {
        var connections: [ProxiedConnection] = []
        var closed = false
    }

    /// Listens on `port` (0: one the kernel picks) and forwards to `targetPort`.
    public init(toPort targetPort: Int, onPort port: Int = 0) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TCPProxyError("socket: \(errno)") }
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else { throw TCPProxyError("bind/listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        self.targetPort = targetPort
        Thread { [self] in acceptLoop() }.start()
    }

    /// A proxy in front of the service `url` names (its port on 127.0.0.1).
    public convenience init(inFrontOf url: String) throws {
        try self.init(toPort: URLComponents(string: url)?.port ?? 0)
    }

    /// `url` with its port replaced by the proxy's: the same service, through the proxy.
    public func route(_ url: String) -> String {
        var components = URLComponents(string: url)!
        components.port = port
        return components.string!
    }

    /// From now on no byte passes on the connections open now, in either direction; their
    /// sockets stay open. Returns how many went silent.
    @discardableResult
    public func blackhole() -> Int {
        state.withLock { state in
            for connection in state.connections { connection.silent.store(true, ordering: .sequentiallyConsistent) }
            return state.connections.count
        }
    }

    /// Connections proxied so far (open or not).
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    /// Stops accepting and ends every proxied connection.
    ///
    /// Only `shutdown(2)` here: it wakes the threads blocked on those sockets, and each
    /// descriptor is closed by the last thread that uses it. Closing them here instead let a
    /// thread still on its way into `accept` or `read` use the number after the kernel had
    /// given it to another socket: a later test's proxy listener, whose connections the old
    /// thread then took (and forwarded without ever going silent).
    public func close() {
        let open = state.withLock { state in
            guard !state.closed else { return [ProxiedConnection]() }
            state.closed = true
            shutdown(listener, Int32(SHUT_RDWR))
            defer { state.connections = [] }
            return state.connections
        }
        for connection in open { connection.end() }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    /// Runs on its own thread, which alone closes the listener, once `close()` has shut it.
    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                let closed = state.withLock { state in
                    if state.closed { Glibc.close(listener) }
                    return state.closed
                }
                if closed { return }
                usleep(10_000)  // out of descriptors, or an aborted connection: try again
                continue
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var target = Self.loopback(port: targetPort)
            let connected = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                Glibc.close(client)
                Glibc.close(upstream)
                continue
            }
            let connection = ProxiedConnection(client: client, upstream: upstream)
            let accepted = state.withLock { state in
                guard !state.closed else { return false }
                state.connections.append(connection)
                return true
            }
            Thread { Self.pump(from: client, to: upstream, silent: connection) }.start()
            Thread { Self.pump(from: upstream, to: client, silent: connection) }.start()
            if !accepted { connection.end() }
        }
    }

    /// Copies bytes until either side ends; while silent, reads them and drops them, and the
    /// end of one side is not passed on either (a closed socket says nothing through a
    /// dropped route).
    private static func pump(from source: Int32, to destination: Int32, silent connection: ProxiedConnection) {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = read(source, &buffer, buffer.count)
            guard count > 0 else { break }
            if connection.silent.load(ordering: .sequentiallyConsistent) { continue }
            var sent = 0
            while sent < count {
                let written = buffer[sent..<count].withUnsafeBytes { write(destination, $0.baseAddress, count - sent) }
                guard written > 0 else { connection.pumpEnded(); return }
                sent += written
            }
        }
        if !connection.silent.load(ordering: .sequentiallyConsistent) { shutdown(destination, Int32(SHUT_WR)) }
        connection.pumpEnded()
    }
}

/// One proxied connection: its two sockets are closed by whichever of its two pumps ends
/// last, so that no descriptor is closed while a thread may still use its number.
private final class ProxiedConnection: Sendable {
    let client: Int32
    let upstream: Int32
    let silent = Atomic<Bool>(false)
    /// Pumps still running; nil once both sockets are closed.
    private let pumpsRunning = Mutex<Int?>(2)

    init(client: Int32, upstream: Int32) {
        self.client = client
        self.upstream = upstream
    }

    /// Wakes both pumps: their reads return, and they end.
    func end() {
        pumpsRunning.withLock { running in
            guard running != nil else { return }
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(upstream, Int32(SHUT_RDWR))
        }
    }

    func pumpEnded() {
        pumpsRunning.withLock { running in
            guard let count = running else { return }
            if count > 1 {
                running = count - 1  // the other may wait on a silent socket until close()
            } else {
                Glibc.close(client)
                Glibc.close(upstream)
                running = nil
            }
        }
    }
}

public struct TCPProxyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
