import AMQPClient
import BullhornSimulator
import Foundation
import Testing

@testable import TearsheetSyncCore

/// What the session tests share: more integrations on the same simulator, in-process workers,
/// and the checks they end with.
extension FleetFixture {
    /// Registers another integration on the fixture's simulator, or registers one again (as
    /// `integration add` does); `loginInfoPath` other than the simulator's to register a wrong one.
    func registerIntegration(
        _ id: String, callsPerMinute: Int = 600_000, loginInfoPath: String = "/rest-services/loginInfo"
    ) async throws {
        let account = SimulatedAuth.Account.standard
        try await IntegrationStore(pool: pool).upsert(
            id: id, clientID: account.clientID, username: account.username,
            endpoints: .discovered(loginInfoURL: "\(simulatorBase)\(loginInfoPath)"),
            secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password),
            keys: keys, callsPerMinute: callsPerMinute)
    }

    /// A worker as one `work` process runs it, with a quick tick for tests; its lease session
    /// and its broker connections may go elsewhere (through a `TCPProxy`).
    func sessionWorker(
        _ name: String, options: WorkerOptions = WorkerOptions(batchSize: 50, batchWait: .milliseconds(50)),
        leaseDatabaseURL: String? = nil, amqpURL: String? = nil
    ) -> SessionWorker {
        SessionWorker(
            workerID: name, databaseURL: leaseDatabaseURL ?? databaseURL,
            connectBroker: { [amqpURL = amqpURL ?? self.amqpURL] in try await AMQPConnection.connect(url: amqpURL) },
            // The simulator applies a write at once: a short grace covers the PUTs a killed
            // worker left without an answer.
            processor: PairProcessor(
                pool: pool, clients: BullhornClients(pool: pool, keys: keys, configuration: Self.clientConfiguration),
                uncertainWriteGrace: .seconds(5)),
            options: options, tick: .milliseconds(200), heartbeatExpiry: .seconds(2), logger: Self.quietLogger)
    }

    /// Rows in `campaign_candidates`, of one integration or all.
    func rows(of integrationID: String? = nil) async throws -> Int {
        try await pool.query(
            "SELECT count(*) FROM campaign_candidates WHERE integration_id = coalesce(\(integrationID), integration_id)").scalar(Int.self)
    }

    /// Every member of these tearsheets has exactly one JobSubmission on the job given for it.
    func expectOneJobSubmissionPerMember(of tearsheets: [SimulatedTearsheet], jobs: [Int64], sourceLocation: SourceLocation = #_sourceLocation) {
        for (tearsheet, job) in zip(tearsheets, jobs) {
            for member in tearsheet.members {
                #expect(world.jobSubmissionCount(candidate: member.candidateID, jobOrder: job) == 1, sourceLocation: sourceLocation)
            }
        }
    }

    /// Polls `condition` every 50 ms for up to `limit`.
    static func eventually(_ limit: Duration = .seconds(30), _ condition: () async throws -> Bool) async throws -> Bool {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < limit {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// Messages ready in these integrations' session queues, over a connection of its own to
    /// `amqpURL` (a test's long-lived one may have died with a broker node).
    static func readyInSessionQueues(_ integrations: [String], amqpURL: String) async throws -> Int {
        let connection = try await AMQPConnection.connect(url: amqpURL)
        let channel = try await connection.openChannel()
        var ready = 0
        for integration in integrations {
            ready += Int(try await channel.declareQueue(SessionQueue(integrationID: integration).queue, passive: true).messageCount)
        }
        await connection.close()
        return ready
    }
}
