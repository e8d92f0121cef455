import AMQPClient
import Foundation
import IntegrationSupport
import Testing

/// Channels opened and closed over a long-lived connection, as a worker's partition consumers
/// do whenever partitions move.
@Suite struct AMQPChannelLifecycleTests {
    /// Deliveries keep arriving while channel.close waits for its close-ok. Answering them (a
    /// reject) on the closing channel makes RabbitMQ close the whole connection, which would
    /// take every other partition of the worker down with it.
    @Test func closingAConsumingChannelMidFlowLeavesTheConnectionOpen() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let setup = try await connection.openChannel(confirms: true)
        let queue = TestServices.uniqueName("amqp-close-mid-flow")
        try await TestServices.declareQuorumQueue(queue)
        let count = 3_000
        let body = AMQPMessage(body: Array(repeating: UInt8(ascii: "x"), count: 200), properties: AMQPProperties(messageID: "m"))
        _ = try await setup.publish((0..<count).map { _ in AMQPPublish(exchange: "", routingKey: queue, message: body) })

        for _ in 0..<8 {
            let channel = try await connection.openChannel()
            try await channel.setPrefetch(1_000)
            let consumer = try await channel.consume(queue: queue)
            var iterator = consumer.makeAsyncIterator()
            _ = try await iterator.next()  // deliveries are flowing now
            try await channel.close()
        }

        #expect(connection.isOpen)
        let check = try await connection.openChannel()
        var waiting: UInt32 = 0
        for _ in 0..<50 {  // closed channels' deliveries go back to the queue
            waiting = try await check.declareQueue(queue, passive: true).messageCount
            if waiting == UInt32(count) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(waiting == UInt32(count))
        try await check.deleteQueue(queue)
        await connection.close()
    }

    /// A worker that has moved partitions for weeks has opened far more channels than the
    /// 2,047 numbers it negotiated: numbers of closed channels are reused (never one in use,
    /// never past the limit, never wrapping to 0, the connection's own channel).
    @Test func moreChannelsThanTheChannelLimitCanBeOpenedOneAfterAnother() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let kept = try await connection.openChannel()  // an id in use that must be skipped
        var outOfRange = 0
        for _ in 0..<2_100 {
            let channel = try await connection.openChannel()
            #expect(channel.id != kept.id)
            if !(1...2_047).contains(channel.id) { outOfRange += 1 }
            try await channel.close()
        }
        #expect(outOfRange == 0)
        let queue = TestServices.uniqueName("amqp-channel-reuse")
        try await kept.declareQueue(queue)
        #expect(try await kept.deleteQueue(queue) == 0)
        #expect(connection.isOpen)
        await connection.close()
    }
}
