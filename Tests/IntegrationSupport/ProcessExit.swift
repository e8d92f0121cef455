import Foundation

extension Process {
    /// Waits for the process to end without holding a thread of Swift's cooperative pool.
    ///
    /// `waitUntilExit()` blocks its thread. On a 2-core machine the pool has two threads, and
    /// the simulators these processes talk to run on that pool: two blocked waits and the
    /// simulator stops answering, so the child waits on the simulator while the test waits on
    /// the child (a CI run stalled 516 s that way).
    public func exited() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let thread = Thread { [self] in
                waitUntilExit()
                continuation.resume()
            }
            thread.name = "wait for pid \(processIdentifier)"
            thread.start()
        }
    }
}
