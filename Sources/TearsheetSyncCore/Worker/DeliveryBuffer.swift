import AMQPClient
import Synchronization

/// Deliveries of one consumer, taken in batches: "up to `max`, or what arrived within `wait`
/// of the first". A pump task fills it from the consumer's stream.
final class DeliveryBuffer: Sendable {
    private struct State {
        var items: [AMQPDelivery] = []
        var ended = false
        var failure: (any Error)?
        var waiter: CheckedContinuation<Void, Never>?
        var waiterID = 0
    }

    private let state = Mutex(State())

    func push(_ delivery: AMQPDelivery) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.items.append(delivery)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func end(_ failure: (any Error)?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.ended = true
            state.failure = failure
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// The next batch; empty when nothing arrived within `idle` (so the caller can look at its
    /// stop flag); nil once the consumer has ended and everything was taken. After the first
    /// delivery the batch gathers until it has `max`, `wait` has passed, or nothing more came
    /// for `quiet`: a drained queue's last, partial batch goes without waiting out `wait`.
    func nextBatch(max: Int, wait: Duration, quiet: Duration = .milliseconds(20), idle: Duration = .seconds(1)) async throws -> [AMQPDelivery]? {
        await withCheckedContinuation { continuation in
            let waiting = state.withLock { state -> Int? in
                if !state.items.isEmpty || state.ended { return nil }
                state.waiter = continuation
                state.waiterID += 1
                return state.waiterID
            }
            guard let waiting else {
                continuation.resume()
                return
            }
            Task { [self] in
                try? await Task.sleep(for: idle)
                let expired = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard state.waiterID == waiting, let waiter = state.waiter else { return nil }
                    state.waiter = nil
                    return waiter
                }
                expired?.resume()
            }
        }
        if state.withLock({ $0.items.isEmpty && !$0.ended }) { return [] }
        // More may arrive right behind the first: gather while they keep coming.
        let deadline = ContinuousClock.now + wait
        var seen = state.withLock { $0.items.count }
        var lastArrival = ContinuousClock.now
        while ContinuousClock.now < deadline, state.withLock({ $0.items.count < max && !$0.ended }) {
            try await Task.sleep(for: .milliseconds(5))
            let count = state.withLock { $0.items.count }
            if count != seen {
                seen = count
                lastArrival = .now
            } else if ContinuousClock.now - lastArrival >= quiet {
                break
            }
        }
        return try state.withLock { state -> [AMQPDelivery]? in
            if state.items.isEmpty {
                if let failure = state.failure { throw failure }
                return nil
            }
            let batch = Array(state.items.prefix(max))
            state.items.removeFirst(batch.count)
            return batch
        }
    }
}
