import AMQPClient
import Foundation
import Logging
import PostgresClient
import StableHashing
import Synchronization

/// A fleet member: holds a fair share of the partitions (leases in PostgreSQL), runs one
/// `PartitionConsumer` per partition it holds, and rebalances every `tick`: a worker over its
/// share finishes the batch in hand, cancels, and only then releases the lease; a worker under
/// its share takes free partitions. Single-active-consumer on the queues stays as the broker's
/// own guard against two consumers on one partition.
public final class PartitionWorker: Sendable {
    public let workerID: String
    let databaseURL: String
    /// Opens a new broker connection (the worker closes it when done): at start, and again
    /// whenever the current one has died. A worker keeps two: one its consumers receive and
    /// acknowledge on, one for dead letters (RabbitMQ stops reading a publishing connection
    /// during a resource alarm; on a shared one that would also hold back the acknowledgements
    /// that drain the queues).
    let connectBroker: @Sendable () async throws -> AMQPConnection
    private let brokers = Mutex<BrokerConnections?>(nil)
    let topology: Topology
    let processor: PairProcessor
    let options: WorkerOptions
    let tick: Duration
    let heartbeatExpiry: Duration
    let logger: Logger
    private let stopping = StopFlag()
    private let held = Mutex<[Int]>([])
    private let lastTick = Mutex<ContinuousClock.Instant?>(nil)
    /// Latest totals of every consumer this worker has run, by launch number.
    private let consumerTotals = Mutex<(launches: Int, totals: [Int: PartitionConsumer.Totals])>((0, [:]))

    /// True while the lease loop is turning: for `/healthz`.
    public var isHealthy: Bool {
        guard let last = lastTick.withLock({ $0 }) else { return false }
        return ContinuousClock.now - last < tick * 3 + .seconds(5)
    }

    public init(
        workerID: String, databaseURL: String, connectBroker: @escaping @Sendable () async throws -> AMQPConnection,
        topology: Topology, processor: PairProcessor,
        options: WorkerOptions = WorkerOptions(), tick: Duration = .seconds(1), heartbeatExpiry: Duration = .seconds(6), logger: Logger
    ) {
        self.workerID = workerID
        self.databaseURL = databaseURL
        self.connectBroker = connectBroker
        self.topology = topology
        self.processor = processor
        self.options = options
        self.tick = tick
        self.heartbeatExpiry = heartbeatExpiry
        self.logger = logger
    }

    /// Asks the worker to finish its batches, release its partitions and return from `run`.
    public func stop() {
        stopping.set()
    }

    /// `stop()` was called or the task running the worker was cancelled; either way the worker
    /// winds down the same way, so a caller that gives up (a task group unwinding after an
    /// error) is never left waiting on a worker that keeps consuming.
    private var shouldStop: Bool { stopping.isSet || Task.isCancelled }

    /// The partitions held right now.
    public var partitions: [Int] { held.withLock { $0 } }

    /// What this worker's consumers have settled since it started (batches, pairs added,
    /// skipped, dead-lettered), summed over every partition it has held.
    public var totals: PartitionConsumer.Totals {
        consumerTotals.withLock { state in state.totals.values.reduce(into: PartitionConsumer.Totals()) { $0.add($1) } }
    }

