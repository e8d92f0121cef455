import Blocking
import CRabbitMQ
import Foundation
import Synchronization

/// A connection to RabbitMQ over librabbitmq, driven by an event loop on its own thread.
///
/// librabbitmq is blocking and not thread-safe, so one thread owns the connection: it runs the
/// commands that tasks submit (publish, ack, declare, …), reads frames as they arrive
/// (deliveries, publisher confirms, returns, broker-initiated closes, heartbeats) and resumes
/// the waiting tasks. Swift's cooperative pool never blocks on the socket.
public final class AMQPConnection: Sendable {
    let inbox: AMQPCommandInbox
    public let configuration: AMQPConfiguration

    private init(configuration: AMQPConfiguration, inbox: AMQPCommandInbox) {
        self.configuration = configuration
        self.inbox = inbox
    }

    /// Connects to the first broker of `configuration.brokers` that answers, logs in and starts
    /// the connection's thread. A broker that refuses the login fails at once (the others
    /// would refuse it too); one that cannot be reached gives way to the next.
    public static func connect(_ configuration: AMQPConfiguration) async throws -> AMQPConnection {
        var firstFailure: (any Error)?
        for broker in configuration.brokers {
            do {
                return try await connect(broker: broker)
            } catch let error as AMQPError where error.code == .transport {
                firstFailure = firstFailure ?? error
            }
        }
        throw firstFailure ?? AMQPError(.invalidConfiguration, "no broker to connect to")
    }

    private static func connect(broker configuration: AMQPConfiguration) async throws -> AMQPConnection {
        let inbox = try AMQPCommandInbox()
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let name = "amqp \(configuration.host):\(configuration.port)"
            let thread = Thread {
                nameCurrentThread(name)
                let core = AMQPConnectionCore(configuration: configuration, inbox: inbox)
                do {
                    try core.open()
                } catch {
                    inbox.close()
                    continuation.resume(throwing: error)
                    return
                }
                continuation.resume()
                core.runLoop()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        return AMQPConnection(configuration: configuration, inbox: inbox)
    }

    /// Convenience for `connect(AMQPConfiguration(url:))`.
    public static func connect(url: String) async throws -> AMQPConnection {
        try await connect(AMQPConfiguration(url: url))
    }

    /// Opens a new channel. With `confirms`, the channel is put in publisher-confirm mode.
    public func openChannel(confirms: Bool = false) async throws -> AMQPChannel {
        let id = try await perform { core in try core.openChannel(confirms: confirms) }
        return AMQPChannel(connection: self, id: id)
    }

    /// True until the connection is closed by us, by the broker, or by a transport failure.
    public var isOpen: Bool { !inbox.isClosed }

    /// Sends connection.close and waits for the broker's answer; pending work fails with `.closed`.
    public func close() async {
        _ = try? await perform { core in core.closeGracefully() }
    }

    /// Runs `body` on the connection's thread and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable (AMQPConnectionCore) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = inbox.submit { core in
                continuation.resume(with: Result { try core.checkUsable(); return try body(core) })
            }
            if !accepted {
                continuation.resume(throwing: inbox.closeReason ?? AMQPError(.closed, "the connection is closed"))
            }
        }
    }

    /// Runs `body` on the connection's thread; it calls `complete` once, possibly much later
    /// (publisher confirms arrive after the command itself has returned).
    func performDeferred<T: Sendable>(
        _ body: @escaping @Sendable (AMQPConnectionCore, @escaping @Sendable (Result<T, any Error>) -> Void) -> Void
    ) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = inbox.submit { core in
                do {
                    try core.checkUsable()
                } catch {
                    continuation.resume(throwing: error)
                    return
                }
                body(core) { continuation.resume(with: $0) }
            }
            if !accepted {
                continuation.resume(throwing: inbox.closeReason ?? AMQPError(.closed, "the connection is closed"))
            }
        }
    }

    deinit {
        // A connection dropped without close(): stop its loop; the broker sees the socket close.
        inbox.submit { core in core.closeGracefully() }
    }
}

/// Commands from tasks to the connection's thread, with a pipe that wakes the thread from poll().
final class AMQPCommandInbox: @unchecked Sendable {
    typealias Command = @Sendable (AMQPConnectionCore) -> Void

    private let lock = NSLock()
    private var commands: [Command] = []
    private var closed = false
    private var reason: AMQPError?
    let wakeReadFD: Int32
    private let wakeWriteFD: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw AMQPError(.transport, "cannot create a wake-up pipe") }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeReadFD = fds[0]
        wakeWriteFD = fds[1]
    }

    deinit {
        Glibc.close(wakeReadFD)
        Glibc.close(wakeWriteFD)
    }

    @discardableResult
    func submit(_ command: @escaping Command) -> Bool {
        lock.lock()
        guard !closed else {
            lock.unlock()
            return false
        }
        commands.append(command)
        lock.unlock()
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
        return true
    }

    func take() -> [Command] {
        lock.lock()
        defer { lock.unlock() }
        let taken = commands
        commands.removeAll(keepingCapacity: true)
        return taken
    }

    func drainWakeups() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakeReadFD, &buffer, buffer.count) > 0 {}
    }

    /// Refuses new commands; returns those still queued so the loop can fail them.
    func close(reason: AMQPError? = nil) -> [Command] {
        lock.lock()
        defer { lock.unlock() }
        closed = true
        if self.reason == nil { self.reason = reason }
        let left = commands
        commands.removeAll()
        return left
    }

    func close() {
        _ = close(reason: nil) as [Command]
    }

    var isClosed: Bool {
        lock.lock()
        defer { lock.unlock() }
        return closed
    }

    var closeReason: AMQPError? {
        lock.lock()
        defer { lock.unlock() }
        return reason
    }
}
