import Foundation
import IntegrationSupport
import Testing

/// The built `tearsheet-sync` binary, as an operator or a script runs it.
@Suite struct CommandLineTests {
    @Test func malformedBrokerURLStopsWithOneLineAndExitCode2() throws {
        let run = try CommandRun.run(["topology", "apply"], environment: ["TSYNC_AMQP_URL": "nonsense"])
        #expect(run.exitCode == 2)
        let lines = run.standardError.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(lines.first?.contains("TSYNC_AMQP_URL") == true)
    }

    @Test func unreachableDatabaseNamesTheSettingButNotThePassword() throws {
        let run = try CommandRun.run(["migrate"], environment: ["TSYNC_DATABASE_URL": "postgresql://app:pa55-word@127.0.0.1:1/db"])
        #expect(run.exitCode == 2)
        #expect(run.standardError.split(separator: "\n").count == 1)
        #expect(run.standardError.contains("TSYNC_DATABASE_URL"))
        #expect(!run.standardError.contains("pa55-word"))
    }

    @Test func unreachableBrokerNamesTheSettingButNotThePassword() throws {
        let run = try CommandRun.run(["topology", "apply"], environment: ["TSYNC_AMQP_URL": "amqp://app:s3cret-pw@127.0.0.1:1/%2F"])
        #expect(run.exitCode == 2)
        #expect(run.standardError.split(separator: "\n").count == 1)
        #expect(run.standardError.contains("TSYNC_AMQP_URL"))
        #expect(!run.standardError.contains("s3cret-pw"))
    }

    @Test func missingDatabaseURLIsNamed() throws {
        let run = try CommandRun.run(["migrate"], environment: [:])
        #expect(run.exitCode == 2)
        #expect(run.standardError.contains("TSYNC_DATABASE_URL: not set"))
    }

    @Test func migrateTwiceThroughTheCommand() async throws {
        let url = try await TestServices.createDatabase("tsync_cli")
        let first = try CommandRun.run(["migrate"], environment: ["TSYNC_DATABASE_URL": url])
        let second = try CommandRun.run(["migrate", "--database-url", url], environment: [:])
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
        let applied = try CommandRun.run(["topology", "apply"], environment: ["TSYNC_AMQP_URL": url])
        #expect(applied.exitCode == 0)
        #expect(applied.standardOutput.contains("16 partitions"))
        try await management.request("DELETE", "/api/queues/\(vhost)/tearsheet.dead-letter")
        try await management.request(
            "PUT", "/api/queues/\(vhost)/tearsheet.dead-letter", json: #"{"durable":true,"arguments":{"x-queue-type":"classic"}}"#)
        let refused = try CommandRun.run(["topology", "apply", "--file", RepositoryFiles.topologyJSON], environment: ["TSYNC_AMQP_URL": url])
        try await management.deleteVirtualHost(vhost)
        #expect(refused.exitCode == 1)
        #expect(refused.standardError.contains("queue tearsheet.dead-letter exists on the broker with different settings"))
        #expect(refused.standardError.split(separator: "\n").count == 1)
    }
}
