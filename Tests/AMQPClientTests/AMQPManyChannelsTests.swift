import AMQPClient
import Foundation
import IntegrationSupport
import Testing

/// A worker holding hundreds of sessions has a channel for each (two, with its dead letters),
/// and while it waits for the answer to any one call (a `basic.consume`, a `basic.cancel`),
/// the deliveries of every other channel arrive and librabbitmq queues them. Draining that
/// queue once cost channels × queued frames per frame: the connection's thread stalled for
/// tens of seconds, sent no heartbeat, and the broker closed the connection.
@Suite struct AMQPManyChannelsTests {
    /// Frames read while another channel's call waits for its answer are handled at once, and a
    /// message's content is assembled frame by frame: each arrives whole and in publish order,
    /// one larger than a frame (three body frames) among them.
    @Test func deliveriesReadDuringAnotherChannelsCallsArriveWholeAndInOrder() async throws {
        let consuming = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let publishing = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let setup = try await publishing.openChannel(confirms: true)
        let queue = TestServices.uniqueName("amqp-order")
        try await setup.declareQueue(queue, durable: false, autoDelete: false)
        let channel = try await consuming.openChannel()
        try await channel.setPrefetch(1_000)
        let consumer = try await channel.consume(queue: queue)
        let calls = Task {
            let other = try await consuming.openChannel()
            while !Task.isCancelled { _ = try await other.declareQueue(queue, passive: true) }
        }
        let count = 3_000
        let large = 1_500  // 300 KiB: more than the 128 KiB frame the connection negotiates
        let publishes = (0..<count).map { index in
            let body = Array("\(index)".utf8) + (index == large ? Array(repeating: UInt8(ascii: " "), count: 300 * 1_024) : [])
            return AMQPPublish(exchange: "", routingKey: queue, message: AMQPMessage(body: body, properties: AMQPProperties(messageID: "m\(index)")))
        }
        #expect(try await setup.publish(publishes).allSatisfy { $0.isConfirmed })
        var seen: [Int] = []
        var whole = true
        for try await batch in consumer.batches {
            for delivery in batch {
                let index = Int(String(decoding: delivery.message.body.prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)) ?? -1
                whole = whole && delivery.message.properties.messageID == "m\(index)"
                    && delivery.message.body.count == (index == large ? 300 * 1_024 : 0) + "\(index)".utf8.count
                seen.append(index)
            }
            try await channel.ack(batch.last!.deliveryTag, multiple: true)
            if seen.count >= count { break }
        }
        calls.cancel()
        _ = try? await calls.value
        #expect(seen == Array(0..<count))
        #expect(whole, "every message's id and body came as published")
        _ = try await setup.deleteQueue(queue)
        await consuming.close()
        await publishing.close()
    }

    @Test func deliveriesQueuedOnAHundredChannelsDuringCallsReachTheirConsumersWithoutStallingTheConnection() async throws {
        let channels = 100
        let perQueue = 200
        // Heartbeats every 5 s: a thread that stalls for more than about 10 s loses the
        // connection (the stall was over a minute; beside the whole suite on two cores, 2 s
        // heartbeats were lost to load alone).
        let consuming = try await AMQPConnection.connect(url: TestServices.amqpURL + "?heartbeat=5")
        let publishing = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let setup = try await publishing.openChannel(confirms: true)
        let prefix = TestServices.uniqueName("amqp-many")
        let queues = (0..<channels).map { "\(prefix).\($0)" }
        for queue in queues { try await setup.declareQueue(queue, durable: false, autoDelete: false) }
        let body = AMQPMessage(body: Array(repeating: UInt8(ascii: "x"), count: 100), properties: AMQPProperties(messageID: "m"))

        // A consumer a channel, on empty queues; then the queues fill while calls are made on
        // other channels of the same connection, as sessions starting and ending do: every
        // delivery that arrives before a call's answer is queued by librabbitmq.
        let consumers = try await queues.asyncMap { queue in
            let channel = try await consuming.openChannel()
            try await channel.setPrefetch(UInt16(perQueue))
            return (channel, try await channel.consume(queue: queue))
        }
        let calls = Task {
            let channels = [try await consuming.openChannel(), try await consuming.openChannel()]
            while !Task.isCancelled {
                for channel in channels { try await channel.setPrefetch(10) }
            }
        }
        let outcomes = try await setup.publish(queues.flatMap { queue in (0..<perQueue).map { _ in AMQPPublish(exchange: "", routingKey: queue, message: body) } })
        #expect(outcomes.allSatisfy { $0.isConfirmed })

        // A stalled thread loses the connection to the broker's heartbeat check, and every
        // consumer's sequence then throws.
        let received = try await withThrowingTaskGroup(of: Int.self) { group in
            for (channel, consumer) in consumers {
                group.addTask {
                    var seen = 0
                    for try await batch in consumer.batches {
                        seen += batch.count
                        if seen == perQueue {
                            try await channel.ack(batch.last!.deliveryTag, multiple: true)
                            break
                        }
                    }
                    return seen
                }
            }
            return try await group.reduce(0, +)
        }
        calls.cancel()
        #expect(received == channels * perQueue, "deliveries reached their consumers")
        #expect(consuming.isOpen, "the broker kept the connection")
        for queue in queues { try await setup.deleteQueue(queue) }
        await consuming.close()
        await publishing.close()
    }
}

extension Sequence {
    /// `map` with an async transform, one element after another.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
