import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// The fleet against a three-node RabbitMQ cluster (issue 12): two worker processes and a
/// looping publisher, each given every node's URL. While pairs flow, the node that leads the
/// most session queues stops its RabbitMQ (`rabbitmqctl stop_app`) and comes back; then
/// another node's Erlang VM is SIGKILLed and booted again. Every pair ends on its campaign once,
/// with one JobSubmission, nothing dead-lettered, the watermarks moved; the test prints how
/// long the fleet stalled after each fault and how many messages the broker redelivered.
@Suite(.serialized) struct ClusterTests {
    static let integrations = ["acme-staffing", "beta-talent", "gamma-health"]

    @Test func everyPairOnceWhileTheLeadingNodeStopsAndAnotherIsKilled() async throws {
        // A tearsheet of 600 on its own job per integration, 900 Bullhorn calls a minute each:
        // about 40 s of flow, through which the faults fall.
        let seed = SimulatorSeed(candidates: 3_000, jobOrders: 3, tearsheets: Array(repeating: .init(members: 600, jobs: 1), count: 3))
        try await ScratchRabbitMQCluster.with(script: RepositoryFiles.root.appendingPathComponent("deploy/local/cluster.sh").path) { cluster in
            try await FleetFixture.run(
                seed: seed, integrationID: Self.integrations[0], brokerServer: ("amqp://guest:guest@127.0.0.1:\(cluster.amqpPort(1))/%2F", cluster.managementURL(1))
            ) { fixture in
                var run = ClusterRun(fixture: fixture, cluster: cluster)
                try await run.prepare()
                try await run.faults()
                try await run.settle()
                try await run.verify()
                print(run.report)
            }
        }
    }
}

struct ClusterRun {
    let fixture: FleetFixture
    let cluster: ScratchRabbitMQCluster
    let environment: [String: String]
    let logs: String
    var workers: [ChaosProcess] = []
    var publisher: ChaosProcess?
    var campaigns: [(integration: String, campaign: Int64, job: Int64)] = []
    var watermarksBefore: [String: Date?] = [:]
    var report = ""

