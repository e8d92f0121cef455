import Foundation
import IntegrationSupport
import PostgresClient
import AMQPClient
import BullhornSimulator
import Testing
import TearsheetSyncCore

/// The built `tearsheet-sync` binary, as an operator or a script runs it.
@Suite struct CommandLineTests {
    @Test func malformedBrokerURLStopsWithOneLineAndExitCode2() async throws {
        let run = try await CommandRun.run(["topology", "apply"], environment: ["TSYNC_AMQP_URL": "nonsense"])
        #expect(run.exitCode == 2)
        let lines = run.standardError.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("TSYNC_AMQP_URL") == true)
    }

    @Test func unreachableDatabaseNamesTheSettingButNotThePassword() async throws {
        let run = try await CommandRun.run(["migrate"], environment: ["TSYNC_DATABASE_URL": "postgresql://app:pa55-word@127.0.0.1:1/db"])
        #expect(run.exitCode == 2)
        #expect(run.standardError.split(separator: "\n").count == 1)
        #expect(run.standardError.contains("TSYNC_DATABASE_URL"))
        #expect(!run.standardError.contains("pa55-word"))
    }

    @Test func unreachableBrokerNamesTheSettingButNotThePassword() async throws {
        let run = try await CommandRun.run(["topology", "apply"], environment: ["TSYNC_AMQP_URL": "amqp://app:s3cret-pw@127.0.0.1:1/%2F"])
        #expect(run.exitCode == 2)
        #expect(run.standardError.split(separator: "\n").count == 1)
        #expect(run.standardError.contains("TSYNC_AMQP_URL"))
        #expect(!run.standardError.contains("s3cret-pw"))
    }

    /// A bad option is a bad setting: one line naming it and exit 2, not argument-parser's
    /// usage text and 64; the bench's too (it used to run on with the default).
    @Test(arguments: [
        ("tearsheet-sync", ["work", "--max-in-hand", "0"], "--max-in-hand"),
        ("tearsheet-sync", ["work", "--max-sessions", "200", "--max-in-hand", "1999"], "--max-in-hand"), ("tearsheet-sync", ["work", "--batch", "x"], "--batch"),
        ("tearsheet-sync", ["publish", "--every", "0s"], "--every"), ("tearsheet-sync", ["work", "--no-such-option"], "--no-such-option"),
        ("tearsheet-bench", ["worker", "--members", "x"], "--members"), ("tearsheet-bench", ["--rounds", "0"], "--rounds"),
        ("tearsheet-bench", ["no-such-suite"], "<suite>"),
    ])
    func aBadOptionStopsWithOneLineNamingItAndExitCode2(binary: String, arguments: [String], named option: String) async throws {
        let run = try await CommandRun.run(arguments, environment: [:], binary: binary)
        #expect(run.exitCode == 2)
        #expect(run.standardError.split(separator: "\n").count == 1)
        #expect(run.standardError.contains(option))
    }

    @Test func missingDatabaseURLIsNamed() async throws {
        let run = try await CommandRun.run(["migrate"], environment: [:])
        #expect(run.exitCode == 2)
        #expect(run.standardError.contains("TSYNC_DATABASE_URL: not set"))
    }

    @Test func migrateTwiceThroughTheCommand() async throws {
        let url = try await TestServices.createDatabase("tsync_cli")
        let first = try await CommandRun.run(["migrate"], environment: ["TSYNC_DATABASE_URL": url])
        let second = try await CommandRun.run(["migrate", "--database-url", url], environment: [:])
        try await TestServices.dropDatabase(url)
        #expect(first.exitCode == 0)
        #expect(first.standardOutput.contains("applied migrations 1"))
        #expect(second.exitCode == 0)
        #expect(second.standardOutput.contains("schema is current"))
        #expect(second.standardError.isEmpty)
    }

    @Test func topologyApplyRefusesAConflictWithExitCode1() async throws {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let url = management.amqpURL(vhost: vhost)
        let file = try RepositoryFiles.topologyJSON(inVirtualHost: vhost)
        let applied = try await CommandRun.run(
            ["topology", "apply"], environment: ["TSYNC_AMQP_URL": url, "TSYNC_TOPOLOGY": file, "TSYNC_MANAGEMENT_URL": TestServices.managementURL])
        #expect(applied.exitCode == 0)
        #expect(applied.standardOutput.contains("1 queues, 1 bindings and 2 policies"))
        try await management.request("DELETE", "/api/queues/\(vhost)/tearsheet.dead-letter")
        try await management.request(
            "PUT", "/api/queues/\(vhost)/tearsheet.dead-letter", json: #"{"durable":true,"arguments":{"x-queue-type":"classic"}}"#)
        let refused = try await CommandRun.run(
            ["topology", "apply", "--file", file], environment: ["TSYNC_AMQP_URL": url, "TSYNC_MANAGEMENT_URL": TestServices.managementURL])
        try await management.deleteVirtualHost(vhost)
        #expect(refused.exitCode == 1)
        #expect(refused.standardError.contains("queue tearsheet.dead-letter exists on the broker with different settings"))
        #expect(refused.standardError.split(separator: "\n").count == 1)
    }

    @Test func topologyApplyRefusesAVirtualHostOtherThanTheFilesWithExitCode2() async throws {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let refused = try await CommandRun.run(
            ["topology", "apply", "--file", RepositoryFiles.topologyJSON], environment: ["TSYNC_AMQP_URL": management.amqpURL(vhost: vhost)])
        struct Queue: Decodable { let name: String }
        let queues = try JSONDecoder().decode([Queue].self, from: Data(try await management.request("GET", "/api/queues/\(vhost)").body))
        try await management.deleteVirtualHost(vhost)
        #expect(refused.exitCode == 2)
        #expect(refused.standardError.split(separator: "\n").count == 1)
        #expect(refused.standardError.contains("TSYNC_TOPOLOGY: names virtual host / but TSYNC_AMQP_URL names \(vhost)"))
        #expect(queues.isEmpty, "nothing declared")
    }
}

