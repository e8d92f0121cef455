import Testing

@testable import TearsheetSyncCore

/// A session's prefetch window: the configured one, less for a small Bullhorn budget, and no
/// more than its share of what the whole worker may hold.
struct WorkerOptionsTests {
    @Test(arguments: [
        // (max sessions, max in hand, calls a minute, window)
        (16, 20_000, 1_500, 250),  // 10 s of budget; the share (1,250) is larger
        (16, 20_000, nil, 1_000),  // no budget known: five batches
        (16, 20_000, 600_000, 1_000),  // a budget larger than the window
        (16, 20_000, 120, 20),  // a small budget: 10 s of it
        (16, 20_000, 30, 10),  // never under 10
        (200, 20_000, 1_500, 100),  // 200 sessions share 20,000: 100 each, not 250
        (200, 20_000, nil, 100),
        (200, 20_000, 300, 50),  // the budget is smaller than the share
        (200, 1_000, 1_500, 10),  // a share under 10 is 10
    ] as [(Int, Int, Int?, Int)])
    func aSessionsWindowIsItsBudgetsAndItsShareOfTheWorkers(
        maxSessions: Int, maxInHand: Int, callsPerMinute: Int?, window: Int
    ) {
        let options = WorkerOptions(batchSize: 200, maxSessions: maxSessions, maxInHand: maxInHand)
        #expect(options.prefetch(callsPerMinute: callsPerMinute) == UInt16(window))
    }

    @Test func anExplicitWindowBelowTheShareIsKept() {
        let options = WorkerOptions(batchSize: 20, prefetch: 30, maxSessions: 2, maxInHand: 20_000)
        #expect(options.prefetch(callsPerMinute: 1_500) == 30)
    }
}
