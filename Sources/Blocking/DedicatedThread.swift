import Foundation

/// One OS thread that runs submitted jobs in order, for one blocking C handle.
///
/// Blocking calls into libpq or libcurl must never run on Swift's cooperative pool: on a
/// 2-core machine two blocked calls would freeze every task. Each connection therefore owns
/// a `DedicatedThread`; `run` hops onto it and resumes the caller when the job is done.
/// Jobs run strictly in submission order, which also serialises access to the handle.
public final class DedicatedThread: Sendable {
    private let queue = JobQueue()
    public let name: String

    public init(name: String) {
        self.name = name
        let thread = Thread { [queue] in
            nameCurrentThread(name)
            queue.drainUntilStopped()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Runs `body` on the thread and returns its result to the calling task.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let accepted = submit {
                continuation.resume(with: Result { try body() })
            }
            if !accepted {
                continuation.resume(throwing: DedicatedThreadStopped(name: name))
            }
        }
    }

    /// Queues a job; false when the thread has been stopped.
    @discardableResult
    public func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        queue.append(job)
    }

    /// Lets queued jobs finish, then ends the thread. Later submissions are refused.
    public func stop() {
        queue.stop()
    }

    deinit {
        queue.stop()
    }
}

/// The jobs of one thread, guarded by a condition variable the thread sleeps on.
private final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    func append(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    func drainUntilStopped() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            let done = batch.isEmpty && stopping
            condition.unlock()
            if done { return }
            for job in batch { job() }
        }
    }
}

/// Thrown by `DedicatedThread.run` after `stop()`.
public struct DedicatedThreadStopped: Error, CustomStringConvertible {
    public let name: String
    public var description: String { "thread \(name) has stopped" }
}
