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

    /// The next batch; nil once the consumer has ended and everything was taken.
    func nextBatch(max: Int, wait: Duration) async throws -> [AMQPDelivery]? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if !state.items.isEmpty || state.ended { return true }
                state.waiter = continuation
                return false
            }
            if ready { continuation.resume() }
        }
        // More may arrive right behind the first: gather until the batch is full or the wait is over.
        let deadline = ContinuousClock.now + wait
        while ContinuousClock.now < deadline, state.withLock({ $0.items.count < max && !$0.ended }) {
            try await Task.sleep(for: .milliseconds(5))
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
