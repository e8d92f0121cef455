import Foundation
import IntegrationSupport
import PostgresClient
import Testing

/// A server that goes silent (bytes stop, the socket stays open), and one that vanishes.
@Suite struct PostgresSilentServerTests {
    /// With an answer deadline, a call to a silent server fails in that time and leaves the
    /// connection broken, instead of holding its thread for ever.
    @Test func aCallToASilentServerFailsByItsDeadline() async throws {
        let url = try await TestServices.createDatabase()
        defer { Task { try? await TestServices.dropDatabase(url) } }
        let proxy = try TCPProxy(inFrontOf: url)
        defer { proxy.close() }
        let connection = try await PostgresConnection.connect(proxy.route(url), answerDeadline: .seconds(2))
        #expect(try await connection.query("SELECT 1").scalar(Int.self) == 1)
        #expect(try await connection.query("SHOW statement_timeout").scalar(String.self) == "2s", "the server ends its statements at the same limit")
        proxy.blackhole()
        let started = ContinuousClock.now
        let error = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 1") }
        #expect(error?.code == .connection)
        #expect(error?.isRetriable == true)
        #expect(ContinuousClock.now - started < .seconds(10), "failed by its deadline")
        #expect(await connection.isBroken)
        await connection.close()
    }

    /// Waiting for notifications is waiting on purpose: the deadline counts from the end of
    /// the wait asked for.
    @Test func aLongWaitForNotificationsIsNotCutByTheDeadline() async throws {
        let url = try await TestServices.createDatabase()
        defer { Task { try? await TestServices.dropDatabase(url) } }
        let connection = try await PostgresConnection.connect(url, answerDeadline: .seconds(1))
        try await connection.listen("nobody_calls")
        #expect(try await connection.notifications(waitingUpTo: .seconds(2)).isEmpty)
        #expect(try await connection.query("SELECT 1").scalar(Int.self) == 1, "still usable")
        await connection.close()
    }

    /// Both ends probe an idle connection, so that a vanished peer is noticed in about 40 s:
    /// above all the server, which otherwise keeps a dead worker's advisory locks for hours.
    @Test func theServerSideOfEveryConnectionKeepsItAlive() async throws {
        let url = try await TestServices.createDatabase()
        defer { Task { try? await TestServices.dropDatabase(url) } }
        let connection = try await PostgresConnection.connect(url)
        #expect(try await connection.query("SHOW tcp_keepalives_idle").scalar(String.self) == "10")
        #expect(try await connection.query("SHOW tcp_keepalives_interval").scalar(String.self) == "5")
        #expect(try await connection.query("SHOW tcp_keepalives_count").scalar(String.self) == "3")
        #expect(try await connection.query("SHOW tcp_user_timeout").scalar(String.self) == "40000", "milliseconds")
        #expect(try await connection.query("SHOW statement_timeout").scalar(String.self) == "0", "no limit without a deadline")
        await connection.close()
    }
}