/// `integration add`, `campaign add` and `publish`, as an operator types them.
@Suite struct PublishCommandLineTests {
    @Test func registerAnIntegrationAndACampaignThenPublish() async throws {
        let seed = SimulatorSeed(candidates: 100, jobOrders: 2, tearsheets: [.init(members: 40, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            let key = Data((0..<32).map { UInt8($0) }).base64EncodedString()
            let secretsFile = NSTemporaryDirectory() + "tsync-secrets-\(UUID().uuidString).json"
            try Data(#"{"clientSecret": "sim-client-secret-Zq8vT3wQ", "password": "sim-password-Kx72LmPd"}"#.utf8).write(to: URL(fileURLWithPath: secretsFile))
            defer { try? FileManager.default.removeItem(atPath: secretsFile) }
            let environment = [
                "TSYNC_DATABASE_URL": fixture.databaseURL, "TSYNC_AMQP_URL": fixture.amqpURL, "TSYNC_SECRET_KEY": key,
                "TSYNC_TOPOLOGY": RepositoryFiles.topologyJSON,
            ]
            let added = try await CommandRun.run(
                [
                    "integration", "add", "--id", "cli-co", "--client-id", "sim-client-id", "--username", "sim.api.user",
                    "--login-info-url", "\(fixture.simulatorBase)/rest-services/loginInfo", "--secrets-file", secretsFile,
                ], environment: environment)
            #expect(added.exitCode == 0, "\(added.standardError)")
            #expect(added.standardOutput.contains("session queue tearsheet.session.cli-co declared"))
            let stored = try await fixture.pool.query("SELECT encode(sealed_secrets, 'escape') FROM integrations WHERE id = 'cli-co'").scalar(String.self)
            #expect(!stored.contains("sim-password-Kx72LmPd"), "secrets are stored sealed")

            let job = fixture.world.tearsheets[0].jobOrderIDs[0]
            let campaign = try await CommandRun.run(["campaign", "add", "--integration", "cli-co", "--campaign", "501", "--job", "\(job)"], environment: environment)
            #expect(campaign.exitCode == 0, "\(campaign.standardError)")
            let orphan = try await CommandRun.run(["campaign", "add", "--integration", "nobody", "--campaign", "502", "--job", "1"], environment: environment)
            #expect(orphan.exitCode == 2)

            let published = try await CommandRun.run(["publish", "--integration", "cli-co"], environment: environment)
            #expect(published.exitCode == 0, "\(published.standardError)")
            #expect(published.standardOutput.contains("cli-co: 1 tearsheets, 40 pairs, 0 already on campaign, 40 published"))
            let taken = try await fixture.drainSessions(["cli-co"])
            #expect(taken.count == 40)
            #expect(taken.allSatisfy { $0.pair.integrationId == "cli-co" && $0.pair.campaignId == 501 })
        }
    }

    @Test func publishEveryLoopsUntilStopped() async throws {
        let seed = SimulatorSeed(candidates: 50, jobOrders: 1, tearsheets: [.init(members: 5, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            // Its output goes to a file, read while it runs: a loaded machine may take a while
            // for the first pass, so the test waits for passes rather than for a fixed time.
            let path = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("publish-every")).path
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let process = try fixture.launch(["publish", "--every", "1s"], standardOutput: FileHandle(forWritingAtPath: path)!)
            var lines: [Substring] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while lines.count < 3, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                lines = (try String(contentsOfFile: path, encoding: .utf8)).split(separator: "\n").filter { $0.hasPrefix("acme-staffing:") }
            }
            process.terminate()
            #expect(await process.exited() == 0)
            #expect(lines.count >= 3, "a pass every second until stopped")
            #expect(lines.first?.contains("5 published") == true)
            #expect(lines.dropFirst().allSatisfy { $0.contains(" 0 published") })
        }
    }

    @Test func aMissingSecretKeyStopsPublishWithExitCode2() async throws {
        let run = try await CommandRun.run(["publish"], environment: ["TSYNC_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"])
        #expect(run.exitCode == 2)
        #expect(run.standardError.contains("TSYNC_SECRET_KEY"))
    }

    /// `publish` connects to the database and the broker at once: with both unreachable the
    /// database is still the one named (as when they were tried in turn), with only the
    /// broker unreachable the broker is; one line each, exit 2, no password.
    @Test func publishNamesTheDatabaseWhenBothAreUnreachableOrItIsNotMigratedAndTheBrokerWhenItAloneIs() async throws {
        let key = Data(count: 32).base64EncodedString()
        let badBroker = "amqp://app:s3cret-pw@127.0.0.1:1/%2F"
        let both = try await CommandRun.run(
            ["publish"], environment: ["TSYNC_SECRET_KEY": key, "TSYNC_DATABASE_URL": "postgresql://app:pa55-word@127.0.0.1:1/db", "TSYNC_AMQP_URL": badBroker])
        #expect(both.exitCode == 2)
        #expect(both.standardError.split(separator: "\n").count == 1)
        #expect(both.standardError.contains("TSYNC_DATABASE_URL"))
        let (broker, unmigrated) = try await TestServices.withDatabase { url in
            let unmigrated = try await CommandRun.run(["publish"], environment: ["TSYNC_SECRET_KEY": key, "TSYNC_DATABASE_URL": url, "TSYNC_AMQP_URL": badBroker])
            let connection = try await PostgresConnection.connect(url)
            try await SchemaMigrator().migrate(connection)
            await connection.close()
            let broker = try await CommandRun.run(["publish"], environment: ["TSYNC_SECRET_KEY": key, "TSYNC_DATABASE_URL": url, "TSYNC_AMQP_URL": badBroker])
            return (broker, unmigrated)
        }
        #expect(broker.exitCode == 2)
        #expect(broker.standardError.split(separator: "\n").count == 1)
        #expect(broker.standardError.contains("TSYNC_AMQP_URL"))
        // A database not migrated is named before the broker too, with what to run.
        #expect(unmigrated.exitCode == 2)
        #expect(unmigrated.standardError.split(separator: "\n").count == 1)
        #expect(unmigrated.standardError.contains("database schema: at version 0") && unmigrated.standardError.contains("tearsheet-sync migrate"))
        for run in [both, broker] { #expect(!run.standardError.contains("s3cret-pw") && !run.standardError.contains("pa55-word")) }
    }

    @Test func secretsNeverComeFromTheCommandLine() async throws {
        let run = try await CommandRun.run(
            ["integration", "add", "--id", "x", "--client-id", "c", "--username", "u"],
            environment: ["TSYNC_SECRET_KEY": Data(count: 32).base64EncodedString(), "TSYNC_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"])
        #expect(run.exitCode == 2)
        #expect(run.standardError.contains("BULLHORN_CLIENT_SECRET"))
    }
}

/// `depth`, against the management API of the test broker.
@Suite struct DepthCommandLineTests {
    @Test func reportsReadyMessagesPerSessionAsJSON() async throws {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let amqpURL = management.amqpURL(vhost: vhost)
        let connection = try await AMQPConnection.connect(url: amqpURL)
        let topology = try Topology.load(path: RepositoryFiles.topologyJSON)
        _ = try await TopologyApplier(definitions: topology.definitions).apply(
            on: connection, management: RabbitMQManagement(url: URL(string: TestServices.managementURL)!), virtualHost: vhost)
        for id in ["globex", "initech"] { try await SessionQueue(integrationID: id).declare(on: connection) }
        // Bound to the exchange, but not a session queue by the policy's pattern: not shown.
        let channel = try await connection.openChannel(confirms: true)
        try await channel.declareQueue("audit.copy")
        try await channel.bindQueue("audit.copy", exchange: Topology.pairsExchange, routingKey: "globex")
        _ = try await channel.publish((0..<3).map {
            AMQPPublish(exchange: Topology.pairsExchange, routingKey: "initech", message: AMQPMessage(body: [1], properties: AMQPProperties(messageID: "m\($0)")))
        })
        let environment = ["TSYNC_AMQP_URL": amqpURL, "TSYNC_MANAGEMENT_URL": TestServices.managementURL, "TSYNC_TOPOLOGY": RepositoryFiles.topologyJSON]
        // The management API refreshes queue statistics every few seconds.
        var ready = -1
        var report: [String: Any] = [:]
        for _ in 0..<60 where ready != 3 {
            let run = try await CommandRun.run(["depth", "--json"], environment: environment)
            #expect(run.exitCode == 0, "\(run.standardError)")
            report = try JSONSerialization.jsonObject(with: Data(run.standardOutput.utf8)) as? [String: Any] ?? [:]
            let sessions = report["sessions"] as? [[String: Any]] ?? []
            ready = sessions.first { $0["session"] as? String == "initech" }?["ready"] as? Int ?? -1
            if ready != 3 { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(ready == 3)
        #expect(report["totalReady"] as? Int == 3)
        let sessions = (report["sessions"] as? [[String: Any]] ?? []).compactMap { $0["queue"] as? String }
        #expect(sessions == ["tearsheet.session.globex", "tearsheet.session.initech"])
        #expect((report["deadLetter"] as? [String: Any])?["queue"] as? String == "tearsheet.dead-letter")
        await connection.close()
        try await management.deleteVirtualHost(vhost)
    }

    @Test func anUnreachableManagementAPIIsExitCode2WithoutThePassword() async throws {
        let run = try await CommandRun.run(["depth"], environment: ["TSYNC_MANAGEMENT_URL": "http://ops:s3cr3t-mgmt@127.0.0.1:1"])
        #expect(run.exitCode == 2)
        #expect(run.standardError.contains("TSYNC_MANAGEMENT_URL"))
        #expect(!run.standardError.contains("s3cr3t-mgmt"))
    }
}
