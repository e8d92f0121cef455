import AMQPClient
import Foundation
import Logging

/// Consumes one session (one integration's queue) while its worker holds the lease: batches
/// in publish order, each pair settled on its own (added, skipped or dead-lettered with its
/// reason), failures that may pass retried in place, the batch acknowledged once every pair
/// in it is settled.
///
/// It ends when its queue has stayed empty for `sessionIdleTimeout` (`.drained`), when asked
/// to stop (`.stopped`: the consumer is cancelled first, then the deliveries already
/// prefetched are processed, so that handing the session over costs no message a delivery),
/// or by throwing when its channel or connection is lost (the broker then returns the
/// unacknowledged messages, each one delivery spent).
public struct SessionConsumer: Sendable {
    public static let reasonHeader = "x-tsync-reason"
    public static let sessionHeader = "x-tsync-session"
    public static let deadLetteredAtHeader = "x-tsync-dead-lettered-at"

    let broker: AMQPConnection
    /// Where dead letters are published: a connection of its own in a worker, because RabbitMQ
    /// stops reading a publishing connection during a resource alarm, and on a shared one that
    /// would also hold back the acknowledgements that let the queues drain.
    let deadLetterBroker: AMQPConnection
    let session: SessionQueue
    let processor: PairProcessor
    let options: WorkerOptions
    let logger: Logger
    /// True while other sessions with work wait for a free slot: an empty queue is then given
    /// back sooner (`busyIdleTimeout`).
    let othersWaiting: @Sendable () -> Bool

    public init(
        broker: AMQPConnection, deadLetterBroker: AMQPConnection? = nil, session: SessionQueue, processor: PairProcessor,
        options: WorkerOptions = WorkerOptions(), logger: Logger, othersWaiting: @escaping @Sendable () -> Bool = { false }
    ) {
        self.othersWaiting = othersWaiting
        self.broker = broker
        self.deadLetterBroker = deadLetterBroker ?? broker
        self.session = session
        self.processor = processor
        self.options = options
        self.logger = logger
    }

    public enum Ending: Sendable, Equatable {
        /// The queue was found empty, and `session_work` says so.
        case drained
        /// Asked to stop; its pairs in hand were finished first.
        case stopped
    }

    /// Totals, for progress reports and tests.
    public struct Totals: Sendable {
        public var batches = 0
        public var added = 0
        public var alreadyOnCampaign = 0
        public var deadLettered = 0
        public var submissionsCreated = 0
        /// Attempts that failed for a reason that may pass, and were tried again in place.
        public var retries = 0
        /// Deferred pairs whose messages went to the back of the session queue as new ones.
        public var sentToBack = 0
        /// Messages acknowledged for good: their pairs added or skipped, or dead-lettered.
        public var acknowledged = 0

        public init() {}

        mutating func add(_ other: Totals) {
            batches += other.batches
            added += other.added
            alreadyOnCampaign += other.alreadyOnCampaign
            deadLettered += other.deadLettered
            submissionsCreated += other.submissionsCreated
            retries += other.retries
            sentToBack += other.sentToBack
            acknowledged += other.acknowledged
        }
    }

