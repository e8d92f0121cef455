import AMQPClient
import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Logging
import Synchronization
import Testing

@testable import TearsheetSyncCore

/// One partition consumed against the real broker, the real database and the simulator.
@Suite struct PartitionConsumerTests {
    private func consumer(_ fixture: FleetFixture, options: WorkerOptions, configuration: BullhornClientConfiguration = FleetFixture.clientConfiguration) -> PartitionConsumer {
        let processor = PairProcessor(pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, secretKey: fixture.secretKey, configuration: configuration))
        return PartitionConsumer(
            broker: fixture.broker, partition: PartitionRouter(topology: fixture.topology).partition(for: fixture.integrationID),
            processor: processor, options: options, logger: FleetFixture.quietLogger)
    }

    /// Runs the consumer until `done` holds for its totals (or 30 s pass).
    private func consume(_ consumer: PartitionConsumer, until done: @escaping @Sendable (PartitionConsumer.Totals) -> Bool) async throws -> PartitionConsumer.Totals {
        let totals = Mutex(PartitionConsumer.Totals())
        let started = ContinuousClock.now
        try await consumer.run(
            shouldStop: { done(totals.withLock { $0 }) || ContinuousClock.now - started > .seconds(30) },
            report: { latest in totals.withLock { $0 = latest } })
        return totals.withLock { $0 }
    }

    private func deadLetters(_ fixture: FleetFixture, count: Int) async throws -> [AMQPDelivery] {
        let channel = try await fixture.broker.openChannel()
        let consumer = try await channel.consume(queue: Topology.deadLetterQueue)
        var letters: [AMQPDelivery] = []
        for try await delivery in consumer {
            letters.append(delivery)
            try await channel.ack(delivery.deliveryTag)
            if letters.count == count { break }
        }
        try await channel.close()
        return letters
    }

    /// Dead letters go over a connection of their own; when it is lost the consumer ends after
    /// its batch in hand (the worker starts it again on new connections) and leaves nothing
    /// behind: no consumer on the queue, its unacknowledged deliveries back to ready.
    @Test func losingTheDeadLetterConnectionEndsTheConsumerAndReleasesItsDeliveries() async throws {
        let seed = SimulatorSeed(candidates: 400, jobOrders: 1, tearsheets: [.init(members: 200, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            _ = try await fixture.publisher().run()
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(20)))  // batches take a while
            let deadLetterBroker = try await AMQPConnection.connect(url: fixture.amqpURL)
            let partition = PartitionRouter(topology: fixture.topology).partition(for: fixture.integrationID)
            let processor = PairProcessor(
                pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, secretKey: fixture.secretKey, configuration: FleetFixture.clientConfiguration))
            let consumer = PartitionConsumer(
                broker: fixture.broker, deadLetterBroker: deadLetterBroker, partition: partition, processor: processor,
                options: WorkerOptions(batchSize: 20, batchWait: .milliseconds(20)), logger: FleetFixture.quietLogger)
            let settled = Mutex(0)
            let run = Task<Void, any Error> {
                try await consumer.run(shouldStop: { false }, report: { totals in settled.withLock { $0 = totals.acknowledged } })
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while settled.withLock({ $0 }) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            await deadLetterBroker.close()
            try await run.value  // returns on its own: shouldStop never says so
            let acknowledged = settled.withLock { $0 }
            #expect(acknowledged < 200, "it stopped early")
            let channel = try await fixture.broker.openChannel()
            var queue = try await channel.declareQueue(partition.queue, passive: true)
            for _ in 0..<50 where Int(queue.messageCount) != 200 - acknowledged {  // the queue takes returns a moment later
                try await Task.sleep(for: .milliseconds(100))
                queue = try await channel.declareQueue(partition.queue, passive: true)
            }
            #expect(queue.consumerCount == 0)
            #expect(Int(queue.messageCount) == 200 - acknowledged, "what it held but had not acknowledged is ready again")
            try await channel.close()
        }
    }

    @Test func publishedPairsEndUpOnTheirCampaignsAndTheQueueDrains() async throws {
        let seed = SimulatorSeed(candidates: 600, jobOrders: 2, tearsheets: [.init(members: 300, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            let job = fixture.world.tearsheets[0].jobOrderIDs[0]
            try await fixture.addCampaign(1, job: job)
            try await fixture.addCampaign(2, job: job)
            _ = try await fixture.publisher().run()
            let totals = try await consume(consumer(fixture, options: WorkerOptions(batchSize: 100)), until: { $0.added + $0.alreadyOnCampaign >= 600 })
            #expect(totals.added == 600)
            #expect(totals.submissionsCreated == 300, "one JobSubmission per candidate for the shared job")
            #expect(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 600)
            let channel = try await fixture.broker.openChannel()
            let partition = PartitionRouter(topology: fixture.topology).partition(for: fixture.integrationID)
            #expect(try await channel.declareQueue(partition.queue, passive: true).messageCount == 0)
            for member in fixture.world.tearsheets[0].members {
                #expect(fixture.world.jobSubmissionCount(candidate: member.candidateID, jobOrder: job) == 1)
            }
        }
    }

    @Test func malformedAndUnknownMessagesAreDeadLetteredWithTheirReason() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1)) { fixture in
            let partition = PartitionRouter(topology: fixture.topology).partition(for: fixture.integrationID)
            let channel = try await fixture.broker.openChannel(confirms: true)
            let unknown = PairMessage(integrationId: fixture.integrationID, campaignId: 404, atsCandidateId: fixture.world.candidateIDs[0], atsJobId: 1, tearsheetId: 1)
            _ = try await channel.publish([
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: AMQPMessage(body: Array("{oops".utf8), properties: AMQPProperties(messageID: "bad-1"))),
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: try unknown.amqpMessage()),
            ])
            let totals = try await consume(consumer(fixture, options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(100))), until: { $0.deadLettered >= 2 })
            #expect(totals.deadLettered == 2)
            let letters = try await deadLetters(fixture, count: 2)
            let reasons = Dictionary(uniqueKeysWithValues: letters.map { ($0.message.properties.messageID ?? "", $0.message.properties.headers[PartitionConsumer.reasonHeader]?.stringValue ?? "") })
            #expect(reasons["bad-1"]?.hasPrefix("malformed message") == true)
            #expect(reasons[unknown.messageID] == "unknown campaign 404")
        }
    }

    @Test func aBatchThatKeepsFailingReachesTheDeadLetterQueueWithItsLastError() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1), faults: SimulatorFaults(throttleEvery: 1, throttleBurst: 1)) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.jobOrderIDs[0])
            let partition = PartitionRouter(topology: fixture.topology).partition(for: fixture.integrationID)
            let channel = try await fixture.broker.openChannel(confirms: true)
            let pair = PairMessage(integrationId: fixture.integrationID, campaignId: 1, atsCandidateId: fixture.world.candidateIDs[0], atsJobId: fixture.world.jobOrderIDs[0], tearsheetId: 1)
            _ = try await channel.publish([AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: try pair.amqpMessage())])
            var configuration = FleetFixture.clientConfiguration
            configuration.retry.maxAttempts = 2
            let options = WorkerOptions(batchSize: 10, batchWait: .milliseconds(50), backoff: .milliseconds(20), maxBackoff: .milliseconds(50), deliveryLimit: 3)
            let totals = try await consume(consumer(fixture, options: options, configuration: configuration), until: { $0.failedBatches >= 3 })
            #expect(totals.failedBatches == 3)
            let letter = try #require(try await deadLetters(fixture, count: 1).first)
            #expect(letter.message.properties.messageID == pair.messageID)
            let reason = letter.message.properties.headers[PartitionConsumer.reasonHeader]?.stringValue ?? ""
            #expect(reason.contains("gave up after 3 attempts") && reason.contains("throttled"))
            #expect(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 0)
        }
    }
}
