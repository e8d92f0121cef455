import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// `session_work` and the session leases, against the real database.
@Suite struct SessionStoreTests {
    private func withDatabase(_ body: (String, PostgresPool) async throws -> Void) async throws {
        let url = try await TestServices.createDatabase("tsync_sessions")
        let pool = PostgresPool(connectionString: url, maxConnections: 2)
        do {
            try await pool.withConnection { _ = try await SchemaMigrator().migrate($0) }
            try await body(url, pool)
        } catch {
            await pool.close()
            try? await TestServices.dropDatabase(url)
            throw error
        }
        await pool.close()
        try await TestServices.dropDatabase(url)
    }

    /// The race between a worker draining a session and a publisher publishing to it: a mark
    /// made after the worker read the sequence keeps the session waiting.
    @Test func aPublishTheDrainingWorkerDidNotSeeKeepsTheSessionWaiting() async throws {
        try await withDatabase { _, pool in
            let store = SessionWorkStore(pool: pool)
            try await store.markPublished("acme")
            try await store.markPublished("globex")
            #expect(try await store.waiting(limit: 10).map(\.integrationID) == ["acme", "globex"], "longest waiting first")
            let seen = try await store.sequence(of: "acme")
            try await store.markPublished("acme")  // confirmed after the worker looked
            try await store.drained("acme", through: seen)
            #expect(try await store.waiting(limit: 10).map(\.integrationID).contains("acme"))
            try await store.drained("acme", through: try await store.sequence(of: "acme"))
            #expect(try await store.waiting(limit: 10).map(\.integrationID) == ["globex"])
            #expect(try await store.waitingCount() == 1)
            try await store.drained("acme", through: seen)  // a late, older record never undoes a newer one
            #expect(try await store.waitingCount() == 1)
            try await store.sendToBack("globex")
            try await store.markPublished("acme")
            #expect(try await store.waiting(limit: 10).map(\.integrationID) == ["globex", "acme"])
        }
    }

    @Test func heldLeasesAreVisibleToOtherWorkersAndGoWithTheirConnection() async throws {
        try await withDatabase { url, _ in
            let first = SessionLeases(workerID: "a", connection: try await PostgresConnection.connect(url))
            let second = SessionLeases(workerID: "b", connection: try await PostgresConnection.connect(url))
            #expect(try await first.tryAcquire("acme"))
            #expect(try await !second.tryAcquire("acme"))
            #expect(try await second.heldKeys().contains(SessionLeases.key("acme")))
            #expect(try await !second.heldKeys().contains(SessionLeases.key("globex")))
            await first.resign()  // its connection closes: the lease goes at once
            var released = false
            for _ in 0..<50 where !released {
                released = try await !second.heldKeys().contains(SessionLeases.key("acme"))
                if !released { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(released)
            #expect(try await second.tryAcquire("acme"))
            await second.resign()
        }
    }

    /// A worker waiting for its next turn is woken by the publisher's mark, not by its tick.
    @Test func markingASessionWakesAWaitingWorker() async throws {
        try await withDatabase { url, pool in
            let leases = SessionLeases(workerID: "a", connection: try await PostgresConnection.connect(url))
            try await leases.register()
            for _ in 0..<3 {
                let waited = ContinuousClock.now
                #expect(try await leases.waitForWork(upTo: .milliseconds(300)).isEmpty, "nothing yet: the wait times out")
                #expect(ContinuousClock.now - waited >= .milliseconds(250), "it waited, rather than spin")
            }
            let marker = Task {
                try await Task.sleep(for: .milliseconds(200))
                try await SessionWorkStore(pool: pool).markPublished("acme")
            }
            let started = ContinuousClock.now
            let woken = try await leases.waitForWork(upTo: .seconds(20))
            #expect(woken == ["acme"])
            #expect(ContinuousClock.now - started < .seconds(10), "woken by the notification, long before the timeout")
            try await marker.value
            await leases.resign()
        }
    }
}
