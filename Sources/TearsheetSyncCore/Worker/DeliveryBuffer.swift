import AMQPClient
import Synchronization

/// Deliveries of one consumer, taken in batches: "up to `max`, or what arrived within `wait`
/// of the first, or what arrived before deliveries paused for `quiet`". A pump task fills it
/// from the consumer's stream, turning each delivery as it comes into the `Item` its reader
/// keeps (a session: `HeldDelivery`, the pair decoded; `dlq`: the delivery whole).
///
/// Event-driven: a waiting `nextBatch` is resumed by the delivery that fills its batch, by the
/// consumer's end, or by one timer at the moment its batch would go anyway; it never polls.
final class DeliveryBuffer<Item: Sendable>: Sendable {
    private struct State {
        var items: [Item] = []
        var lastArrival = ContinuousClock.now
        var ended = false
        var failure: (any Error)?
        var waiter: CheckedContinuation<Void, Never>?
        /// The waiter wants resuming once this many items are here.
        var wanted = 1
        var waiterID = 0
    }

    private let state = Mutex(State())

    /// A buffer that a task fills from `consumer`, each delivery made an item by `item`, until
    /// the consumer ends (or fails); cancel the task when done with the buffer.
    static func filled(
        from consumer: AMQPConsumer, as item: @escaping @Sendable (AMQPDelivery) -> Item
    ) -> (buffer: DeliveryBuffer, pump: Task<Void, Never>) {
        let buffer = DeliveryBuffer()
        let pump = Task {
            do {
                for try await deliveries in consumer.batches { buffer.push(deliveries.map(item)) }
                buffer.end(nil)
            } catch {
                buffer.end(error)
            }
        }
        return (buffer, pump)
    }

    func push(_ items: [Item]) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.items.append(contentsOf: items)
            state.lastArrival = .now
            guard state.items.count >= state.wanted else { return nil }
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
    func nextBatch(max: Int, wait: Duration, quiet: Duration = .milliseconds(20), idle: Duration = .seconds(1)) async throws -> [Item]? {
        await waitUntil(count: 1, orUntil: .now + idle)
        if state.withLock({ $0.items.isEmpty && !$0.ended }) { return [] }
        // More may arrive right behind the first: gather while they keep coming.
        let deadline = ContinuousClock.now + wait
        while true {
            let (full, lastArrival) = state.withLock { ($0.items.count >= max || $0.ended, $0.lastArrival) }
            let goes = min(deadline, lastArrival + quiet)
            if full || ContinuousClock.now >= goes { break }
            await waitUntil(count: max, orUntil: goes)
        }
        return try state.withLock { state -> [Item]? in
            if state.items.isEmpty {
                if let failure = state.failure { throw failure }
                return nil
            }
            // A batch of everything here takes the array whole: a copy of its prefix shared the
            // buffer, and removing that prefix then made `items` a new buffer as large (1.3 MiB
            // across a worker's 200 sessions).
            guard state.items.count > max else {
                defer { state.items = [] }
                return state.items
            }
            let batch = Array(state.items.prefix(max))
            state.items.removeFirst(batch.count)
            return batch
        }
    }

    /// Returns once `count` items are here, the consumer ended, or `instant` came.
    private func waitUntil(count: Int, orUntil instant: ContinuousClock.Instant) async {
        await withCheckedContinuation { continuation in
            let waiting = state.withLock { state -> Int? in
                if state.items.count >= count || state.ended { return nil }
                state.waiter = continuation
                state.wanted = count
                state.waiterID += 1
                return state.waiterID
            }
            guard let waiting else {
                continuation.resume()
                return
            }
            Task { [self] in
                try? await Task.sleep(until: instant, clock: .continuous)
                let expired = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard state.waiterID == waiting, let waiter = state.waiter else { return nil }
                    state.waiter = nil
                    return waiter
                }
                expired?.resume()
            }
        }
    }
}
