import AMQPClient
import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Synchronization
import Testing

@testable import TearsheetSyncCore

/// The Bullhorn budget is the corporation's, whoever calls: processes that lease from one
/// `bullhorn_budgets` row together stay within the limit, and together reach it.
@Suite struct FleetBudgetTests {
    @Test func aBucketShapedFromALimitAllowsExactlyTheLimitInAnyMinute() {
        for limit in [60, 600, 1_200, 1_500, 6_000] {
            let shape = TokenBucketShape(callsPerMinute: limit)
            // A bucket allows at most its capacity plus a minute of refill in any minute.
            #expect(abs(shape.capacity + 60 * shape.ratePerSecond - Double(limit)) < 1e-9, "limit \(limit)")
            #expect(shape.ratePerSecond * 60 >= 0.98 * Double(limit), "limit \(limit): most of it is rate, not burst")
        }
    }

    @Test func twoProcessesSharingACorporationStayWithinItsLimitAndReachIt() async throws {
        try await Self.withIntegrations([("east", 1_200, "acme"), ("west", 2_400, "acme")]) { databaseURL in
            // Two pools: two processes, one per integration of the corporation.
            let east = PostgresPool(connectionString: databaseURL, maxConnections: 2)
            let west = PostgresPool(connectionString: databaseURL, maxConnections: 2)
            let budgets = [
                BullhornCallBudget(tokens: FleetTokenSource(pool: east, budgetKey: "acme"), maxConcurrent: 16),
                BullhornCallBudget(tokens: FleetTokenSource(pool: west, budgetKey: "acme"), maxConcurrent: 16),
            ]
            let started = ContinuousClock.now
            let calls = try await Self.hammer(budgets, for: .seconds(4))
            await east.close()
            await west.close()

            // The corporation's limit is the smaller one: 1,200 a minute.
            let shape = TokenBucketShape(callsPerMinute: 1_200)
            // Every token was granted between the start and the last call (a call is stamped
            // when its body starts, after its token: the first stamp may come late under load).
            let span = calls.map(\.at).max()! - started
            let allowed = shape.capacity + shape.ratePerSecond * span.timeInterval + 1
            #expect(Double(calls.count) <= allowed, "\(calls.count) calls in \(span), at most \(allowed) allowed")
            // Every window of a second holds at most a second's refill plus the bucket. A call
            // is stamped when its body starts, after its token: beside the whole suite on two
            // cores a token can reach its call a few hundred milliseconds late, so the stamps of
            // a second may hold tokens granted over up to 1.5 s. Two buckets instead of one
            // shared would put twice the refill (about 80) in a second.
            let busiest = Self.busiest(calls.map(\.at), window: .seconds(1))
            #expect(Double(busiest) <= shape.capacity + 1.5 * shape.ratePerSecond, "\(busiest) calls in one second")
            // Reached: the two together spend what the rate gives over the run.
            #expect(Double(calls.count) >= 0.9 * shape.ratePerSecond * span.timeInterval, "\(calls.count) calls in \(span)")
            // Neither process starves the other.
            for process in 0..<2 {
                #expect(calls.filter { $0.process == process }.count >= calls.count / 4, "process \(process)")
            }
        }
    }

    @Test func aLimitChangedInTheDatabaseTakesEffectAtTheNextLease() async throws {
        try await Self.withIntegrations([("solo", 600_000, nil)]) { databaseURL in
            let pool = PostgresPool(connectionString: databaseURL, maxConnections: 2)
            let budget = BullhornCallBudget(tokens: FleetTokenSource(pool: pool, budgetKey: "solo"), maxConcurrent: 4)
            _ = try await Self.hammer([budget], callers: 4, for: .milliseconds(300))
            try await pool.query("UPDATE integrations SET calls_per_minute = 120 WHERE id = 'solo'")
            let calls = try await Self.hammer([budget], callers: 4, for: .seconds(2))
            await pool.close()
            // At 120 a minute: the bucket (capped at the new capacity, 2), two seconds of 1.97
            // a second, and what this process had leased before the change (at most one per
            // caller, 4): never the thousands the old limit allowed.
            #expect(calls.count <= 10, "\(calls.count) calls in 2 s at 120 a minute")
            #expect(calls.count >= 3)
        }
    }

