import Synchronization

/// A one-way switch: between a worker and one of its consumers, or a signal handler and a
/// loop that sleeps between rounds.
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public var isSet: Bool { flag.load(ordering: .relaxed) }

    public func set() { flag.store(true, ordering: .relaxed) }

    /// Sleeps for `duration`, or until the flag is set.
    public func sleep(for duration: Duration) async {
        let deadline = ContinuousClock.now + duration
        while !isSet, ContinuousClock.now < deadline {
            try? await Task.sleep(for: min(deadline - ContinuousClock.now, .milliseconds(100)))
        }
    }
}
