import AMQPClient
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

@Suite struct TopologyTests {
    @Test func theShippedTopologyGovernsSessionQueuesByPolicy() throws {
        let topology = try Topology.load(path: RepositoryFiles.topologyJSON)
        let definition = topology.sessionPolicy.definition
        #expect(topology.sessionPolicy.applyTo == "queues")
        #expect(definition["dead-letter-strategy"] == .string("at-least-once"))
        #expect(definition["overflow"] == .string("reject-publish"), "at-least-once dead-lettering requires it")
        #expect(definition["dead-letter-exchange"] == .string(Topology.deadLetterExchange))
        #expect(topology.deliveryLimit == 20)
        #expect(SessionQueue.arguments["x-queue-type"] == .string("quorum"))
        #expect(SessionQueue.arguments["x-single-active-consumer"] == .bool(true))
    }

    @Test func aTopologyWithoutASessionPolicyIsRefused() throws {
        var definitions = try TopologyDefinitions.load(path: RepositoryFiles.topologyJSON)
        definitions.policies = []
        #expect(throws: ConfigurationError.self) { try Topology(definitions: definitions) }
    }

    /// `topology apply` over `rabbitmqctl import_definitions` of the same file: one broker state.
    @Test func applyingTwiceAndOverAnImportedDefinitionSucceedsAndThePolicyGovernsSessions() async throws {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let json = try String(contentsOfFile: RepositoryFiles.topologyJSON, encoding: .utf8)
        try await management.importDefinitions(json, into: vhost)
        let connection = try await AMQPConnection.connect(url: management.amqpURL(vhost: vhost))
        let applier = TopologyApplier(definitions: try TopologyDefinitions.load(path: RepositoryFiles.topologyJSON))
        let rabbit = RabbitMQManagement(url: URL(string: TestServices.managementURL)!)
        let first = try await applier.apply(on: connection, management: rabbit, virtualHost: vhost)
        let second = try await applier.apply(on: connection, management: rabbit, virtualHost: vhost)
        #expect(first == second)
        #expect(first.policies == 1)
        let session = SessionQueue(integrationID: "acme")
        try await session.declare(on: connection)
        try await session.declare(on: connection)  // idempotent
        let channel = try await connection.openChannel(confirms: true)
        let outcome = try await channel.publish([
            AMQPPublish(exchange: Topology.pairsExchange, routingKey: "acme", message: AMQPMessage(body: [1], properties: AMQPProperties(messageID: "x")))
        ])
        #expect(outcome == [.confirmed])
        #expect(try await channel.declareQueue(session.queue, passive: true).messageCount == 1)
        // The broker applies the policy to the session queue (its statistics lag a little).
        struct Queue: Decodable { let policy: String? }
        var policy: String?
        for _ in 0..<40 where policy == nil {
            policy = try await rabbit.get("/api/queues/\(vhost)/\(session.queue)", as: Queue.self).policy
            if policy == nil { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(policy == "tearsheet-sessions")
        await connection.close()
        try await management.deleteVirtualHost(vhost)
    }

    @Test func aConflictingQueueIsRefusedByName() async throws {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let connection = try await AMQPConnection.connect(url: management.amqpURL(vhost: vhost))
        let channel = try await connection.openChannel()
        try await channel.declareQueue(Topology.deadLetterQueue, arguments: ["x-queue-type": .string("classic")])
        let applier = TopologyApplier(definitions: try TopologyDefinitions.load(path: RepositoryFiles.topologyJSON))
        await #expect {
            _ = try await applier.apply(on: connection, management: RabbitMQManagement(url: URL(string: TestServices.managementURL)!), virtualHost: vhost)
        } throws: { error in
            (error as? TopologyConflict)?.entity == "queue \(Topology.deadLetterQueue)"
        }
        await connection.close()
        try await management.deleteVirtualHost(vhost)
    }
}
