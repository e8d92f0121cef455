/// One channel's bookkeeping on the connection's thread: publisher confirms in flight,
/// messages waiting for window room, and consumers.
final class AMQPChannelState {
    let id: UInt16
    var confirms = false
    var closeError: AMQPError?
    /// Next publish sequence number (the delivery tag the broker will confirm).
    var nextSequence: UInt64 = 1
    /// Lowest sequence number that may still be unconfirmed: that of `unconfirmed[head]`.
    var nextToConfirm: UInt64 = 1
    /// Publishes awaiting their confirm, by sequence number from `nextToConfirm` on (nil:
    /// confirmed out of order). Sequence numbers are consecutive, so an array does what a
    /// dictionary did, without hashing twice per message.
    private var unconfirmed: [(batch: AMQPPublishBatch, index: Int, messageID: String)?] = []
    private var head = 0
    /// Publishes sent and not yet confirmed (for the confirm window).
    private(set) var pendingCount = 0
    var returned: [UInt64: (code: UInt16, text: String)] = [:]
    var outbox: [AMQPPublishBatch] = []
    /// Every unfinished publish call on this channel, for its confirm deadline.
    var unfinished: [AMQPPublishBatch] = []
    var consumers: [String: AMQPConsumerSink] = [:]

    init(id: UInt16) {
        self.id = id
    }

    func track(batch: AMQPPublishBatch, index: Int, messageID: String) {
        nextSequence += 1
        unconfirmed.append((batch, index, messageID))
        pendingCount += 1
    }

    /// basic.return precedes the basic.ack of the same message and carries the message, not
    /// its sequence number: the first unconfirmed publish of that message id not yet returned
    /// is the one (returns are rare: a scan of the window costs less than indexing every id).
    func recordReturn(messageID: String, code: UInt16, text: String) {
        for offset in head..<unconfirmed.count {
            guard let entry = unconfirmed[offset], entry.messageID == messageID else { continue }
            let sequence = nextToConfirm + UInt64(offset - head)
            if returned[sequence] == nil {
                returned[sequence] = (code, text)
                return
            }
        }
    }

    func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) {
        if multiple {
            if tag >= nextToConfirm {
                for sequence in nextToConfirm...tag { resolve(sequence, nacked: nacked) }
            }
        } else {
            resolve(tag, nacked: nacked)
        }
        while head < unconfirmed.count, unconfirmed[head] == nil {
            head += 1
            nextToConfirm += 1
        }
        if head > 4_096, head * 2 > unconfirmed.count {
            unconfirmed.removeFirst(head)
            head = 0
        }
    }

    private func resolve(_ sequence: UInt64, nacked: Bool) {
        guard sequence >= nextToConfirm, sequence < nextSequence else { return }
        let offset = head + Int(sequence - nextToConfirm)
        guard let entry = unconfirmed[offset] else { return }
        unconfirmed[offset] = nil
        pendingCount -= 1
        let outcome: AMQPPublishOutcome
        if nacked {
            outcome = .nacked
        } else if let returned = returned.removeValue(forKey: sequence) {
            outcome = .returned(replyCode: returned.code, replyText: returned.text)
        } else {
            outcome = .confirmed
        }
        entry.batch.record(outcome, at: entry.index)
    }

    /// The first unfinished publish call whose confirms are overdue, if any.
    func overdueBatch(at now: ContinuousClock.Instant) -> AMQPPublishBatch? {
        unfinished.removeAll { $0.isFinished }
        return unfinished.first { $0.deadline < now }
    }

    /// The channel is gone: every waiting publish and consumer learns why.
    func fail(_ error: AMQPError) {
        guard closeError == nil else { return }
        closeError = error
        var batches: [ObjectIdentifier: AMQPPublishBatch] = [:]
        for case let entry? in unconfirmed[head...] { batches[ObjectIdentifier(entry.batch)] = entry.batch }
        for batch in outbox { batches[ObjectIdentifier(batch)] = batch }
        unconfirmed.removeAll()
        head = 0
        pendingCount = 0
        outbox.removeAll()
        for batch in batches.values { batch.fail(error) }
        for batch in unfinished { batch.fail(error) }
        unfinished.removeAll()
        for sink in consumers.values { sink.finish(throwing: error) }
        consumers.removeAll()
    }
}

/// A publish call's messages and their outcomes, completed once every one is known.
final class AMQPPublishBatch {
    let items: [AMQPPublish]
    let window: Int
    /// When the broker must have answered for every message.
    let deadline: ContinuousClock.Instant
    var nextIndex = 0
    private var outcomes: [AMQPPublishOutcome?]
    private var unresolved: Int
    private var completion: ((Result<[AMQPPublishOutcome], any Error>) -> Void)?

    init(
        items: [AMQPPublish], window: Int, timeout: Duration,
        completion: @escaping (Result<[AMQPPublishOutcome], any Error>) -> Void
    ) {
        self.items = items
        self.window = window
        self.deadline = .now + timeout
        self.outcomes = Array(repeating: nil, count: items.count)
        self.unresolved = items.count
        self.completion = completion
        if items.isEmpty { finish(.success([])) }
    }

    func record(_ outcome: AMQPPublishOutcome, at index: Int) {
        guard outcomes[index] == nil else { return }
        outcomes[index] = outcome
        unresolved -= 1
        if unresolved == 0 { finish(.success(outcomes.map { $0! })) }
    }

    func fail(_ error: any Error) {
        finish(.failure(error))
    }

    var isFinished: Bool { completion == nil }

    private func finish(_ result: Result<[AMQPPublishOutcome], any Error>) {
        let completion = self.completion
        self.completion = nil
        completion?(result)
    }
}

/// A consumer's deliveries on their way out of the connection's thread: gathered while the
/// thread reads frames and handed on together, one wake-up of the consumer per read rather
/// than one per delivery.
final class AMQPConsumerSink {
    private let continuation: AsyncThrowingStream<[AMQPDelivery], any Error>.Continuation
    private var gathered: [AMQPDelivery] = []

    init(_ continuation: AsyncThrowingStream<[AMQPDelivery], any Error>.Continuation) {
        self.continuation = continuation
    }

    /// Gathers a delivery; true when it is the first since the last hand-over.
    func add(_ delivery: AMQPDelivery) -> Bool {
        gathered.append(delivery)
        return gathered.count == 1
    }

    func handOver() {
        guard !gathered.isEmpty else { return }
        continuation.yield(gathered)
        gathered = []
    }

    /// Hands over what was gathered, then ends the stream.
    func finish(throwing error: (any Error)? = nil) {
        handOver()
        continuation.finish(throwing: error)
    }
}
