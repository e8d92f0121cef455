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
        var deadLetters: [(HeldDelivery, String)] = []
        var waiting: [PairKey: PlacesInBatch] = [:]
        for (place, delivery) in batch.enumerated() {
            switch delivery.content {
            case .malformed(_, let reason):
                deadLetters.append((delivery, reason))
            case .pair(let pair, _, _) where pair.integrationId != integrationID:
                deadLetters.append((delivery, "pair of integration \(pair.integrationId) in the session of \(integrationID)"))
            case .pair(let pair, _, _):
                if waiting[pair.pair] == nil { waiting[pair.pair] = PlacesInBatch(place) } else { waiting[pair.pair]!.append(place) }
            }
        }
        /// The deliveries of a pair that leaves `waiting` unsettled (dead-lettered).
        func removeWaiting(_ pair: PairKey) -> [HeldDelivery] {
            waiting.removeValue(forKey: pair)?.all.map { batch[$0] } ?? []
        }
        var attempts: [PairKey: Int] = [:]
        var backoff = options.backoff
        var outcomes = PairBatchOutcome()
        var onlyDeferredSince: ContinuousClock.Instant?
        while !waiting.isEmpty {
            let outcome: PairBatchOutcome
            do {
                outcome = try await consumer.processor.process(Array(waiting.keys), integrationID: integrationID)
            } catch {
                switch FailureAction(error) {
                case .endSession:
                    throw error
                case .deadLetter:
                    logger.error("batch cannot be processed; dead-lettering it", metadata: ["session": "\(integrationID)", "error": "\(error)"])
                    for places in waiting.values { deadLetters += places.all.map { (batch[$0], "\(error)") } }
                    waiting = [:]
                    continue
                case .retry:
                    // A failure the whole batch shares: nobody's attempt, however long it lasts.
                    // Shutting down during it hands the batch back (the broker counts one delivery).
                    totals.retries += 1
                    FleetMetrics.retries(integrationID).increment()
                    logger.warning("batch failed; retrying in place", metadata: ["session": "\(integrationID)", "error": "\(error)", "pause": "\(backoff)"])
                    try await pause(&backoff, orGiveUpWith: error)
                    continue
                }
            }
            let now = Date()
            for pair in outcome.added {
                if let changed = waiting[pair]?.all.compactMap({ batch[$0].changedAt }).max() {
                    FleetMetrics.pairFreshness(integrationID).record(max(0, now.timeIntervalSince(changed)))
                }
            }
            for pair in outcome.added + outcome.alreadyOnCampaign { waiting[pair] = nil }
            for (pair, reason) in outcome.deadLetters {
                deadLetters += removeWaiting(pair).map { ($0, reason) }
            }
            // Deferred pairs stay in `waiting`: tried again after the pause, spending nothing.
            for (pair, error) in outcome.retry {
                attempts[pair, default: 0] += 1
                if attempts[pair]! >= options.pairAttempts {
                    deadLetters += removeWaiting(pair).map { ($0, "gave up after \(options.pairAttempts) attempts: \(error)") }
                }
            }
            outcomes.added += outcome.added
            outcomes.alreadyOnCampaign += outcome.alreadyOnCampaign
            outcomes.submissionsCreated += outcome.submissionsCreated
            onlyDeferredSince = outcome.retry.isEmpty && !waiting.isEmpty ? (onlyDeferredSince ?? .now) : nil
            if let since = onlyDeferredSince, ContinuousClock.now - since >= options.deferInPlace {
                try await sendToBack(waiting.values.flatMap { $0.all.map { batch[$0] } })
                waiting = [:]
                continue
            }
            if !waiting.isEmpty {
                totals.retries += 1
                FleetMetrics.retries(integrationID).increment()
                let failure = outcome.retry.first?.error
                    ?? BullhornError(.ambiguousWrite, endpoint: "PUT entity/JobSubmission", "an earlier creation may still land")
                logger.warning(
                    "pairs failed; retrying them in place",
                    metadata: ["session": "\(integrationID)", "pairs": "\(waiting.count)", "error": "\(failure)"])
                try await pause(&backoff, orGiveUpWith: failure)
            }
        }
        try await deadLetter(deadLetters)
        // Every pair of the batch is settled: added, skipped or dead-lettered.
        try await beforeAcknowledging()
        try await channel.ack(batch.map(\.deliveryTag).max()!, multiple: true)
        FleetMetrics.pairsAdded(integrationID).increment(by: outcomes.added.count)
        FleetMetrics.pairsSkipped(integrationID).increment(by: outcomes.alreadyOnCampaign.count)
        FleetMetrics.deadLettered(integrationID).increment(by: deadLetters.count)
        FleetMetrics.submissionsCreated(integrationID).increment(by: outcomes.submissionsCreated)
        totals.batches += 1
        totals.acknowledged += batch.count
        totals.added += outcomes.added.count
        totals.alreadyOnCampaign += outcomes.alreadyOnCampaign.count
        totals.deadLettered += deadLetters.count
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

/// Where one pair's deliveries are in its batch: nearly always one place, held inline, so that
/// a batch of 200 pairs is not 200 arrays of one delivery (8,000 deliveries in hand kept 1.5 MiB
/// of them, and the pairs already on their campaigns paid an allocation each).
private struct PlacesInBatch {
    private let first: Int
    private var more: [Int] = []

    init(_ place: Int) {
        first = place
    }

    mutating func append(_ place: Int) {
        more.append(place)
    }

    var all: [Int] { [first] + more }
}
