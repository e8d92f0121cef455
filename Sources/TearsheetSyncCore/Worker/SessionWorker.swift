import AMQPClient
import Foundation
import Logging
import PostgresClient
import Synchronization

/// A fleet member: accepts sessions that have work (leases in PostgreSQL), up to its fair
/// share and its limit, and runs a `SessionConsumer` for each in a task of its own, so that
/// no session waits behind another. Every `tick` it gives back sessions whose queue is empty
/// (the consumer ends by itself), sessions over its share or held for longer than a slice
/// while others wait (after their pairs in hand), and takes the longest-waiting free ones.
/// Single-active-consumer on the session queues stays as the broker's own guard.
public final class SessionWorker: Sendable {
    public let workerID: String
    let databaseURL: String
    /// Opens a new broker connection (the worker closes it when done): at start, and again
    /// whenever the current one has died. A worker keeps two: one its consumers receive and
    /// acknowledge on, one for dead letters (RabbitMQ stops reading a publishing connection
    /// during a resource alarm; on a shared one that would also hold back the acknowledgements
    /// that drain the queues).
    let connectBroker: @Sendable () async throws -> AMQPConnection
    private let brokers = Mutex<BrokerConnections?>(nil)
    let processor: PairProcessor
    let options: WorkerOptions
    let tick: Duration
    let heartbeatExpiry: Duration
    let logger: Logger
    private let stopping = StopFlag()
    private let held = Mutex<[String]>([])
    private let lastTick = Mutex<ContinuousClock.Instant?>(nil)
    /// Sessions with work wait that no worker holds (as of the last tick).
    private let othersWaiting = Atomic<Bool>(false)
    /// Latest totals of every consumer this worker has run, by launch number.
    private let consumerTotals = Mutex<(launches: Int, totals: [Int: SessionConsumer.Totals])>((0, [:]))

    /// True while the lease loop is turning with a broker to work with: for `/healthz`.
    public var isHealthy: Bool {
        guard let last = lastTick.withLock({ $0 }) else { return false }
        return ContinuousClock.now - last < tick * 3 + .seconds(5)
    }

    public init(
        workerID: String, databaseURL: String, connectBroker: @escaping @Sendable () async throws -> AMQPConnection,
        processor: PairProcessor, options: WorkerOptions = WorkerOptions(), tick: Duration = .milliseconds(500),
        heartbeatExpiry: Duration = .seconds(6), logger: Logger
    ) {
        self.workerID = workerID
        self.databaseURL = databaseURL
        self.connectBroker = connectBroker
        self.processor = processor
        self.options = options
        self.tick = tick
        self.heartbeatExpiry = heartbeatExpiry
        self.logger = logger
    }

    /// Asks the worker to finish its pairs in hand, release its sessions and return from `run`.
    public func stop() {
        stopping.set()
    }

    /// `stop()` was called or the task running the worker was cancelled; either way the worker
    /// winds down the same way, so a caller that gives up is never left waiting on it.
    private var shouldStop: Bool { stopping.isSet || Task.isCancelled }

    /// The sessions (integration ids) held right now.
    public var sessions: [String] { held.withLock { $0 } }

    /// What this worker's consumers have settled since it started, summed over every session.
    public var totals: SessionConsumer.Totals {
        consumerTotals.withLock { state in state.totals.values.reduce(into: SessionConsumer.Totals()) { $0.add($1) } }
    }

