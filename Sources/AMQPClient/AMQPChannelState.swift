/// One channel's bookkeeping on the connection's thread: publisher confirms in flight,
/// messages waiting for window room, and consumers.
final class AMQPChannelState {
    let id: UInt16
    var confirms = false
    var closeError: AMQPError?
    /// Next publish sequence number (the delivery tag the broker will confirm).
    var nextSequence: UInt64 = 1
    /// Lowest sequence number that may still be unconfirmed.
    var nextToConfirm: UInt64 = 1
    var pending: [UInt64: (batch: AMQPPublishBatch, index: Int, messageID: String)] = [:]
    /// Unconfirmed sequence numbers by message id, to match basic.return (which carries the
    /// message, not its sequence number) to the publish it answers.
    var pendingByMessageID: [String: [UInt64]] = [:]
    var returned: [UInt64: (code: UInt16, text: String)] = [:]
    var outbox: [AMQPPublishBatch] = []
    /// Every unfinished publish call on this channel, for its confirm deadline.
    var unfinished: [AMQPPublishBatch] = []
    var consumers: [String: AMQPConsumerSink] = [:]

    init(id: UInt16) {
        self.id = id
    }

    func track(batch: AMQPPublishBatch, index: Int, messageID: String) {
        let sequence = nextSequence
        nextSequence += 1
        pending[sequence] = (batch, index, messageID)
        pendingByMessageID[messageID, default: []].append(sequence)
    }

    /// basic.return precedes the basic.ack of the same message: remember it for that ack.
    func recordReturn(messageID: String, code: UInt16, text: String) {
        guard let sequence = pendingByMessageID[messageID]?.first(where: { returned[$0] == nil }) else { return }
        returned[sequence] = (code, text)
    }

    func confirm(upTo tag: UInt64, multiple: Bool, nacked: Bool) {
        if multiple {
            if tag >= nextToConfirm {
                for sequence in nextToConfirm...tag { resolve(sequence, nacked: nacked) }
            }
        } else {
            resolve(tag, nacked: nacked)
        }
        while nextToConfirm < nextSequence, pending[nextToConfirm] == nil { nextToConfirm += 1 }
    }

    private func resolve(_ sequence: UInt64, nacked: Bool) {
        guard let entry = pending.removeValue(forKey: sequence) else { return }
        if var sequences = pendingByMessageID[entry.messageID] {
            sequences.removeAll { $0 == sequence }
            pendingByMessageID[entry.messageID] = sequences.isEmpty ? nil : sequences
        }
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
        for entry in pending.values { batches[ObjectIdentifier(entry.batch)] = entry.batch }
        for batch in outbox { batches[ObjectIdentifier(batch)] = batch }
        pending.removeAll()
        pendingByMessageID.removeAll()
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