    init(fixture: FleetFixture, cluster: ScratchRabbitMQCluster) {
        self.fixture = fixture
        self.cluster = cluster
        var environment = fixture.commandEnvironment
        environment["TSYNC_AMQP_URL"] = cluster.amqpURL(vhost: fixture.vhost)
        self.environment = environment
        logs = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("tsync-cluster-logs")).path
        try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    }

    mutating func prepare() async throws {
        for (index, integration) in ClusterTests.integrations.enumerated() {
            try await fixture.registerIntegration(integration, callsPerMinute: 900)
            let job = fixture.world.jobOrderIDs[index]
            fixture.world.updateTearsheet(fixture.world.tearsheets[index].id) { $0.jobOrderIDs = [job] }
            try await CampaignStore(pool: fixture.pool).upsert(id: Int64(100 + index), integrationID: integration, atsJobID: job)
            campaigns.append((integration, Int64(100 + index), job))
            watermarksBefore[integration] = try await IntegrationStore(pool: fixture.pool).watermark(of: integration)
        }
        for index in 0..<2 {
            workers.append(try ChaosProcess.launch(["work", "--batch", "20"], environment: environment, log: "\(logs)/worker-\(index).log"))
        }
        publisher = try ChaosProcess.launch(["publish", "--every", "2s"], environment: environment, log: "\(logs)/publisher.log")
    }

    /// The faults, each while pairs flow; each one's stall is the time from the fault until the
    /// next pair lands.
    mutating func faults() async throws {
        try await waitForRows(atLeast: 100, within: .seconds(60))
        let leaders = try await cluster.leaders(vhost: fixture.vhost)
        let leading = cluster.nodes.max { leaders[cluster.nodeName($0), default: 0] < leaders[cluster.nodeName($1), default: 0] }!
        report += "session and dead-letter queue leaders: \(leaders.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))\n"

        var stall = try await stallAfter { try await cluster.stopApp(leading) }
        report += "stop_app of node \(leading) (leading the most queues): the next pair landed \(stall) after it\n"
        try await Task.sleep(for: .seconds(5))
        try await cluster.startApp(leading)

        let victim = cluster.nodes.first { $0 != leading }!
        stall = try await stallAfter { try await cluster.kill(victim) }
        report += "SIGKILL of node \(victim)'s Erlang VM: the next pair landed \(stall) after it\n"
        try await Task.sleep(for: .seconds(5))
        try await cluster.boot(victim)
    }

    /// Faults over: the fleet drains the sessions.
    mutating func settle() async throws {
        let expected = expectedPairs().count
        let started = ContinuousClock.now
        report += "\(try await fixture.rows()) of \(expected) pairs added when the last node was back\n"
        try await waitForRows(atLeast: expected, within: .seconds(180))
        var ready = -1
        while ready != 0, ContinuousClock.now - started < .seconds(180) {
            ready = (try? await readyInSessionQueues()) ?? -1
            if ready != 0 { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(ready == 0, "the session queues drained")
        report += "drained \(ContinuousClock.now - started) after the last node came back\n"
        report += "messages redelivered by the broker: \(try await redelivered())\n"
        publisher?.terminate()
        for worker in workers { worker.terminate() }
        if let publisher { #expect(await publisher.process.exited() == 0, "the publisher stopped cleanly (see \(logs))") }
        for worker in workers { #expect(await worker.process.exited() == 0, "a worker stopped cleanly (see \(logs))") }
    }

    func verify() async throws {
        var added = Set<ChaosPair>()
        for row in try await fixture.pool.query("SELECT integration_id, campaign_id, ats_candidate_id FROM campaign_candidates").rows {
            added.insert(ChaosPair(integration: try row.decode(at: 0), campaign: try row.decode(at: 1), candidate: try row.decode(at: 2)))
        }
        let expected = expectedPairs()
        #expect(added == expected, "\(expected.subtracting(added).count) pairs missing, \(added.subtracting(expected).count) unexpected")
        var perApplication: [String: Int] = [:]
        for submission in fixture.world.jobSubmissions where !submission.isDeleted {
            perApplication["\(submission.candidateID):\(submission.jobOrderID)", default: 0] += 1
        }
        let jobOf = Dictionary(uniqueKeysWithValues: campaigns.map { ($0.campaign, $0.job) })
        #expect(Set(perApplication.keys) == Set(expected.map { "\($0.candidate):\(jobOf[$0.campaign]!)" }))
        #expect(perApplication.values.allSatisfy { $0 == 1 }, "one JobSubmission per (candidate, job)")
        let connection = try await AMQPConnection.connect(try AMQPConfiguration(url: environment["TSYNC_AMQP_URL"]!))
        let deadLetters = try await connection.openChannel().declareQueue(Topology.deadLetterQueue, passive: true).messageCount
        await connection.close()
        #expect(deadLetters == 0)
        for integration in ClusterTests.integrations {
            let watermark = try await IntegrationStore(pool: fixture.pool).watermark(of: integration)
            let before = watermarksBefore[integration] ?? nil
            #expect(watermark != nil && (before == nil || watermark! > before!), "\(integration)'s watermark moved forward")
        }
    }

    // MARK: -

    private func expectedPairs() -> Set<ChaosPair> {
        Set(campaigns.flatMap { campaign in
            fixture.world.tearsheets.filter { $0.jobOrderIDs.contains(campaign.job) }.flatMap(\.members).map {
                ChaosPair(integration: campaign.integration, campaign: campaign.campaign, candidate: $0.candidateID)
            }
        })
    }

    /// Runs `fault` and measures how long until the row count grows again.
    private func stallAfter(_ fault: () async throws -> Void) async throws -> Duration {
        let before = try await fixture.rows()
        let started = ContinuousClock.now
        try await fault()
        while try await fixture.rows() == before {
            guard ContinuousClock.now - started < .seconds(120) else { throw ClusterTestError(description: "no pair landed for 120 s after a fault") }
            try await Task.sleep(for: .milliseconds(100))
        }
        return ContinuousClock.now - started
    }

    private func waitForRows(atLeast count: Int, within limit: Duration) async throws {
        let started = ContinuousClock.now
        while try await fixture.rows() < count {
            guard ContinuousClock.now - started < limit else {
                throw ClusterTestError(description: "\(try await fixture.rows()) of \(count) pairs after \(limit); logs in \(logs)")
            }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    private func readyInSessionQueues() async throws -> Int {
        try await FleetFixture.readyInSessionQueues(ClusterTests.integrations, amqpURL: environment["TSYNC_AMQP_URL"]!)
    }

    /// The virtual host's redelivery count, as the management API sums it over the nodes.
    private func redelivered() async throws -> Int {
        struct VirtualHost: Decodable {
            struct Stats: Decodable { let redeliver: Int? }
            let message_stats: Stats?
        }
        let body = try await ManagementAPI(url: cluster.managementURL(1)).request("GET", "/api/vhosts/\(fixture.vhost)").body
        return try JSONDecoder().decode(VirtualHost.self, from: Data(body)).message_stats?.redeliver ?? 0
    }
}

struct ClusterTestError: Error, CustomStringConvertible {
    let description: String
}