    /// Runs until `stop()` or cancellation.
    ///
    /// Losing the lease session (a database restart, a network cut) loses every lease, but
    /// not the sessions: single-active-consumer keeps any other worker's consumer idle while
    /// ours is open, so the consumers carry on (their pairs wait in place while the database
    /// is away) and the worker opens a new lease session and takes their leases again. A
    /// lease another worker took meanwhile stops its session after the pairs in hand.
    public func run() async throws {
        defer { held.withLock { $0 = [] } }
        var running: [String: RunningSession] = [:]
        var pause = Duration.milliseconds(200)
        while !shouldStop {
            let leases: SessionLeases
            do {
                leases = try await SessionLeases.connect(workerID: workerID, databaseURL: databaseURL, heartbeatExpiry: heartbeatExpiry)
            } catch {
                logger.warning("database unreachable; retrying", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                await stopping.sleep(for: pause)
                pause = min(pause * 2, .seconds(10))
                continue
            }
            do {
                if try await leases.register() > 0 {
                    logger.warning("ended this worker's earlier lease session, which had gone silent", metadata: ["worker": "\(workerID)"])
                }
                pause = .milliseconds(200)
                for (integrationID, session) in running where !session.stop.isSet {
                    if try await !leases.tryAcquire(integrationID) {
                        logger.warning("another worker took the lease while ours was lost; giving the session up", metadata: ["session": "\(integrationID)"])
                        session.stop.set()
                    }
                }
                try await turn(leases: leases, running: &running)
            } catch {
                logger.warning(
                    "lease session lost; sessions carry on while it is reopened", metadata: ["worker": "\(workerID)", "error": "\(error)"])
                await leases.resign()
                await stopping.sleep(for: pause)
                pause = min(pause * 2, .seconds(10))
                continue
            }
            // Stopping: every consumer finishes its pairs in hand at the same time, then the leases go.
            stopping.set()  // also when cancelled: batches waiting on a retry are given up
            for session in running.values { session.stop.set() }
            for (integrationID, session) in running {
                _ = await session.task.result
                _ = try? await leases.release(integrationID)
            }
            running = [:]
            held.withLock { $0 = [] }
            await leases.resign()
        }
        // Cancelled while the lease session was down: the sessions still end before we return.
        stopping.set()
        for session in running.values { session.stop.set() }
        for session in running.values { _ = await session.task.result }
        // The connections `connectBroker` opened are the worker's own.
        if let open = brokers.withLock({ current in defer { current = nil }; return current }) {
            await open.consume.close()
            await open.deadLetters.close()
        }
    }

    /// The lease loop: the only user of the lease connection.
    private func turn(leases: SessionLeases, running: inout [String: RunningSession]) async throws {
        let work = SessionWorkStore(pool: processor.pool)
        while !shouldStop {
            // Sessions whose consumer ended (drained, stopped, or its channel failed) go back:
            // out of `sessions` first, then the lease, so that no one sees it in two hands.
            let ended = running.filter { $0.value.finished.isSet }
            for integrationID in ended.keys { running[integrationID] = nil }
            held.withLock { $0 = running.keys.sorted() }
            for (integrationID, session) in ended {
                _ = try await leases.release(integrationID)  // false when the lease was lost meanwhile
                switch await session.task.result {
                case .success(.drained):
                    logger.info("session drained and given back", metadata: ["session": "\(integrationID)"])
                case .success(.stopped):
                    logger.info("session given back with work left", metadata: ["session": "\(integrationID)"])
                    // Given back with work left (a slice, a rebalance): behind the sessions
                    // that were waiting, so that this worker does not take it straight back.
                    if !shouldStop { try await work.sendToBack(integrationID) }
                case .failure(let error):
                    logger.warning("session ended by an error", metadata: ["session": "\(integrationID)", "error": "\(error)"])
                }
            }
            held.withLock { $0 = running.keys.sorted() }
            FleetMetrics.sessionsHeld(workerID).record(running.count)
            guard let broker = await liveBrokers() else {
                // No broker: consumers of the dead connection end and are released above, and
                // the worker leaves the fleet's count (and is unhealthy) until the broker answers,
                // so that the others' share covers every session (issue 11, finding 5).
                try await leases.withdraw()
                _ = try await leases.waitForWork(upTo: tick)
                continue
            }
            let fleet = try await leases.heartbeat(holding: running.keys.sorted())
            lastTick.withLock { $0 = .now }
            let waitingCount = try await work.waitingCount()
            othersWaiting.store(waitingCount > fleet.sessionsHeld, ordering: .relaxed)
            let share = SessionLeases.share(waitingSessions: waitingCount, liveWorkers: fleet.liveWorkers, limit: options.maxSessions)
            var active = running.filter { !$0.value.stop.isSet }
            // Over the share (workers joined): give back the sessions held longest.
            // Which held sessions still have work is asked only when some may have to go.
            if active.count > share {
                let withWork = try await work.withWork(Array(active.keys))
                for integrationID in Self.overShare(active.mapValues(\.since), withWork: withWork, share: share) {
                    active.removeValue(forKey: integrationID)?.stop.set()
                    logger.info("giving a session back to balance the fleet", metadata: ["session": "\(integrationID)"])
                }
            }
            // Sessions with work that nobody holds, and this worker full: the longest held
            // beyond its slice makes room.
            if waitingCount > fleet.sessionsHeld, active.count >= share,
                let (integrationID, session) = active.min(by: { $0.value.since < $1.value.since }),
                ContinuousClock.now - session.since >= options.sessionSlice
            {
                session.stop.set()
                active[integrationID] = nil
                logger.info("giving a session back after its slice: others wait", metadata: ["session": "\(integrationID)"])
            }
            if active.count < share {
                // The longest waiting that nobody holds: with many workers, the oldest waiting
                // sessions are mostly held already.
                let free = try await work.waiting(limit: 2_000).filter { !fleet.heldKeys.contains(SessionLeases.key($0.integrationID)) }
                for candidate in free where active.count < share {
                    guard running[candidate.integrationID] == nil, try await leases.tryAcquire(candidate.integrationID) else { continue }
                    let session = launch(SessionQueue(integrationID: candidate.integrationID), on: broker)
                    running[candidate.integrationID] = session
                    active[candidate.integrationID] = session
                    logger.info("accepted session", metadata: ["worker": "\(workerID)", "session": "\(candidate.integrationID)"])
                }
            }
            held.withLock { $0 = running.keys.sorted() }
            // The next turn comes after `tick`, or as soon as a session gets work.
            _ = try await leases.waitForWork(upTo: tick)
        }
    }

    /// The sessions to give back to come down to `share`, the longest held first. Only the
    /// sessions that still have work count: one whose drain is recorded is leaving, and the
    /// fleet's waiting count, of which `share` is made, no longer has it. Counted, it made a
    /// worker give back sessions with work while others drained (a lone worker holding 200
    /// sessions shed some and took them back).
    static func overShare(_ held: [String: ContinuousClock.Instant], withWork: Set<String>, share: Int) -> [String] {
        let counted = held.filter { withWork.contains($0.key) }
        return counted.sorted { $0.value < $1.value }.prefix(max(0, counted.count - share)).map(\.key)
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
            let deadLetters: AMQPConnection
            do {
                deadLetters = current?.deadLetters.isOpen == true ? current!.deadLetters : try await connectBroker()
            } catch {
                // Opened for this pair and unused, it would stay open until released.
                if consume !== current?.consume { await consume.close() }
                throw error
            }
            let fresh = BrokerConnections(consume: consume, deadLetters: deadLetters)
            brokers.withLock { $0 = fresh }
            logger.info("connected to the broker", metadata: ["worker": "\(workerID)"])
            return fresh
        } catch {
            logger.warning("broker unreachable; retrying", metadata: ["worker": "\(workerID)", "error": "\(error)"])
            return nil
        }
    }

    private func launch(_ session: SessionQueue, on broker: BrokerConnections) -> RunningSession {
        FleetMetrics.sessionTaken(session.integrationID)
        let flag = StopFlag()
        let finished = StopFlag()
        let consumer = SessionConsumer(
            broker: broker.consume, deadLetterBroker: broker.deadLetters, session: session, processor: processor, options: options, logger: logger,
            othersWaiting: { [self] in othersWaiting.load(ordering: .relaxed) })
        let launch = consumerTotals.withLock { state in
            state.launches += 1
            return state.launches
        }
        let stopping = stopping
        let task = Task { [self] in
            defer { finished.set() }
            return try await consumer.run(
                shouldStop: { flag.isSet || stopping.isSet }, shuttingDown: { stopping.isSet },
                report: { totals in self.consumerTotals.withLock { $0.totals[launch] = totals } })
        }
        return RunningSession(stop: flag, finished: finished, task: task, since: .now)
    }

    struct RunningSession {
        let stop: StopFlag
        let finished: StopFlag
        let task: Task<SessionConsumer.Ending, any Error>
        let since: ContinuousClock.Instant
    }
}
