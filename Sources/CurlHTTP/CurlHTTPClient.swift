import Blocking
import WaitingLine

/// An HTTP client over libcurl: a few workers, each a thread with its own easy handle whose
/// connections stay alive between requests. At most `maxConcurrentRequests` run at once;
/// more callers wait their turn (or leave the line when their task is cancelled). Blocking `curl_easy_perform` never runs on the cooperative pool.
public final class CurlHTTPClient: Sendable {
    private struct Worker: Sendable {
        let thread: DedicatedThread
        let handle: UncheckedCurlHandle
    }

    private let line: WaitingLine<[Worker], Worker>
    private let workers: [Worker]
    public let connectTimeout: Duration
    public let userAgent: String

    public init(maxConcurrentRequests: Int = 4, connectTimeout: Duration = .seconds(10), userAgent: String = "tearsheet-sync") {
        precondition(maxConcurrentRequests > 0, "at least one request must be allowed")
        let workers = (0..<maxConcurrentRequests).map { index in
            Worker(thread: DedicatedThread(name: "http-\(index)"), handle: UncheckedCurlHandle(CurlEasyHandle()))
        }
        self.workers = workers
        self.line = WaitingLine(workers)
        self.connectTimeout = connectTimeout
        self.userAgent = userAgent
    }

    deinit {
        workers.forEach { $0.thread.stop() }
    }

    /// Sends `request` and returns the response, whatever its status; throws `HTTPClientError` only
    /// when no response arrived.
    public func execute(_ request: HTTPClientRequest) async throws -> HTTPClientResponse {
        let worker = try await line.take { $0.popLast() }
        defer { checkIn(worker) }
        let connectTimeout = connectTimeout
        let userAgent = userAgent
        return try await worker.thread.run {
            try worker.handle.value.perform(request, connectTimeout: connectTimeout, userAgent: userAgent)
        }
    }

    private func checkIn(_ worker: Worker) {
        let waiter = line.withLock { idle, waiters -> WaitingLine<[Worker], Worker>.Waiter? in
            if let next = waiters.next() { return next }
            idle.append(worker)
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