    /// Consumes until the session is drained or `shouldStop` (a hand-over: no new batch, the
    /// one in hand is settled, through its retries). `shuttingDown` (the process is stopping;
    /// `shouldStop` when not given) also gives up the batch in hand between retries: it goes
    /// back to the queue, one delivery spent on each of its messages.
    public func run(
        shouldStop: @escaping @Sendable () -> Bool, shuttingDown: (@Sendable () -> Bool)? = nil,
        report: @escaping @Sendable (Totals) -> Void = { _ in }
    ) async throws -> Ending {
        let budget = try await IntegrationStore(pool: processor.pool).load(ids: [session.integrationID]).first?.callsPerMinute
        let prefetch = options.prefetch(callsPerMinute: budget)
        // At most half the window: the next batch arrives while one is processed, and a slow
        // session's rows land every few seconds rather than once its window is done.
        let batchSize = min(options.batchSize, max(1, Int(prefetch) / 2))
        let channel = try await broker.openChannel()
        let consumer: AMQPConsumer
        do {
            try await session.declare(on: channel)
            try await channel.setPrefetch(prefetch)
            consumer = try await channel.consume(queue: session.queue)
        } catch {
            try? await channel.close()
            throw error
        }
        let (buffer, pump) = DeliveryBuffer.filled(from: consumer, as: HeldDelivery.init)
        let shuttingDown = shuttingDown ?? shouldStop
        // Waiting out a retry is pointless once either connection is gone: the batch cannot be
        // acknowledged, and the broker hands it to the session's next consumer.
        let giveUp: @Sendable () -> Bool = { [broker, deadLetterBroker] in shuttingDown() || !broker.isOpen || !deadLetterBroker.isOpen }
        var settler = BatchSettler(
            consumer: self, channel: channel, deadLetterBroker: deadLetterBroker, shouldStop: shouldStop, giveUp: giveUp)
        // However the loop ends, the consumer goes and its channel closes: a channel left open
        // would keep its unacknowledged deliveries from the session's next consumer.
        do {
            let ending = try await consume(buffer, consumer: consumer, batchSize: batchSize, settler: &settler, report: report)
            pump.cancel()
            try await channel.close()
            try? await settler.deadLetterChannel?.close()
            return ending
        } catch {
            pump.cancel()
            try? await consumer.cancel()
            try? await channel.close()
            try? await settler.deadLetterChannel?.close()
            throw error
        }
    }

    private func consume(
        _ buffer: DeliveryBuffer<HeldDelivery>, consumer: AMQPConsumer, batchSize: Int, settler: inout BatchSettler,
        report: @Sendable (Totals) -> Void
    ) async throws -> Ending {
        let work = SessionWorkStore(pool: processor.pool)
        var idleSince = ContinuousClock.now
        var drainedThrough: Int64?
        var cancelled = false
        let shouldStop = settler.shouldStop
        while !cancelled {
            if settler.shouldStop() || !deadLetterBroker.isOpen { break }
            let idleTimeout = othersWaiting() ? options.busyIdleTimeout : options.sessionIdleTimeout
            if drainedThrough == nil, ContinuousClock.now - idleSince >= idleTimeout {
                // Read the session's sequence before looking at the queue (see SessionWorkStore).
                // Without the database the session simply stays: nothing is handed back.
                if let sequence = try? await work.sequence(of: session.integrationID) {
                    drainedThrough = sequence
                    break
                }
                idleSince = .now
            }
            guard let batch = try await buffer.nextBatch(max: batchSize, wait: options.batchWait, idle: min(idleTimeout, .milliseconds(250))) else {
                throw AMQPError(.consumerCancelled, "the broker ended the consumer of \(session.queue)")
            }
            if batch.isEmpty { continue }
            try await settler.settle(batch) {
                // Stopping: cancel before this acknowledgement makes room in the prefetch
                // window, so that no delivery races the cancel (one that arrives after the
                // cancel-ok is given back, and that costs it a delivery).
                if shouldStop() || !deadLetterBroker.isOpen {
                    try await consumer.cancel()
                    cancelled = true
                }
            }
            report(settler.totals)
            idleSince = .now
        }
        // Stop the deliveries, then finish the ones already here: nothing handed back.
        if !cancelled { try await consumer.cancel() }
        var leftovers = 0
        while let batch = try await buffer.nextBatch(max: batchSize, wait: .zero, idle: .milliseconds(250)) {
            if batch.isEmpty { continue }
            leftovers += batch.count
            try await settler.settle(batch)
            report(settler.totals)
        }
        guard let drainedThrough, leftovers == 0 else { return .stopped }
        let waiting = try await settler.channel.declareQueue(session.queue, passive: true).messageCount
        guard waiting == 0 else { return .stopped }
        // Not recorded (the database just went): the session stays waiting, and the next
        // worker to take it finds the queue empty and records it then.
        guard (try? await work.drained(session.integrationID, through: drainedThrough)) != nil else { return .stopped }
        return .drained
    }
}