    /// Runs until `stop()` or cancellation. Losing the lease session (a database restart, a network cut) loses
    /// every lease: the consumers finish their batches in hand and stop, then the worker opens a
    /// new session and takes its share again.
    public func run() async throws {
        let count = topology.partitions.count
        let start = Int(FNV1a.hash(workerID.utf8) % UInt64(count))
        defer { held.withLock { $0 = [] } }
        var pause = Duration.milliseconds(200)
        while !shouldStop {
            let leases: PartitionLeases
            do {
                leases = PartitionLeases(
                    workerID: workerID,
                    connection: try await PostgresConnection.connect(databaseURL, applicationName: "tearsheet-sync worker"),
                    heartbeatExpiry: heartbeatExpiry)
            } catch {
                logger.warning("database unreachable; retrying", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(10))
                continue
            }
            pause = .milliseconds(200)
            var consumers: [Int: Consumer] = [:]
            do {
                try await rebalance(leases: leases, consumers: &consumers, count: count, start: start)
            } catch {
                logger.warning("lease session lost; stopping consumers", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                for consumer in consumers.values { consumer.stop.set() }
                for consumer in consumers.values { _ = try? await consumer.task.value }
                held.withLock { $0 = [] }
                await leases.resign()
                continue
            }
            // Every consumer finishes its batch in hand at the same time, then the leases go.
            for consumer in consumers.values { consumer.stop.set() }
            for partition in consumers.keys.sorted() { try? await hand(back: partition, from: &consumers, leases: leases) }
            await leases.resign()
        }
        // The connections `connectBroker` opened are the worker's own.
        if let open = brokers.withLock({ current in defer { current = nil }; return current }) {
            await open.consume.close()
            await open.deadLetters.close()
        }
    }

    private func rebalance(leases: PartitionLeases, consumers: inout [Int: Consumer], count: Int, start: Int) async throws {
        while !shouldStop {
            // A consumer that ended on its own (its channel or connection failed) gives its
            // lease back; the partition is taken again on a later tick.
            for (partition, consumer) in consumers where consumer.finished.isSet {
                try await hand(back: partition, from: &consumers, leases: leases)
            }
            let live = try await leases.heartbeat(holding: consumers.keys.sorted())
            guard let broker = await liveBrokers() else {
                // No broker: consumers of the dead connection have ended and handed their
                // partitions back above; hold none until the broker answers again.
                held.withLock { $0 = consumers.keys.sorted() }
                try? await Task.sleep(for: tick)
                continue
            }
            let share = PartitionLeases.share(partitions: count, liveWorkers: live)
            if consumers.count > share {
                let surplus = consumers.keys.sorted(by: >).prefix(consumers.count - share)
                for partition in surplus { consumers[partition]?.stop.set() }
                for partition in surplus { try await hand(back: partition, from: &consumers, leases: leases) }
            }
            if consumers.count < share {
                for offset in 0..<count where consumers.count < share {
                    let index = (start + offset) % count
                    guard consumers[index] == nil, try await leases.tryAcquire(index) else { continue }
                    consumers[index] = launch(topology.partitions[index], on: broker)
                    logger.info("took partition", metadata: ["worker": "\(workerID)", "partition": "\(index)"])
                }
            }
            held.withLock { $0 = consumers.keys.sorted() }
            FleetMetrics.partitionsHeld(workerID).record(consumers.count)
            lastTick.withLock { $0 = .now }
            try? await Task.sleep(for: tick)
        }
    }

    /// Stops a partition's consumer after its batch in hand, then releases the lease.
    private func hand(back partition: Int, from consumers: inout [Int: Consumer], leases: PartitionLeases) async throws {
        guard let consumer = consumers.removeValue(forKey: partition) else { return }
        consumer.stop.set()
        _ = try? await consumer.task.value
        try await leases.release(partition)
        logger.info("released partition", metadata: ["worker": "\(workerID)", "partition": "\(partition)"])
    }

    struct BrokerConnections: Sendable {
        let consume: AMQPConnection
        let deadLetters: AMQPConnection

        var areOpen: Bool { consume.isOpen && deadLetters.isOpen }
    }

    /// The open broker connections, a dead one replaced by a new one (the consumers that used
    /// it end, and are started again on the new pair); nil while the broker cannot be reached
    /// (the next tick tries again).
    private func liveBrokers() async -> BrokerConnections? {
        let current = brokers.withLock { $0 }
        if let current, current.areOpen { return current }
        do {
            let consume = current?.consume.isOpen == true ? current!.consume : try await connectBroker()
            let deadLetters = current?.deadLetters.isOpen == true ? current!.deadLetters : try await connectBroker()
            let fresh = BrokerConnections(consume: consume, deadLetters: deadLetters)
            brokers.withLock { $0 = fresh }
            logger.info("connected to the broker", metadata: ["worker": "\(workerID)"])
            return fresh
        } catch {
            logger.warning("broker unreachable; retrying", metadata: ["worker": "\(workerID)", "error": "\(error)"])
            return nil
        }
    }

    private func launch(_ partition: Topology.Partition, on broker: BrokerConnections) -> Consumer {
        let flag = StopFlag()
        let finished = StopFlag()
        let consumer = PartitionConsumer(
            broker: broker.consume, deadLetterBroker: broker.deadLetters, partition: partition, processor: processor, options: options, logger: logger)
        let logger = logger
        let launch = consumerTotals.withLock { state in
            state.launches += 1
            return state.launches
        }
        let task = Task { [self] in
            defer { finished.set() }
            do {
                try await consumer.run(shouldStop: { flag.isSet }, report: { totals in self.consumerTotals.withLock { $0.totals[launch] = totals } })
            } catch {
                logger.error("partition consumer failed", metadata: ["partition": "\(partition.queue)", "error": "\(error)"])
                throw error
            }
        }
        return Consumer(stop: flag, finished: finished, task: task)
    }

    struct Consumer {
        let stop: StopFlag
        let finished: StopFlag
        let task: Task<Void, any Error>
    }
}
