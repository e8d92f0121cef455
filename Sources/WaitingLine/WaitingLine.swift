import Synchronization

/// Callers waiting their turn for something that other callers hand on (a connection, an HTTP
/// worker thread, a call slot), first come first served, together with the state that says
/// whether there is one to take now. Both live under one lock, so that a caller never joins
/// the line just after the last thing it waits for was put back.
///
/// A waiting caller whose task is cancelled leaves the line at once with `CancellationError`:
/// a service shutting down is never held up by a wait for a turn that may not come.
public final class WaitingLine<State, Grant: Sendable>: Sendable {
    /// The callers in line, for an owner handing something on under the lock.
    public struct Waiters {
        fileprivate var entries: [(id: UInt64, continuation: CheckedContinuation<Grant, any Error>)] = []

        public var isEmpty: Bool { entries.isEmpty }

        /// Takes the first caller out of the line; resume it after the lock is released.
        public mutating func next() -> Waiter? {
            entries.isEmpty ? nil : Waiter(continuation: entries.removeFirst().continuation)
        }

        /// Takes every caller out of the line.
        public mutating func all() -> [Waiter] {
            defer { entries = [] }
            return entries.map { Waiter(continuation: $0.continuation) }
        }
    }

    /// One caller taken out of the line.
    public struct Waiter: Sendable {
        fileprivate let continuation: CheckedContinuation<Grant, any Error>

        public func resume(_ grant: Grant) {
            continuation.resume(returning: grant)
        }
    }

    private struct Locked {
        var state: State
        var waiters = Waiters()
        var nextID: UInt64 = 0
    }

    private let locked: Mutex<Locked>

    public init(_ state: sending State) {
        locked = Mutex(Locked(state: state))
    }

    /// Runs `body` under the lock, with the owner's state and the line.
    public func withLock<R: Sendable>(_ body: (inout State, inout Waiters) throws -> R) rethrows -> R {
        try locked.withLock { try body(&$0.state, &$0.waiters) }
    }

    /// What `grantNow` gives at once, or else a place in line until an owner hands a grant on.
    public func take(_ grantNow: (inout State) -> Grant?) async throws -> Grant {
        if let grant = locked.withLock({ grantNow(&$0.state) }) { return grant }
        let id = locked.withLock { locked in
            defer { locked.nextID += 1 }
            return locked.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Grant, any Error>) in
                let now = locked.withLock { locked -> Result<Grant, any Error>? in
                    // Cancelled before the line was joined: the handler found nothing to remove.
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if let grant = grantNow(&locked.state) { return .success(grant) }
                    locked.waiters.entries.append((id, continuation))
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let left = locked.withLock { locked -> CheckedContinuation<Grant, any Error>? in
                guard let index = locked.waiters.entries.firstIndex(where: { $0.id == id }) else { return nil }
                return locked.waiters.entries.remove(at: index).continuation
            }
            left?.resume(throwing: CancellationError())
        }
    }
}
