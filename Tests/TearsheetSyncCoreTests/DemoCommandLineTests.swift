import AMQPClient
import Foundation
import IntegrationSupport
import PostgresClient
import Testing

/// `demo` recreates a database and purges queues on every run: only ever its own. These run
/// one after the other: the names are the demo's own, fixed ones.
@Suite(.serialized) struct DemoCommandLineTests {
    private static let environment = [
        "TSYNC_DATABASE_URL": TestServices.adminDatabaseURL, "TSYNC_AMQP_URL": TestServices.amqpURL,
        "TSYNC_MANAGEMENT_URL": TestServices.managementURL,
    ]

    @Test func theDemoLeavesADatabaseOfItsNameThatItDidNotMake() async throws {
        let admin = try await PostgresConnection.connect(TestServices.adminDatabaseURL)
        try await admin.executeScript(unsafeSQL: "DROP DATABASE IF EXISTS tsync_demo WITH (FORCE)")
        try await admin.executeScript(unsafeSQL: "CREATE DATABASE tsync_demo")
        let someonesData = TestServices.databaseURL(named: "tsync_demo")
        let other = try await PostgresConnection.connect(someonesData)
        try await other.executeScript(unsafeSQL: "CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)")
        await other.close()

        let run = try await CommandRun.run(["demo"], environment: Self.environment)
        #expect(run.exitCode == 1)
        #expect(run.standardError.split(separator: "\n").count == 1)
        #expect(run.standardError.contains("database tsync_demo exists and was not made by the demo"))
        let after = try await PostgresConnection.connect(someonesData)
        #expect(try await after.query("SELECT count(*) FROM precious").scalar(Int.self) == 1, "nothing dropped")
        await after.close()
        try await admin.executeScript(unsafeSQL: "DROP DATABASE tsync_demo WITH (FORCE)")
        await admin.close()
    }

    @Test func theDemoLeavesAVirtualHostOfItsNameThatItDidNotMake() async throws {
        let management = ManagementAPI()
        // Made, or (made by an earlier demo run) re-described: not deleted and made again at
        // once, which RabbitMQ may refuse while the old one is still stopping.
        try await management.request("PUT", "/api/vhosts/tsync-demo", json: #"{"description":"production, do not touch"}"#)
        try await management.request("PUT", "/api/permissions/tsync-demo/guest", json: #"{"configure":".*","write":".*","read":".*"}"#)
        // Deleted whatever happens: a virtual host of that name left behind would stop the other
        // test's demo run at its first step.
        do {
            let broker = try await AMQPConnection.connect(try AMQPConfiguration(url: management.amqpURL(vhost: "tsync-demo")))
            let channel = try await broker.openChannel(confirms: true)
            try await TestServices.declareQuorumQueue("tearsheet.dead-letter", url: management.amqpURL(vhost: "tsync-demo"))
            _ = try await channel.purgeQueue("tearsheet.dead-letter")
            _ = try await channel.publish([AMQPPublish(exchange: "", routingKey: "tearsheet.dead-letter", message: AMQPMessage(body: Array("kept".utf8)))])

            let run = try await CommandRun.run(["demo"], environment: Self.environment)
            #expect(run.exitCode == 1)
            #expect(run.standardError.split(separator: "\n").count == 1)
            #expect(run.standardError.contains("virtual host tsync-demo exists and was not made by the demo"))
            #expect(try await channel.declareQueue("tearsheet.dead-letter", passive: true).messageCount == 1, "nothing purged")
            await broker.close()
        } catch {
            try? await management.deleteVirtualHost("tsync-demo")
            throw error
        }
        try await management.deleteVirtualHost("tsync-demo")
    }
}
