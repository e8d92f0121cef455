import Foundation
import Glibc

extension Process {
    /// Waits for the process to end and returns its exit status (128 + the signal when a
    /// signal ended it), without holding a thread of Swift's cooperative pool.
    ///
    /// Not `waitUntilExit()`: it blocks its thread (on a 2-core machine the pool has two, and
    /// the simulators these processes talk to run on them: a CI run stalled 516 s that way), it
    /// spins a run loop at full CPU while it waits, and here it sometimes never saw a child
    /// exit (the child stayed a zombie, the test hung). The child is reaped here with
    /// `waitpid`, whichever of Foundation and this gets to it first.
    @discardableResult
    public func exited() async -> Int32 {
        while true {
            if let status = reapedStatus() { return status }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// `exited()` for a thread of its own that may block (never the cooperative pool).
    public func exitedBlocking() -> Int32 {
        while true {
            if let status = reapedStatus() { return status }
            usleep(20_000)
        }
    }

    /// The exit status if the process has ended (reaping it), nil while it runs.
    public func reapedStatus() -> Int32? {
        var status: Int32 = 0
        let reaped = waitpid(processIdentifier, &status, WNOHANG)
        if reaped == processIdentifier {
            let signal = status & 0x7f
            return signal == 0 ? (status >> 8) & 0xff : 128 + signal
        }
        // Foundation reaped it first: its own account of the ending is set.
        if reaped == -1, errno == ECHILD, !isRunning { return terminationStatus }
        return nil
    }
}
