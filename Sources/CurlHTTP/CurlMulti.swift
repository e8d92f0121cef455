import Blocking
import CCurl
import Foundation
import Synchronization

/// One thread driving the requests given to it through one libcurl multi handle: however
/// many are in flight, the thread waits on all their sockets. (A thread and an easy handle
/// per request in flight cost a worker holding 200 sessions 64 threads and about 4 MiB; a
/// client has one of these, or a few.) The multi handle keeps the connections, so any easy
/// handle reuses any of them.
/// Blocking libcurl calls run only on this thread, never on the cooperative pool.
final class CurlMulti: @unchecked Sendable {
    /// A request handed to the thread, and the caller waiting for its response.
    /// The handle inside is touched only on the thread.
    private struct Submitted: @unchecked Sendable {
        let handle: CurlEasyHandle
        let request: HTTPClientRequest
        let connectTimeout: Duration
        let userAgent: String
        let continuation: CheckedContinuation<HTTPClientResponse, any Error>
    }

    private struct Inbox {
        var submitted: [Submitted] = []
        var stopping = false
    }

    /// A request libcurl is working on.
    private struct Running {
        let handle: CurlEasyHandle
        let exchange: CurlEasyHandle.Exchange
        let continuation: CheckedContinuation<HTTPClientResponse, any Error>
    }

    private let multi: UnsafeMutableRawPointer
    private let inbox = Mutex(Inbox())
    /// Touched only on the thread.
    private var running: [UnsafeMutableRawPointer: Running] = [:]

    /// `connections`: the idle connections kept alive for the next requests. Left to
    /// libcurl, the cache holds four per easy handle added *now*, and a quiet moment (none
    /// added) would close every connection, so that the next request connects again.
    init(threadName: String, connections: Int) {
        _ = CurlEasyHandle.globalInit
        multi = curl_multi_init()
        tsync_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, max(connections, 1))
        let thread = Thread { [self] in
            nameCurrentThread(threadName)
            run()
        }
        thread.start()
    }

    /// Sends `request` with `handle` (which the caller holds until this returns).
    func perform(_ request: HTTPClientRequest, with handle: CurlEasyHandle, connectTimeout: Duration, userAgent: String) async throws
        -> HTTPClientResponse
    {
        try await withCheckedThrowingContinuation { continuation in
            let submitted = Submitted(handle: handle, request: request, connectTimeout: connectTimeout, userAgent: userAgent, continuation: continuation)
            let accepted = inbox.withLock { inbox -> Bool in
                guard !inbox.stopping else { return false }
                inbox.submitted.append(submitted)
                return true
            }
            guard accepted else {
                continuation.resume(throwing: Self.stopped(request))
                return
            }
            curl_multi_wakeup(multi)
        }
    }

    /// Ends the thread: requests in flight or waiting fail with a transport error.
    func stop() {
        inbox.withLock { $0.stopping = true }
        curl_multi_wakeup(multi)
    }

    private func run() {
        while true {
            let (submitted, stopping) = inbox.withLock { inbox in
                defer { inbox.submitted = [] }
                return (inbox.submitted, inbox.stopping)
            }
            guard !stopping else {
                for request in submitted { request.continuation.resume(throwing: Self.stopped(request.request)) }
                for (raw, transfer) in running {
                    curl_multi_remove_handle(multi, raw)
                    transfer.continuation.resume(throwing: Self.stopped(transfer.exchange.request))
                }
                running = [:]
                curl_multi_cleanup(multi)
                return
            }
            for request in submitted {
                let exchange = request.handle.prepare(request.request, connectTimeout: request.connectTimeout, userAgent: request.userAgent)
                running[request.handle.raw] = Running(handle: request.handle, exchange: exchange, continuation: request.continuation)
                curl_multi_add_handle(multi, request.handle.raw)
            }
            var stillRunning: Int32 = 0
            curl_multi_perform(multi, &stillRunning)
            finishDone()
            // Waits for a socket, libcurl's next timeout, or a wake-up from `perform`/`stop`.
            curl_multi_poll(multi, nil, 0, 1_000, nil)
        }
    }

    /// Answers the callers whose requests libcurl has finished.
    private func finishDone() {
        var queued: Int32 = 0
        while let message = curl_multi_info_read(multi, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let raw = message.pointee.easy_handle else { continue }
            let code = message.pointee.data.result  // read before the handle is removed
            curl_multi_remove_handle(multi, raw)
            guard let transfer = running.removeValue(forKey: raw) else { continue }
            transfer.continuation.resume(with: Result { try transfer.handle.response(to: transfer.exchange, code: code) })
        }
    }

    private static func stopped(_ request: HTTPClientRequest) -> HTTPClientError {
        HTTPClientError(.transport, "\(request.method) \(request.redactedURL): the HTTP client has stopped")
    }
}
