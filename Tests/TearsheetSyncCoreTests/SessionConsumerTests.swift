import AMQPClient
import BullhornClient
import BullhornSimulator
import Foundation
import IntegrationSupport
import Logging
import Synchronization
import Testing

@testable import TearsheetSyncCore

/// One session consumed against the real broker, the real database and the simulator.
@Suite struct SessionConsumerTests {
    private func consumer(_ fixture: FleetFixture, options: WorkerOptions, configuration: BullhornClientConfiguration = FleetFixture.clientConfiguration) -> SessionConsumer {
        let processor = PairProcessor(pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: configuration))
        return SessionConsumer(
            broker: fixture.broker, session: SessionQueue(integrationID: fixture.integrationID),
            processor: processor, options: options, logger: FleetFixture.quietLogger)
    }

    /// Runs the consumer until `done` holds for its totals (or 60 s pass: beside the whole
    /// suite on two cores, 300 JobSubmissions took 30 s once).
    private func consume(_ consumer: SessionConsumer, until done: @escaping @Sendable (SessionConsumer.Totals) -> Bool) async throws -> SessionConsumer.Totals {
        let totals = Mutex(SessionConsumer.Totals())
        let started = ContinuousClock.now
        _ = try await consumer.run(
            shouldStop: { done(totals.withLock { $0 }) || ContinuousClock.now - started > .seconds(60) },
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
    /// the pairs in hand (the worker starts it again on new connections): it cancels, finishes
    /// what was already prefetched (handing it back would cost each a delivery), and leaves no
    /// consumer on the queue.
    @Test func losingTheDeadLetterConnectionEndsTheConsumerAfterThePairsInHand() async throws {
        let seed = SimulatorSeed(candidates: 400, jobOrders: 1, tearsheets: [.init(members: 200, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            _ = try await fixture.publisher().run()
            fixture.world.setFaults(SimulatorFaults(latency: .milliseconds(20)))  // batches take a while
            let deadLetterBroker = try await AMQPConnection.connect(url: fixture.amqpURL)
            let partition = SessionQueue(integrationID: fixture.integrationID)
            let processor = PairProcessor(
                pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration))
            let consumer = SessionConsumer(
                broker: fixture.broker, deadLetterBroker: deadLetterBroker, session: partition, processor: processor,
                options: WorkerOptions(batchSize: 20, batchWait: .milliseconds(20)), logger: FleetFixture.quietLogger)
            let settled = Mutex(0)
            let run = Task<SessionConsumer.Ending, any Error> {
                try await consumer.run(shouldStop: { false }, report: { totals in settled.withLock { $0 = totals.acknowledged } })
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while settled.withLock({ $0 }) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            await deadLetterBroker.close()
            _ = try await run.value  // returns on its own: shouldStop never says so
            let acknowledged = settled.withLock { $0 }
            #expect(acknowledged < 200, "it stopped early")
            let channel = try await fixture.broker.openChannel()
            var queue = try await channel.declareQueue(partition.queue, passive: true)
            for _ in 0..<50 where Int(queue.messageCount) != 200 - acknowledged || queue.consumerCount != 0 {  // the queue catches up a moment later
                try await Task.sleep(for: .milliseconds(100))
                queue = try await channel.declareQueue(partition.queue, passive: true)
            }
            #expect(queue.consumerCount == 0)
            #expect(Int(queue.messageCount) == 200 - acknowledged, "everything it took was settled; the rest waits in the queue")
            let redelivered = try await fixture.drainSessions().filter { ($0.delivery.message.properties.headers["x-delivery-count"]?.intValue ?? 0) > 0 }
            #expect(redelivered.isEmpty, "no message was handed back")
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
            let partition = SessionQueue(integrationID: fixture.integrationID)
            #expect(try await channel.declareQueue(partition.queue, passive: true).messageCount == 0)
            for member in fixture.world.tearsheets[0].members {
                #expect(fixture.world.jobSubmissionCount(candidate: member.candidateID, jobOrder: job) == 1)
            }
        }
    }

    /// A pair whose JobSubmission another worker may have created (its claim is fresh: that
    /// worker crashed while its PUT was held) waits a little in place, then goes to the back
    /// of its session as a new message, and the batch moves on: held in hand for the whole
    /// grace, every crash of its holder would spend one of its deliveries (the chaos suite saw
    /// such pairs dead-lettered at the delivery limit).
    @Test func aDeferredPairGoesToTheBackOfItsSessionAndIsAddedAfterTheGrace() async throws {
        let seed = SimulatorSeed(candidates: 100, jobOrders: 1, tearsheets: [.init(members: 20, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            let job = fixture.world.tearsheets[0].jobOrderIDs[0]
            try await fixture.addCampaign(1, job: job)
            _ = try await fixture.publisher().run()
            let held = fixture.world.tearsheets[0].members[0].candidateID
            let started = ContinuousClock.now
            try await fixture.pool.query(
                """
                INSERT INTO job_submission_intents (integration_id, ats_candidate_id, ats_job_id, uncertain_since)
                VALUES (\(fixture.integrationID), \(held), \(job), now())
                """)
            let processor = PairProcessor(
                pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration),
                uncertainWriteGrace: .seconds(10))
            let consumer = SessionConsumer(
                broker: fixture.broker, session: SessionQueue(integrationID: fixture.integrationID), processor: processor,
                options: WorkerOptions(batchSize: 20, backoff: .milliseconds(200), deferInPlace: .seconds(1)), logger: FleetFixture.quietLogger)
            let totals = try await consume(consumer, until: { $0.added >= 20 })
            #expect(totals.added == 20)
            #expect(totals.sentToBack >= 1, "sent to the back rather than held for the whole grace")
            #expect(ContinuousClock.now - started >= .seconds(10), "not created before the grace passed")
            #expect(totals.acknowledged == 20 + totals.sentToBack, "each original acknowledged once, and each copy")
            #expect(fixture.world.jobSubmissionCount(candidate: held, jobOrder: job) == 1)
            let channel = try await fixture.broker.openChannel()
            #expect(try await channel.declareQueue(SessionQueue(integrationID: fixture.integrationID).queue, passive: true).messageCount == 0)
        }
    }

    @Test func malformedAndUnknownMessagesAreDeadLetteredWithTheirReason() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1)) { fixture in
            let partition = SessionQueue(integrationID: fixture.integrationID)
            try await partition.declare(on: fixture.broker)
            let channel = try await fixture.broker.openChannel(confirms: true)
            let unknown = PairMessage(integrationId: fixture.integrationID, campaignId: 404, atsCandidateId: fixture.world.candidateIDs[0], atsJobId: 1, tearsheetId: 1)
            _ = try await channel.publish([
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: AMQPMessage(body: Array("{oops".utf8), properties: AMQPProperties(messageID: "bad-1"))),
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: unknown.amqpMessage()),
            ])
            let totals = try await consume(consumer(fixture, options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(100))), until: { $0.deadLettered >= 2 })
            #expect(totals.deadLettered == 2)
            let letters = try await deadLetters(fixture, count: 2)
            let reasons = Dictionary(uniqueKeysWithValues: letters.map { ($0.message.properties.messageID ?? "", $0.message.properties.headers[SessionConsumer.reasonHeader]?.stringValue ?? "") })
            #expect(reasons["bad-1"]?.hasPrefix("malformed message") == true)
            #expect(reasons[unknown.messageID] == "unknown campaign 404")
        }
    }

    /// A pair delivered twice in one batch (a publisher's pass republished it) is one pair:
    /// added once, with one JobSubmission, and both deliveries acknowledged; one that cannot be
    /// added is dead-lettered twice, once per delivery, so that nothing is dropped.
    @Test func aPairDeliveredTwiceInOneBatchIsAddedOnceOrDeadLetteredTwice() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1)) { fixture in
            let job = fixture.world.jobOrderIDs[0]
            try await fixture.addCampaign(1, job: job)
            let partition = SessionQueue(integrationID: fixture.integrationID)
            try await partition.declare(on: fixture.broker)
            let candidate = fixture.world.candidateIDs[0]
            let good = PairMessage(integrationId: fixture.integrationID, campaignId: 1, atsCandidateId: candidate, atsJobId: job, tearsheetId: 1)
            let unknown = PairMessage(integrationId: fixture.integrationID, campaignId: 404, atsCandidateId: candidate, atsJobId: job, tearsheetId: 1)
            let channel = try await fixture.broker.openChannel(confirms: true)
            _ = try await channel.publish([good, unknown, good, unknown].map {
                AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: $0.amqpMessage())
            })
            let totals = try await consume(
                consumer(fixture, options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(300))), until: { $0.acknowledged >= 4 })
            #expect(totals.batches == 1, "the four deliveries came in one batch")
            #expect(totals.added == 1)
            #expect(totals.deadLettered == 2)
            #expect(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 1)
            #expect(fixture.world.jobSubmissionCount(candidate: candidate, jobOrder: job) == 1)
            let letters = try await deadLetters(fixture, count: 2)
            #expect(letters.map { $0.message.properties.messageID } == [unknown.messageID, unknown.messageID])
            #expect(try await fixture.broker.openChannel().declareQueue(partition.queue, passive: true).messageCount == 0)
        }
    }

    /// Bullhorn throttles every call for a while: the batch waits in place, with backoff, and
    /// spends no delivery; when the throttling ends the pair is added and nothing is dead-lettered.
    @Test func aBatchWideTransientFailureIsRetriedInPlaceWithoutSpendingDeliveries() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1), faults: SimulatorFaults(throttleEvery: 1, throttleBurst: 1)) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.jobOrderIDs[0])
            let partition = SessionQueue(integrationID: fixture.integrationID)
            try await partition.declare(on: fixture.broker)
            let channel = try await fixture.broker.openChannel(confirms: true)
            let pair = PairMessage(integrationId: fixture.integrationID, campaignId: 1, atsCandidateId: fixture.world.candidateIDs[0], atsJobId: fixture.world.jobOrderIDs[0], tearsheetId: 1)
            _ = try await channel.publish([AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: pair.amqpMessage())])
            var configuration = FleetFixture.clientConfiguration
            configuration.retry.maxAttempts = 2
            let options = WorkerOptions(batchSize: 10, batchWait: .milliseconds(50), backoff: .milliseconds(20), maxBackoff: .milliseconds(50), pairAttempts: 2)
            let world = fixture.world
            let throttling = Task {
                // Eight throttled calls: with two client attempts each, at least four attempts at the batch.
                while world.callCounts["GET entity/Candidate", default: 0] < 8 { try await Task.sleep(for: .milliseconds(10)) }
                world.setFaults(SimulatorFaults())  // the throttling ends
            }
            let totals = try await consume(consumer(fixture, options: options, configuration: configuration)) { $0.added >= 1 }
            try await throttling.value
            #expect(totals.retries >= 3, "retried while it lasted, beyond pairAttempts: the whole batch failed, not the pair")
            #expect(totals.added == 1)
            #expect(totals.deadLettered == 0)
            #expect(try await channel.declareQueue(Topology.deadLetterQueue, passive: true).messageCount == 0)
            #expect(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 1)
        }
    }

    /// Only this pair's JobSubmission keeps failing for a reason that may pass: it is tried
    /// `pairAttempts` times in place, then dead-lettered with its last error; its neighbour is added.
    @Test func aPairWhoseOwnStepKeepsFailingIsDeadLetteredAloneWithItsLastError() async throws {
        try await FleetFixture.run(seed: SimulatorSeed(candidates: 10, jobOrders: 1)) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.jobOrderIDs[0])
            let partition = SessionQueue(integrationID: fixture.integrationID)
            try await partition.declare(on: fixture.broker)
            let channel = try await fixture.broker.openChannel(confirms: true)
            let (unlucky, lucky) = (fixture.world.candidateIDs[0], fixture.world.candidateIDs[1])
            let pairs = [unlucky, lucky].map {
                PairMessage(integrationId: fixture.integrationID, campaignId: 1, atsCandidateId: $0, atsJobId: fixture.world.jobOrderIDs[0], tearsheetId: 1)
            }
            _ = try await channel.publish(pairs.map { AMQPPublish(exchange: Topology.pairsExchange, routingKey: partition.routingKey, message: $0.amqpMessage()) })
            // 429: certainly not applied (a 500 may have been, and would wait out the uncertain-write grace).
            fixture.world.refuseJobSubmissions(forCandidates: [unlucky], status: 429)
            let processor = PairProcessor(
                pool: fixture.pool, clients: BullhornClients(pool: fixture.pool, keys: fixture.keys, configuration: FleetFixture.clientConfiguration))
            let consumer = SessionConsumer(
                broker: fixture.broker, session: partition, processor: processor,
                options: WorkerOptions(batchSize: 10, batchWait: .milliseconds(50), backoff: .milliseconds(10), maxBackoff: .milliseconds(20), pairAttempts: 3),
                logger: FleetFixture.quietLogger)
            let totals = try await consume(consumer) { $0.acknowledged >= 2 }
            #expect(totals.added == 1)
            #expect(totals.deadLettered == 1)
            let letter = try #require(try await deadLetters(fixture, count: 1).first)
            #expect(letter.message.properties.messageID == pairs[0].messageID)
            let reason = letter.message.properties.headers[SessionConsumer.reasonHeader]?.stringValue ?? ""
            #expect(reason.contains("gave up after 3 attempts") && reason.contains("throttled"), "\(reason)")
            let clientTries = FleetFixture.clientConfiguration.retry.maxAttempts
            #expect(fixture.world.callCounts["PUT entity/JobSubmission"] == 1 + 3 * clientTries, "the neighbour once, the unlucky pair three times")
        }
    }
}
