import AMQPClient
import BullhornClient
import Foundation
import Logging

/// Settles one batch of a session: decodes it, hands its pairs to the `PairProcessor`, and
/// keeps trying the pairs that failed for a reason that may pass until each one is added,
/// skipped or dead-lettered. Then the batch is acknowledged, once.
///
/// Retrying in place (not giving messages back to the queue) keeps publish order and spends
/// no delivery: RabbitMQ 3.10 counts every return against the delivery limit.
struct BatchSettler {
    let consumer: SessionConsumer
    let channel: AMQPChannel
    /// Where dead letters and deferred pairs are published: a confirmed channel on the
    /// dead-letter connection, opened on the first of them. Most sessions never need it, and a
    /// worker holding 200 sessions held 200 idle channels (and the broker 200 channel
    /// processes) for them.
    private let deadLetterBroker: AMQPConnection
    private(set) var deadLetterChannel: AMQPChannel?
    /// The session is to be handed over: no new batch (the one in hand is settled).
    let shouldStop: @Sendable () -> Bool
    /// The batch in hand is given up between retries (shutdown, a lost connection).
    let giveUp: @Sendable () -> Bool
    private(set) var totals = SessionConsumer.Totals()

    init(
        consumer: SessionConsumer, channel: AMQPChannel, deadLetterBroker: AMQPConnection, shouldStop: @escaping @Sendable () -> Bool,
        giveUp: @escaping @Sendable () -> Bool
    ) {
        self.consumer = consumer
        self.channel = channel
        self.deadLetterBroker = deadLetterBroker
        self.shouldStop = shouldStop
        self.giveUp = giveUp
    }

    private var integrationID: String { consumer.session.integrationID }
    private var options: WorkerOptions { consumer.options }
    private var logger: Logger { consumer.logger }

    /// Settles the batch; `beforeAcknowledging` runs when every pair is settled, right before
    /// the one acknowledgement.
    mutating func settle(_ batch: [HeldDelivery], beforeAcknowledging: () async throws -> Void = {}) async throws {
        let started = ContinuousClock.now
        do {
            try await settleEveryPair(batch, beforeAcknowledging: beforeAcknowledging)
            FleetMetrics.batchDuration(integrationID, .settled).recordSeconds((ContinuousClock.now - started).timeInterval)
        } catch {
            FleetMetrics.batchDuration(integrationID, .failed).recordSeconds((ContinuousClock.now - started).timeInterval)
            throw error
        }
    }

    private mutating func settleEveryPair(_ batch: [HeldDelivery], beforeAcknowledging: () async throws -> Void) async throws {
        var progress = BatchInProgress(batch, integrationID: integrationID)
        var backoff = options.backoff
        while !progress.isSettled {
            let outcome: PairBatchOutcome
            do {
                outcome = try await consumer.processor.process(progress.waitingPairs, integrationID: integrationID)
            } catch {
                switch FailureAction(error) {
                case .endSession:
                    throw error
                case .deadLetter:
                    logger.error("batch cannot be processed; dead-lettering it", metadata: ["session": "\(integrationID)", "error": "\(error)"])
                    progress.deadLetterEveryWaitingPair(reason: "\(error)")
                    continue
                case .retry:
                    // A failure the whole batch shares: nobody's attempt, however long it lasts.
                    // Shutting down during it hands the batch back (the broker counts one delivery).
                    noteRetry("batch failed; retrying in place", pairs: nil, error: error, pause: backoff)
                    try await pause(&backoff, orGiveUpWith: error)
                    continue
                }
            }
            progress.absorb(outcome, pairAttempts: options.pairAttempts, at: Date())
            if progress.onlyDeferred(for: options.deferInPlace) {
                try await sendToBack(progress.takeWaiting())
                continue
            }
            if !progress.isSettled {
                // Deferred pairs stay waiting: tried again after the pause, spending nothing.
                let failure = outcome.retry.first?.error
                    ?? BullhornError(.ambiguousWrite, endpoint: "PUT entity/JobSubmission", "an earlier creation may still land")
                noteRetry("pairs failed; retrying them in place", pairs: progress.waitingCount, error: failure, pause: nil)
                try await pause(&backoff, orGiveUpWith: failure)
            }
        }
        try await deadLetter(progress.deadLetters)
        // Every pair of the batch is settled: added, skipped or dead-lettered.
        try await beforeAcknowledging()
        try await channel.ack(batch.map(\.deliveryTag).max()!, multiple: true)
        record(progress)
    }

