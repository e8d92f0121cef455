import Synchronization

/// How many JobSubmission creations one session may have under way at once in this process:
/// its fair share of the process's HTTP connections, counted over the sessions creating now.
///
/// Creations beyond the connections only wait (for a connection, a call slot, a token), and
/// each waits as a task with its stack of async frames: a worker holding 200 sessions that each
/// started 16 creations kept 3,200 tasks, 17 MiB of task stacks, waiting for 64 connections.
/// A session never waits on another's share, only on its own creations: a throttled
/// integration holds no more than its share, and holds nothing of the others'.
public final class WriteShares: Sendable {
    /// Creations under way in the whole process when every session takes its share: twice the
    /// connections, so that a connection that frees up finds the next request ready.
    public let total: Int
    private let writers = Mutex(0)

    public init(total: Int) {
        self.total = max(total, 1)
    }

    /// Counts the caller among the sessions creating now, until `leave`.
    func join() {
        writers.withLock { $0 += 1 }
    }

    func leave() {
        writers.withLock { $0 -= 1 }
    }

    /// A creating session's share now: `total` over the sessions creating, at least 1 and at
    /// most `most` (the session's own limit).
    func share(atMost most: Int) -> Int {
        let writing = writers.withLock { $0 }
        return min(most, max(1, total / max(writing, 1)))
    }
}
