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

    /// The session policy's pattern is a regular expression as RabbitMQ reads it: anchored or
    /// not, with classes and alternatives; one that does not compile names its policy.
    @Test func theSessionPolicysPatternIsReadAsARegularExpression() throws {
        var definitions = try TopologyDefinitions.load(path: RepositoryFiles.topologyJSON)
        let session = try #require(definitions.policies?.firstIndex { $0.pattern.contains("session") })
        for pattern in [#"^tearsheet\.session\."#, #"session\.[a-z0-9-]+$|^nothing$"#, "tearsheet[.]sess"] {
            definitions.policies?[session].pattern = pattern
            let topology = try Topology(definitions: definitions)
            #expect(topology.isSessionQueue(SessionQueue(integrationID: "acme-1").queue), "\(pattern)")
            #expect(!topology.isSessionQueue(Topology.deadLetterQueue), "\(pattern)")
        }
        definitions.policies?[session].pattern = #"^tearsheet\.session\.("#
        let refusal = #expect(throws: ConfigurationError.self) { try Topology(definitions: definitions) }
        #expect(refusal?.description.contains("invalid pattern") == true, "\(String(describing: refusal))")
        #expect(refusal?.description.contains(definitions.policies![session].name) == true)
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
        #expect(first.policies == 2)
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

    /// Operators may load the file into RabbitMQ (`rabbitmqctl import_definitions`, or the
    /// management API's import) or run `topology apply`: the broker must end up the same.
    @Test func importingTheFileAndApplyingItGiveTheSameBrokerState() async throws {
        let management = ManagementAPI()
        let imported = try await management.createScratchVirtualHost()
        let applied = try await management.createScratchVirtualHost()
        try await management.importDefinitions(try String(contentsOfFile: RepositoryFiles.topologyJSON, encoding: .utf8), into: imported)
        let run = try await CommandRun.run(
            ["topology", "apply", "--file", try RepositoryFiles.topologyJSON(inVirtualHost: applied)],
            environment: ["TSYNC_AMQP_URL": management.amqpURL(vhost: applied), "TSYNC_MANAGEMENT_URL": TestServices.managementURL])
        #expect(run.exitCode == 0, "\(run.standardError)")
        let importedState = try await Self.state(of: imported, management)
        let appliedState = try await Self.state(of: applied, management)
        try await management.deleteVirtualHost(imported)
        try await management.deleteVirtualHost(applied)
        #expect(importedState == appliedState)
        #expect(importedState["policies"]?.count == 2, "the policies came along")
        #expect(importedState["queues"]?.first?.contains("tearsheet.dead-letter") == true)
    }

    /// A virtual host's definitions as the broker exports them, each kind as a sorted list of
    /// entities without the name of the host (the export's order is not the state).
    private static func state(of vhost: String, _ management: ManagementAPI) async throws -> [String: [String]] {
        let body = try await management.request("GET", "/api/definitions/\(vhost)").body
        let definitions = try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any]
        var state: [String: [String]] = [:]
        for kind in ["exchanges", "queues", "bindings", "policies", "parameters"] {
            state[kind] = try (definitions[kind] as? [[String: Any]] ?? []).map { entity in
                var entity = entity
                entity["vhost"] = nil
                return String(decoding: try JSONSerialization.data(withJSONObject: entity, options: [.sortedKeys]), as: UTF8.self)
            }.sorted()
        }
        return state
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
