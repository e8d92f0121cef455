import AMQPClient
import Foundation
import Logging

/// How a worker takes and settles batches.
public struct WorkerOptions: Sendable {
    /// Messages per batch at most.
    public var batchSize: Int
    /// How long to wait for a batch to fill after its first message.
    public var batchWait: Duration
    /// Pause after a batch failed for a transient reason, doubled up to `maxBackoff`.
    public var backoff: Duration
    public var maxBackoff: Duration
    /// The partition queues' `x-delivery-limit`: the attempt that reaches it dead-letters the
    /// message itself, with its last error, instead of leaving that to the broker.
    public var deliveryLimit: Int
    /// Unacknowledged deliveries per partition consumer; twice the batch by default, so the next
    /// batch is already on its way while one is processed.
    public var prefetch: UInt16

    public init(batchSize: Int = 200, batchWait: Duration = .milliseconds(200), backoff: Duration = .milliseconds(500),
                maxBackoff: Duration = .seconds(30), deliveryLimit: Int = 5, prefetch: Int? = nil) {
        self.prefetch = UInt16(min(max(prefetch ?? batchSize * 2, batchSize, 1), 65_535))
        self.batchSize = max(batchSize, 1)
        self.batchWait = batchWait
        self.backoff = backoff
        self.maxBackoff = maxBackoff
        self.deliveryLimit = max(deliveryLimit, 1)
    }
}

/// Consumes one partition queue: batches in, pairs processed, dead letters sent with their
/// reason, the batch acknowledged only after its database work committed.
public struct PartitionConsumer: Sendable {
    public static let reasonHeader = "x-tsync-reason"

    let broker: AMQPConnection
    /// Where dead letters are published: a connection of its own in a worker, because RabbitMQ
    /// stops reading a publishing connection during a resource alarm, and on a shared one that
    /// would also hold back the acknowledgements that let the queues drain.
    let deadLetterBroker: AMQPConnection
    let partition: Topology.Partition
    let processor: PairProcessor
    let options: WorkerOptions
    let logger: Logger

    public init(
        broker: AMQPConnection, deadLetterBroker: AMQPConnection? = nil, partition: Topology.Partition, processor: PairProcessor,
        options: WorkerOptions = WorkerOptions(), logger: Logger
    ) {
        self.broker = broker
        self.deadLetterBroker = deadLetterBroker ?? broker
        self.partition = partition
        self.processor = processor
        self.options = options
        self.logger = logger
    }

    /// Totals, for progress reports and tests.
    public struct Totals: Sendable {
        public var batches = 0
        public var added = 0
        public var alreadyOnCampaign = 0
        public var deadLettered = 0
        public var submissionsCreated = 0
        public var failedBatches = 0
        /// Messages acknowledged for good: their pairs added or skipped, or dead-lettered.
        public var acknowledged = 0

        public init() {}

        mutating func add(_ other: Totals) {
            batches += other.batches
            added += other.added
            alreadyOnCampaign += other.alreadyOnCampaign
            deadLettered += other.deadLettered
            submissionsCreated += other.submissionsCreated
            failedBatches += other.failedBatches
            acknowledged += other.acknowledged
        }
    }

    /// Consumes until `shouldStop` says so between batches (or the consumer ends, or the
    /// dead-letter connection is lost), finishing and settling the batch in hand first.
    /// Unsettled deliveries go back to the queue when the channel closes.
    public func run(shouldStop: @escaping @Sendable () -> Bool, report: @escaping @Sendable (Totals) -> Void = { _ in }) async throws {
        let deadLetterChannel = try await deadLetterBroker.openChannel(confirms: true)
        let channel: AMQPChannel
        let consumer: AMQPConsumer
        do {
            channel = try await broker.openChannel()
            try await channel.setPrefetch(options.prefetch)
            consumer = try await channel.consume(queue: partition.queue)
        } catch {
            try? await deadLetterChannel.close()
            throw error
        }
        let buffer = DeliveryBuffer()
        let pump = Task {
            do {
                for try await delivery in consumer { buffer.push(delivery) }
                buffer.end(nil)
            } catch {
                buffer.end(error)
            }
        }
        // However the loop ends, the consumer goes and its channel closes: a channel left open
        // would keep its unacknowledged deliveries from the partition's next consumer.
        var failure: (any Error)?
        do {
            try await consume(buffer, on: channel, deadLetters: deadLetterChannel, shouldStop: shouldStop, report: report)
        } catch {
            failure = error
        }
        pump.cancel()
        try? await consumer.cancel()
        try? await channel.close()
        try? await deadLetterChannel.close()
        if let failure { throw failure }
    }

