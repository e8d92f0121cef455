import Dispatch
import Foundation
import Synchronization

/// SIGTERM and SIGINT ask for a graceful stop instead of killing the process.
final class StopSignals {
    private let sources: [any DispatchSourceSignal]

    init(_ onSignal: @escaping @Sendable () -> Void) {
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: onSignal)
            source.resume()
            return source
        }
    }
}

/// A stop asked for by a signal, for loops that sleep between rounds: the sleep ends early.
final class StopRequest: Sendable {
    private let requested = Atomic<Bool>(false)

    var isRequested: Bool { requested.load(ordering: .relaxed) }

    func request() { requested.store(true, ordering: .relaxed) }

    /// Sleeps for `duration`, or until a stop is requested.
    func sleep(for duration: Duration) async {
        let deadline = ContinuousClock.now + duration
        while !isRequested, ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(deadline - ContinuousClock.now, .milliseconds(100)))
        }
    }
}
