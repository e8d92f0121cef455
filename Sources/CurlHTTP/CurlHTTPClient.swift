import Blocking
import WaitingLine

/// An HTTP client over libcurl: workers, each a thread with its own easy handle whose
/// connections stay alive between requests. At most `maxConcurrentRequests` run at once;
/// more callers wait their turn (or leave the line when their task is cancelled). Workers
/// start when first needed: a client allowed many requests at once but given few costs few
/// threads. Blocking `curl_easy_perform` never runs on the cooperative pool.
public final class CurlHTTPClient: Sendable {
    private struct Worker: Sendable {
        let thread: DedicatedThread
        let handle: UncheckedCurlHandle
    }

    private struct Workers {
        var idle: [Worker] = []
        var all: [Worker] = []
    }

    private let line: WaitingLine<Workers, Worker>
    public let maxConcurrentRequests: Int
    public let connectTimeout: Duration
    public let userAgent: String

    public init(maxConcurrentRequests: Int = 4, connectTimeout: Duration = .seconds(10), userAgent: String = "tearsheet-sync") {
        precondition(maxConcurrentRequests > 0, "at least one request must be allowed")
        self.maxConcurrentRequests = maxConcurrentRequests
        self.line = WaitingLine(Workers())
        self.connectTimeout = connectTimeout
        self.userAgent = userAgent
    }

    deinit {
        line.withLock { workers, _ in workers.all }.forEach { $0.thread.stop() }
    }

    /// Sends `request` and returns the response, whatever its status; throws `HTTPClientError` only
    /// when no response arrived.
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let maxWorkers = maxConcurrentRequests
        let worker = try await line.take { workers in
            if let idle = workers.idle.popLast() { return idle }
            guard workers.all.count < maxWorkers else { return nil }
            let started = Worker(thread: DedicatedThread(name: "http-\(workers.all.count)"), handle: UncheckedCurlHandle(CurlEasyHandle()))
            workers.all.append(started)
            return started
        }
        defer { checkIn(worker) }
        let connectTimeout = connectTimeout
        let userAgent = userAgent
        return try await worker.thread.run {
            try worker.handle.value.perform(request, connectTimeout: connectTimeout, userAgent: userAgent)
        }
    }

    private func checkIn(_ worker: Worker) {
        let waiter = line.withLock { workers, waiters -> WaitingLine<Workers, Worker>.Waiter? in
            if let next = waiters.next() { return next }
            workers.idle.append(worker)
            return nil
        }
        waiter?.resume(worker)
    }
}

/// The easy handle travels with its worker; only the worker's thread ever uses it.
private struct UncheckedCurlHandle: @unchecked Sendable {
    let value: CurlEasyHandle
    init(_ value: CurlEasyHandle) { self.value = value }
}
