import AMQPClient
import Testing

@testable import TearsheetSyncCore

/// How a session consumer cuts its deliveries into batches.
@Suite struct DeliveryBufferTests {
    private func delivery(_ tag: UInt64) -> AMQPDelivery {
        AMQPDelivery(deliveryTag: tag, message: AMQPMessage(body: []))
    }

    @Test func aFullBatchIsTakenAtOnceAndTheRestWaitsForTheNext() async throws {
        let buffer = DeliveryBuffer<AMQPDelivery>()
        for tag: UInt64 in 1...25 { buffer.push([delivery(tag)]) }
        let first = try #require(try await buffer.nextBatch(max: 10, wait: .seconds(5)))
        #expect(first.map(\.deliveryTag) == Array(UInt64(1)...10))
        let second = try #require(try await buffer.nextBatch(max: 10, wait: .seconds(5)))
        #expect(second.map(\.deliveryTag) == Array(UInt64(11)...20))
        // The rest, fewer than a batch, goes whole, and what arrives after goes next.
        let third = try #require(try await buffer.nextBatch(max: 10, wait: .milliseconds(200)))
        #expect(third.map(\.deliveryTag) == Array(UInt64(21)...25))
        buffer.push([delivery(26), delivery(27)])
        let fourth = try #require(try await buffer.nextBatch(max: 10, wait: .milliseconds(200)))
        #expect(fourth.map(\.deliveryTag) == [26, 27])
    }

    /// The last deliveries of a drained queue: nothing more is coming, so the partial batch
    /// goes once deliveries stop, long before the batch wait is over.
    @Test func aPartialBatchGoesOnceDeliveriesStopInsteadOfWaitingOutTheWindow() async throws {
        let buffer = DeliveryBuffer<AMQPDelivery>()
        for tag: UInt64 in 1...3 { buffer.push([delivery(tag)]) }
        let started = ContinuousClock.now
        let batch = try #require(try await buffer.nextBatch(max: 200, wait: .seconds(10), quiet: .milliseconds(20)))
        #expect(batch.count == 3)
        #expect(ContinuousClock.now - started < .seconds(5), "it did not wait out the 10 s window")
    }

    /// Deliveries still streaming in keep the batch open until it is full.
    @Test func deliveriesThatKeepComingFillTheBatch() async throws {
        let buffer = DeliveryBuffer<AMQPDelivery>()
        buffer.push([delivery(1)])
        let feeder = Task {
            for tag in 2...40 as ClosedRange<UInt64> {
                try await Task.sleep(for: .milliseconds(2))
                buffer.push([delivery(tag)])
            }
        }
        let batch = try #require(try await buffer.nextBatch(max: 30, wait: .seconds(20), quiet: .seconds(5)))
        #expect(batch.count == 30)
        try await feeder.value
    }

    @Test func anEndedConsumerYieldsWhatIsLeftThenNil() async throws {
        let buffer = DeliveryBuffer<AMQPDelivery>()
        buffer.push([delivery(1)])
        buffer.end(nil)
        #expect(try await buffer.nextBatch(max: 10, wait: .seconds(5))?.count == 1)
        #expect(try await buffer.nextBatch(max: 10, wait: .seconds(5)) == nil)
    }

    /// A batch waiting to fill is resumed by the delivery that fills it, not by its window.
    @Test func theDeliveryThatFillsTheBatchReleasesIt() async throws {
        let buffer = DeliveryBuffer<AMQPDelivery>()
        buffer.push([delivery(1)])
        let feeder = Task {
            try await Task.sleep(for: .milliseconds(100))
            for tag: UInt64 in 2...5 { buffer.push([delivery(tag)]) }
        }
        let started = ContinuousClock.now
        let batch = try #require(try await buffer.nextBatch(max: 5, wait: .seconds(20), quiet: .seconds(20)))
        #expect(batch.count == 5)
        #expect(ContinuousClock.now - started < .seconds(10), "released by the fifth delivery, not by the 20 s window")
        try await feeder.value
    }
}