    /// A retry in place, counted and logged (apart from the async caller, whose frame would
    /// otherwise hold the log's metadata while it waits).
    private mutating func noteRetry(_ message: Logger.Message, pairs: Int?, error: any Error, pause: Duration?) {
        totals.retries += 1
        FleetMetrics.retries(integrationID).increment()
        var metadata: Logger.Metadata = ["session": "\(integrationID)", "error": "\(error)"]
        if let pairs { metadata["pairs"] = "\(pairs)" }
        if let pause { metadata["pause"] = "\(pause)" }
        logger.warning(message, metadata: metadata)
    }

    /// A settled and acknowledged batch, counted.
    private mutating func record(_ settled: BatchInProgress) {
        let outcomes = settled.outcomes
        FleetMetrics.pairsAdded(integrationID).increment(by: outcomes.added.count)
        FleetMetrics.pairsSkipped(integrationID).increment(by: outcomes.alreadyOnCampaign.count)
        FleetMetrics.deadLettered(integrationID).increment(by: settled.deadLetters.count)
        FleetMetrics.submissionsCreated(integrationID).increment(by: outcomes.submissionsCreated)
        totals.batches += 1
        totals.acknowledged += settled.batch.count
        totals.added += outcomes.added.count
        totals.alreadyOnCampaign += outcomes.alreadyOnCampaign.count
        totals.deadLettered += settled.deadLetters.count
        totals.submissionsCreated += outcomes.submissionsCreated
    }

    /// Waits out `backoff` (doubling it for next time), or throws `failure` when the batch is
    /// given up (see `giveUp`): it goes back to the queue rather than hold up a shutdown. A
    /// hand-over waits: handing a batch back would spend a delivery of each of its messages,
    /// and a pair waiting out an uncertain write's grace would be handed back slice after
    /// slice until the broker dead-letters it (found by the chaos suite).
    private func pause(_ backoff: inout Duration, orGiveUpWith failure: any Error) async throws {
        let deadline = ContinuousClock.now + backoff
        backoff = min(backoff * 2, options.maxBackoff)
        while ContinuousClock.now < deadline {
            if giveUp() { throw failure }
            try await Task.sleep(for: min(deadline - ContinuousClock.now, .milliseconds(100)))
        }
    }

    /// Publishes copies of these deliveries to the back of their session queue, confirmed,
    /// before the originals are acknowledged with the batch: new messages, with every delivery
    /// still to spend. Their pairs come round again after the session's other work.
    private mutating func sendToBack(_ deliveries: [HeldDelivery]) async throws {
        let publishes = deliveries.map { delivery in
            AMQPPublish(exchange: Topology.pairsExchange, routingKey: consumer.session.routingKey, mandatory: true, message: delivery.message)
        }
        let outcomes = try await deadLetterPublisher().publish(publishes)
        guard outcomes.allSatisfy(\.isConfirmed) else {
            throw PublishFailure("the session queue did not take \(outcomes.filter { !$0.isConfirmed }.count) deferred messages back")
        }
        totals.sentToBack += deliveries.count
        logger.info("deferred pairs sent to the back of their session", metadata: ["session": "\(integrationID)", "pairs": "\(deliveries.count)"])
    }

    /// Publishes copies to the dead-letter exchange with the reason in a header, confirmed,
    /// before the originals are acknowledged: nothing is dropped, even if we crash in between
    /// (the original is then redelivered and dead-lettered again).
    private mutating func deadLetter(_ letters: [(HeldDelivery, String)]) async throws {
        guard !letters.isEmpty else { return }
        let publishes = letters.map { delivery, reason in
            var message = delivery.message
            message.properties.headers[SessionConsumer.reasonHeader] = .string(reason)
            message.properties.headers[SessionConsumer.sessionHeader] = .string(integrationID)
            message.properties.headers[SessionConsumer.deadLetteredAtHeader] = .timestamp(UInt64(Date().timeIntervalSince1970))
            return AMQPPublish(exchange: Topology.deadLetterExchange, routingKey: consumer.session.routingKey, mandatory: true, message: message)
        }
        let outcomes = try await deadLetterPublisher().publish(publishes)
        guard outcomes.allSatisfy(\.isConfirmed) else {
            throw PublishFailure("the dead-letter exchange did not take \(outcomes.filter { !$0.isConfirmed }.count) messages")
        }
        for (delivery, reason) in letters {
            logger.warning("dead-lettered", metadata: ["message_id": "\(delivery.messageID)", "reason": "\(reason)"])
        }
    }

    /// The dead-letter channel, opened now if this is its first use.
    private mutating func deadLetterPublisher() async throws -> AMQPChannel {
        if let deadLetterChannel { return deadLetterChannel }
        let opened = try await deadLetterBroker.openChannel(confirms: true)
        deadLetterChannel = opened
        return opened
    }
}
