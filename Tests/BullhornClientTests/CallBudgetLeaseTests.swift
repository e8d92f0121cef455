import Synchronization
import Testing

@testable import BullhornClient

/// The budget's leases: tokens a cancelled caller left behind are spent only while fresh.
@Suite struct CallBudgetLeaseTests {
    /// Grants what is asked, each lease held until the test lets it through (or every one,
    /// once `letAllThrough`); records what each lease asked for.
    final class GatedSource: BullhornTokenSource {
        let asked = Mutex<[Int]>([])
        let held = Mutex<[CheckedContinuation<Void, Never>]>([])
        let open = Atomic<Bool>(false)

        func take(upTo wanted: Int) async throws -> TokenGrant {
            asked.withLock { $0.append(wanted) }
            if !open.load(ordering: .relaxed) {
                await withCheckedContinuation { continuation in held.withLock { $0.append(continuation) } }
            }
            return TokenGrant(granted: wanted, retryAfter: .zero)
        }

        /// Lets the lease being held through, once one is.
        func letThrough() async throws {
            while held.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(5)) }
            held.withLock { $0.removeFirst() }.resume()
        }

        var leases: Int { asked.withLock { $0.count } }
    }

    @Test func tokensLeftByCancelledCallersAreSpentWhileFreshAndNotAfter() async throws {
        let source = GatedSource()
        let budget = BullhornCallBudget(tokens: source, maxConcurrent: 8)
        let first = Task { try await budget.spend { 1 } }
        try await Task.sleep(for: .milliseconds(100))  // its lease (for one) is held
        let second = Task { try await budget.spend { 2 } }
        let cancelled = (0..<2).map { _ in Task { try await budget.spend { 0 } } }
        try await Task.sleep(for: .milliseconds(100))  // three wait in line
        try await source.letThrough()
        #expect(try await first.value == 1)
        // The next in line leases for the three waiting; two leave while it is held.
        while source.leases < 2 { try await Task.sleep(for: .milliseconds(5)) }
        for task in cancelled { task.cancel() }
        for task in cancelled { _ = try? await task.value }
        source.open.store(true, ordering: .relaxed)
        try await source.letThrough()
        #expect(try await second.value == 2)
        #expect(source.asked.withLock { $0 } == [1, 3])

        // Two tokens are left over: a call now spends one without a lease...
        #expect(try await budget.spend { 3 } == 3)
        #expect(source.leases == 2)
        // ...and the other, once stale, is not spent: the next call leases afresh.
        try await Task.sleep(for: BullhornCallBudget.tokenLifetime + .milliseconds(200))
        #expect(try await budget.spend { 4 } == 4)
        #expect(source.leases == 3)
    }
}
