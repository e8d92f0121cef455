import Dispatch
import Glibc
import Synchronization

/// Cuts the socket of a call that gets no answer in time.
///
/// libpq waits for the server without limit, and a server behind a dropped route or a frozen
/// host never answers nor closes: the connection's thread would wait for ever (TCP keepalives
/// do not help when something in between still acknowledges). `shutdown(2)` on the socket from
/// another thread wakes the waiting call at once with a broken connection, which every caller
/// already handles. The socket is cut only while the call that armed the watch is in flight, so
/// a descriptor closed and reused meanwhile is never touched.
final class AnswerDeadline: Sendable {
    let limit: Duration
    private let state = Mutex<Watch>(Watch())

    private struct Watch {
        var generation: UInt64 = 0
        var socket: Int32?
        var cut = false
    }

    init(_ limit: Duration) {
        self.limit = limit
    }

    /// Runs `call`, a blocking libpq call on `socket`, cutting the socket if it outlives the
    /// limit (plus `extra`, for calls that wait on purpose). A cut call throws
    /// `PostgresError.connection`, even when its answer raced the cut: the socket is gone.
    func watch<T>(socket: Int32, extra: Duration = .zero, _ call: () throws -> T) throws -> T {
        let generation = state.withLock { watch in
            watch.generation += 1
            watch.socket = socket
            watch.cut = false
            return watch.generation
        }
        let allowed = limit + extra
        // A Dispatch timer, not a task: the cooperative pool may be the very thing that is busy.
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(Int(allowed.milliseconds))) { [self] in
            state.withLock { watch in
                guard watch.generation == generation, let socket = watch.socket else { return }
                shutdown(socket, Int32(SHUT_RDWR))
                watch.cut = true
            }
        }
        let result = Result { try call() }
        let cut = state.withLock { watch in
            watch.socket = nil
            return watch.cut
        }
        if cut { throw PostgresError(.connection, "no answer from the server within \(allowed); the connection was cut") }
        return try result.get()
    }
}

extension Duration {
    /// Whole milliseconds, as libpq's `poll`, `statement_timeout` and Dispatch take them.
    var milliseconds: Int64 {
        components.seconds * 1_000 + components.attoseconds / 1_000_000_000_000_000
    }
}