    @Test func aBudgetWhoseDatabaseIsGoneFailsTheCallBeforeItIsSentAndSaysItMayPass() async throws {
        let pool = PostgresPool(connectionString: "postgresql://tsync@127.0.0.1:1/none?connect_timeout=2", maxConnections: 1)
        let budget = BullhornCallBudget(tokens: FleetTokenSource(pool: pool, budgetKey: "gone"), maxConcurrent: 4)
        let sent = Atomic<Int>(0)
        let error = await #expect(throws: BullhornError.self) {
            try await budget.spend { sent.add(1, ordering: .relaxed) }
        }
        #expect(error?.code == .budgetUnavailable)
        #expect(error?.isRetriable == true)
        #expect(sent.load(ordering: .relaxed) == 0)
        await pool.close()
    }

    /// Bullhorn answering in 200 ms: a budget of 25 calls a second needs more than four in
    /// flight (the old cap). A worker with the default settings keeps many in flight for one
    /// integration; given a cap, it keeps to it.
    @Test func aWorkerKeepsEnoughCallsInFlightForTheBudgetAndNoMoreThanItsCap() async throws {
        let seed = SimulatorSeed(candidates: 300, jobOrders: 1, tearsheets: [.init(members: 120, jobs: 1)])
        try await FleetFixture.run(seed: seed, faults: SimulatorFaults(latency: .milliseconds(200))) { fixture in
            for (phase, cap) in [(1, nil), (2, 3)] as [(Int64, Int?)] {
                // A campaign of its own each time: 120 new pairs.
                try await fixture.addCampaign(phase, job: fixture.world.tearsheets[0].jobOrderIDs[0])
                #expect(try await fixture.publisher(options: PublisherOptions(full: true)).run().first?.pairsPublished == 120)
                let pairs = 120
                var configuration = BullhornClientConfiguration()
                if let cap { configuration.maxConcurrentCalls = cap }
                let worker = SessionWorker(
                    workerID: "in-flight", databaseURL: fixture.databaseURL,
                    connectBroker: { try await AMQPConnection.connect(url: fixture.amqpURL) },
                    processor: PairProcessor(pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: configuration)),
                    options: WorkerOptions(batchSize: 60), tick: .milliseconds(200), logger: FleetFixture.quietLogger)
                let before = try await fixture.rows()
                let run = Task { try await worker.run() }
                #expect(try await FleetFixture.eventually(.seconds(60)) { try await fixture.rows() >= before + pairs })
                worker.stop()
                try await run.value
                let most = fixture.world.mostCallsInFlight
                if let cap {
                    #expect(most <= cap, "\(most) calls at once with a cap of \(cap)")
                } else {
                    #expect(most >= 12, "only \(most) calls at once by default")
                }
                fixture.world.resetMostCallsInFlight()
            }
        }
    }

    // MARK: - Helpers

    struct Call: Sendable {
        let process: Int
        let at: ContinuousClock.Instant
    }

    /// `callers` per budget spend as fast as the budgets let them, each call a 5 ms wait.
    static func hammer(_ budgets: [BullhornCallBudget], callers: Int = 24, for duration: Duration) async throws -> [Call] {
        let deadline = ContinuousClock.now + duration
        return try await withThrowingTaskGroup(of: [Call].self) { group in
            for (process, budget) in budgets.enumerated() {
                for _ in 0..<callers {
                    group.addTask {
                        var calls: [Call] = []
                        while ContinuousClock.now < deadline {
                            let at = try await budget.spend { () async throws -> ContinuousClock.Instant in
                                let at = ContinuousClock.now
                                try await Task.sleep(for: .milliseconds(5))
                                return at
                            }
                            if at < deadline { calls.append(Call(process: process, at: at)) }
                        }
                        return calls
                    }
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }

    /// The most instants in any window of `window`.
    static func busiest(_ instants: [ContinuousClock.Instant], window: Duration) -> Int {
        let sorted = instants.sorted()
        var start = 0
        var most = 0
        for end in sorted.indices {
            while sorted[end] - sorted[start] >= window { start += 1 }
            most = max(most, end - start + 1)
        }
        return most
    }

    static func withIntegrations(
        _ integrations: [(id: String, callsPerMinute: Int, corporation: String?)], _ body: (String) async throws -> Void
    ) async throws {
        let databaseURL = try await TestServices.createDatabase("tsync_budget")
        let pool = PostgresPool(connectionString: databaseURL, maxConnections: 1)
        do {
            try await pool.withConnection { _ = try await SchemaMigrator().migrate($0) }
            let key = IntegrationSecrets.randomKey()
            for integration in integrations {
                try await IntegrationStore(pool: pool).upsert(
                    id: integration.id, clientID: "client", username: "user", endpoints: .discovered(loginInfoURL: "http://127.0.0.1:1/loginInfo"),
                    secrets: IntegrationSecrets(clientSecret: "s", password: "p"), keys: SealingKeys(current: key), callsPerMinute: integration.callsPerMinute,
                    corporation: integration.corporation)
            }
            try await body(databaseURL)
        } catch {
            await pool.close()
            try? await TestServices.dropDatabase(databaseURL)
            throw error
        }
        await pool.close()
        try? await TestServices.dropDatabase(databaseURL)
    }
}
