import AMQPClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Synchronization
import Testing

@testable import TearsheetSyncCore

/// `dlq list` and `dlq replay` through the built binary.
@Suite struct DeadLetterCommandLineTests {
    @Test func listShowsReasonsAndReplayPutsReplayablePairsBack() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1)) { fixture in
            let partition = SessionQueue(integrationID: fixture.integrationID)
            try await partition.declare(on: fixture.broker)
            let channel = try await fixture.broker.openChannel(confirms: true)
            let pair = PairMessage(
                integrationId: fixture.integrationID, campaignId: 404, atsCandidateId: fixture.world.candidateIDs[0],
                atsJobId: fixture.world.jobOrderIDs[0], tearsheetId: 1)
            _ = try await channel.publish([
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: AMQPMessage(body: Array("nope".utf8), properties: AMQPProperties(messageID: "junk"))),
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: pair.amqpMessage()),
            ])
            let processor = PairProcessor(pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration))
            let consumer = SessionConsumer(
                broker: fixture.broker, session: partition, processor: processor,
                options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(50)), logger: FleetFixture.quietLogger)
            let dead = Atomic<Int>(0)
            _ = try await consumer.run(shouldStop: { dead.load(ordering: .relaxed) >= 2 }, report: { dead.store($0.deadLettered, ordering: .relaxed) })

            let environment = ["TSYNC_AMQP_URL": fixture.amqpURL, "TSYNC_TOPOLOGY": RepositoryFiles.topologyJSON, "TSYNC_DATABASE_URL": fixture.databaseURL]
            let listed = try await CommandRun.run(["dlq", "list", "--json"], environment: environment)
            #expect(listed.exitCode == 0, "\(listed.standardError)")
            let entries = try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]] ?? []
            let byID = Dictionary(uniqueKeysWithValues: entries.map { ($0["messageID"] as? String ?? "", $0) })
            #expect(byID.count == 2)
            #expect(byID[pair.messageID]?["reason"] as? String == "unknown campaign 404")
            #expect(byID[pair.messageID]?["replayable"] as? Bool == true)
            #expect(byID[pair.messageID]?["integrationID"] as? String == fixture.integrationID)
            #expect((byID["junk"]?["reason"] as? String)?.hasPrefix("malformed message") == true)
            #expect(byID["junk"]?["replayable"] as? Bool == false)

            try await fixture.addCampaign(404, job: fixture.world.jobOrderIDs[0])  // the fix an operator makes
            let replayed = try await CommandRun.run(["dlq", "replay"], environment: environment)
            #expect(replayed.exitCode == 0, "\(replayed.standardError)")
            #expect(replayed.standardOutput.contains("replayed 1 message(s); 1 left"))
            let check = try await fixture.broker.openChannel()
            #expect(try await check.declareQueue(partition.queue, passive: true).messageCount == 1)
            #expect(try await SessionWorkStore(pool: fixture.pool).waiting(limit: 5).map(\.integrationID) == [fixture.integrationID], "workers learn of the replay")
            // The message left behind returns to the queue as the replaying process's channel closes.
            var kept: UInt32 = 0
            for _ in 0..<50 where kept != 1 {
                kept = try await check.declareQueue(Topology.deadLetterQueue, passive: true).messageCount
                if kept != 1 { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(kept == 1)
            let back = try #require(try await fixture.drainSessions().first)
            #expect(back.pair == pair)
            #expect(back.delivery.message.properties.headers[SessionConsumer.reasonHeader] == nil)
        }
    }

    /// Fewer dead letters arrive than were counted (another process took some meanwhile): the
    /// read ends after a quiet spell instead of waiting for ever (issue 11, finding 8).
    @Test func readingTheDeadLetterQueueEndsWhenFewerArriveThanCounted() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1)) { fixture in
            let publisher = try await fixture.broker.openChannel(confirms: true)
            _ = try await publisher.publish((0..<2).map {
                AMQPPublish(exchange: Topology.deadLetterExchange, routingKey: "", message: AMQPMessage(body: [1], properties: AMQPProperties(messageID: "dead-\($0)")))
            })
            try await publisher.close()
            let queue = DeadLetterQueue(broker: fixture.broker, topology: fixture.topology)
            let channel = try await fixture.broker.openChannel()
            let read = try await withThrowingTaskGroup(of: [AMQPDelivery]?.self) { group in
                group.addTask { try await queue.take(wanted: 5, on: channel, quiet: .milliseconds(300)) }
                group.addTask {
                    try await Task.sleep(for: .seconds(30))
                    return nil  // still waiting: the bug
                }
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
            #expect(read?.count == 2, "it returned with what came")
            try await channel.close()
        }
    }
}
