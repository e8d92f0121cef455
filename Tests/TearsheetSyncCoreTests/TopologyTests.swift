import AMQPClient
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

@Suite struct TopologyTests {
    @Test func theShippedTopologyHasContiguousQuorumPartitions() throws {
        let topology = try Topology.load(path: RepositoryFiles.topologyJSON)
        #expect(topology.partitions.count == 16)
        #expect(topology.partitions.first?.routingKey == "p00")
        let byName = Dictionary(uniqueKeysWithValues: topology.definitions.queues.map { ($0.name, $0) })
        for partition in topology.partitions {
            let arguments = try #require(byName[partition.queue]?.arguments)
            #expect(arguments["x-queue-type"] == .string("quorum"))
            #expect(arguments["x-single-active-consumer"] == .bool(true))
            #expect(arguments["x-dead-letter-strategy"] == .string("at-least-once"))
            #expect(arguments["x-overflow"] == .string("reject-publish"))
            #expect(arguments["x-dead-letter-exchange"] == .string(Topology.deadLetterExchange))
            #expect(arguments["x-delivery-limit"] != nil)
        }
    }

    @Test func gapsInPartitionNumbersAreRefused() throws {
        var definitions = try TopologyDefinitions.load(path: RepositoryFiles.topologyJSON)
        definitions.bindings.removeAll { $0.routing_key == "p03" }
        #expect(throws: ConfigurationError.self) { try Topology(definitions: definitions) }
    }

    @Test func applyingTwiceAndOverAnImportedDefinitionSucceeds() async throws {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let json = try String(contentsOfFile: RepositoryFiles.topologyJSON, encoding: .utf8)
        try await management.importDefinitions(json, into: vhost)
        let connection = try await AMQPConnection.connect(url: management.amqpURL(vhost: vhost))
        let applier = TopologyApplier(definitions: try TopologyDefinitions.load(path: RepositoryFiles.topologyJSON))
        let first = try await applier.apply(on: connection)
        let second = try await applier.apply(on: connection)
        #expect(first == second)
        #expect(first.queues == 17)
        // A message routed by partition key lands in that partition's queue.
        let channel = try await connection.openChannel(confirms: true)
        let outcome = try await channel.publish([
            AMQPPublish(exchange: Topology.pairsExchange, routingKey: "p05", message: AMQPMessage(body: [1], properties: AMQPProperties(messageID: "x")))
        ])
        #expect(outcome == [.confirmed])
        #expect(try await channel.declareQueue("tearsheet.pairs.p05", passive: true).messageCount == 1)
        await connection.close()
        try await management.deleteVirtualHost(vhost)
    }

    @Test func aConflictingQueueIsRefusedByName() async throws {
        let management = ManagementAPI()
        let vhost = try await management.createScratchVirtualHost()
        let connection = try await AMQPConnection.connect(url: management.amqpURL(vhost: vhost))
        let channel = try await connection.openChannel()
        try await channel.declareQueue("tearsheet.pairs.p07", arguments: ["x-queue-type": .string("classic")])
        let applier = TopologyApplier(definitions: try TopologyDefinitions.load(path: RepositoryFiles.topologyJSON))
        await #expect {
            _ = try await applier.apply(on: connection)
        } throws: { error in
            (error as? TopologyConflict)?.entity == "queue tearsheet.pairs.p07"
        }
        await connection.close()
        try await management.deleteVirtualHost(vhost)
    }
}
