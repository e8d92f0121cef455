import Synchronization
import WaitingLine

/// An HTTP client over libcurl: one thread (or a few) drives every request through a multi
/// handle (`CurlMulti`), whose connections stay alive between requests. At most
/// `maxConcurrentRequests` are in flight, each with an easy handle of its own; more callers
/// wait their turn (or leave the line when their task is cancelled). Handles are made when
/// first needed: a client allowed many requests at once but given few holds few. Blocking
/// libcurl calls never run on the cooperative pool.
public final class CurlHTTPClient: Sendable {
    private struct Handles {
        var idle: [UncheckedCurlHandle] = []
        var made = 0
    }

    private let line: WaitingLine<Handles, UncheckedCurlHandle>
    private let engines: [CurlMulti]
    private let nextEngine = Atomic<Int>(0)
    public let maxConcurrentRequests: Int
    public let connectTimeout: Duration
    public let userAgent: String

    /// `threads`: multi handles, each on a thread of its own, taking requests in turn. One
    /// serves a client of a few requests at once; a client carrying many integrations' calls
    /// on busy cores gets more of the CPU from a few (each thread is scheduled on its own).
    /// `threadName`: what `top -H` shows for the client's threads (numbered when more than one).
    public init(
        maxConcurrentRequests: Int = 4, connectTimeout: Duration = .seconds(10), userAgent: String = "tearsheet-sync",
        threads: Int = 1, threadName: String = "http"
    ) {
        precondition(maxConcurrentRequests > 0, "at least one request must be allowed")
        self.maxConcurrentRequests = maxConcurrentRequests
        self.line = WaitingLine(Handles())
        let threads = max(1, min(threads, maxConcurrentRequests))
        let connectionsEach = (maxConcurrentRequests + threads - 1) / threads
        self.engines = (0..<threads).map { index in
            CurlMulti(threadName: threads == 1 ? threadName : "\(threadName)-\(index)", connections: connectionsEach)
        }
        self.connectTimeout = connectTimeout
        self.userAgent = userAgent
    }

    deinit {
        for engine in engines { engine.stop() }
    }

    /// Sends `request` and returns the response, whatever its status; throws `HTTPClientError` only
    /// when no response arrived.
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let maxHandles = maxConcurrentRequests
        let handle = try await line.take { handles in
            if let idle = handles.idle.popLast() { return idle }
            guard handles.made < maxHandles else { return nil }
            handles.made += 1
            return UncheckedCurlHandle(CurlEasyHandle())
        }
        defer { checkIn(handle) }
        let engine = engines[nextEngine.wrappingAdd(1, ordering: .relaxed).oldValue % engines.count]
        return try await engine.perform(request, with: handle.value, connectTimeout: connectTimeout, userAgent: userAgent)
    }

    private func checkIn(_ handle: UncheckedCurlHandle) {
        let waiter = line.withLock { handles, waiters -> WaitingLine<Handles, UncheckedCurlHandle>.Waiter? in
            if let next = waiters.next() { return next }
            handles.idle.append(handle)
            return nil
        }
        waiter?.resume(handle)
    }
}

/// An easy handle travels between callers, but only the client's thread ever uses it, and only
/// for the one caller holding it.
private struct UncheckedCurlHandle: @unchecked Sendable {
    let value: CurlEasyHandle
    init(_ value: CurlEasyHandle) { self.value = value }
}