    private func consume(
        _ buffer: DeliveryBuffer, on channel: AMQPChannel, deadLetters deadLetterChannel: AMQPChannel,
        shouldStop: @Sendable () -> Bool, report: @Sendable (Totals) -> Void
    ) async throws {
        var totals = Totals()
        var backoff = options.backoff
        while !shouldStop(), deadLetterBroker.isOpen {
            guard let batch = try await buffer.nextBatch(max: options.batchSize, wait: options.batchWait) else { break }
            if batch.isEmpty { continue }  // idle: look at the stop flag again
            let started = ContinuousClock.now
            do {
                try await handle(batch, on: channel, deadLetters: deadLetterChannel, totals: &totals)
                FleetMetrics.batchDuration(partition.queue).recordSeconds((ContinuousClock.now - started).timeInterval)
                backoff = options.backoff
            } catch {
                totals.failedBatches += 1
                FleetMetrics.batchesFailed(partition.queue).increment()
                logger.warning("batch failed; it goes back to the queue", metadata: ["partition": "\(partition.queue)", "error": "\(error)"])
                let exhausted = try await giveBack(batch, on: channel, deadLetters: deadLetterChannel, lastError: "\(error)")
                totals.deadLettered += exhausted
                totals.acknowledged += exhausted
                try await Task.sleep(for: backoff)
                backoff = min(backoff * 2, options.maxBackoff)
            }
            report(totals)
        }
    }

    private func handle(_ batch: [AMQPDelivery], on channel: AMQPChannel, deadLetters deadLetterChannel: AMQPChannel, totals: inout Totals) async throws {
        var pairs: [PairMessage] = []
        var deadLetters: [(AMQPDelivery, String)] = []
        var deliveryOf: [String: AMQPDelivery] = [:]
        for delivery in batch {
            do {
                let pair = try PairMessage.decode(delivery.message)
                pairs.append(pair)
                deliveryOf[pair.messageID] = delivery
            } catch {
                deadLetters.append((delivery, "malformed message: \(error)"))
            }
        }
        let outcome = try await processor.process(pairs)
        for (pair, reason) in outcome.deadLetters {
            if let delivery = deliveryOf[pair.messageID] { deadLetters.append((delivery, reason)) }
        }
        try await deadLetter(deadLetters, on: deadLetterChannel)
        // Everything in the batch is settled: committed, skipped or dead-lettered.
        try await channel.ack(batch.map(\.deliveryTag).max()!, multiple: true)
        totals.batches += 1
        totals.acknowledged += batch.count
        FleetMetrics.pairsAdded(partition.queue).increment(by: outcome.added.count)
        FleetMetrics.pairsSkipped(partition.queue).increment(by: outcome.alreadyOnCampaign)
        FleetMetrics.deadLettered(partition.queue).increment(by: deadLetters.count)
        FleetMetrics.submissionsCreated(partition.queue).increment(by: outcome.submissionsCreated)
        totals.added += outcome.added.count
        totals.alreadyOnCampaign += outcome.alreadyOnCampaign
        totals.deadLettered += deadLetters.count
        totals.submissionsCreated += outcome.submissionsCreated
    }

    /// A failed batch: each message goes back to its queue, except those on their last
    /// allowed delivery, which go to the dead-letter queue with the error that stopped them.
    /// Returns how many were dead-lettered.
    private func giveBack(_ batch: [AMQPDelivery], on channel: AMQPChannel, deadLetters deadLetterChannel: AMQPChannel, lastError: String) async throws -> Int {
        let exhausted = batch.filter { deliveryCount($0) + 1 >= options.deliveryLimit }
        try await deadLetter(exhausted.map { ($0, "gave up after \(options.deliveryLimit) attempts: \(lastError)") }, on: deadLetterChannel)
        let exhaustedTags = Set(exhausted.map(\.deliveryTag))
        for delivery in batch where !exhaustedTags.contains(delivery.deliveryTag) {
            try await channel.nack(delivery.deliveryTag, requeue: true)
        }
        for delivery in exhausted { try await channel.ack(delivery.deliveryTag) }
        return exhausted.count
    }

    /// Earlier deliveries of this message, as the quorum queue counts them.
    private func deliveryCount(_ delivery: AMQPDelivery) -> Int {
        Int(delivery.message.properties.headers["x-delivery-count"]?.intValue ?? (delivery.redelivered ? 1 : 0))
    }

    /// Publishes copies to the dead-letter exchange with the reason in a header, confirmed,
    /// before the originals are acknowledged: nothing is dropped, even if we crash in between
    /// (the original is then redelivered and dead-lettered again).
    private func deadLetter(_ letters: [(AMQPDelivery, String)], on channel: AMQPChannel) async throws {
        guard !letters.isEmpty else { return }
        let publishes = letters.map { delivery, reason in
            var message = delivery.message
            message.properties.headers[Self.reasonHeader] = .string(reason)
            message.properties.headers["x-tsync-partition"] = .string(partition.queue)
            message.properties.headers["x-tsync-dead-lettered-at"] = .timestamp(UInt64(Date().timeIntervalSince1970))
            return AMQPPublish(exchange: Topology.deadLetterExchange, routingKey: partition.routingKey, mandatory: true, message: message)
        }
        let outcomes = try await channel.publish(publishes)
        guard outcomes.allSatisfy(\.isConfirmed) else {
            throw PublishFailure("the dead-letter exchange did not take \(outcomes.filter { !$0.isConfirmed }.count) messages")
        }
        for (delivery, reason) in letters {
            logger.warning("dead-lettered", metadata: ["message_id": "\(delivery.message.properties.messageID ?? "?")", "reason": "\(reason)"])
        }
    }
}
