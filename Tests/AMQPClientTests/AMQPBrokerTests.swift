import AMQPClient
import Foundation
import IntegrationSupport
import Testing

/// Against the real RabbitMQ broker.
@Suite struct AMQPBrokerTests {
    private func message(_ id: String, body: String = "{}") -> AMQPMessage {
        AMQPMessage(body: Array(body.utf8), properties: AMQPProperties(contentType: "application/json", messageID: id))
    }

    @Test func publishesTenThousandConfirmedAndConsumesEveryOne() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let channel = try await connection.openChannel(confirms: true)
        let queue = TestServices.uniqueName("amqp-10k")
        try await TestServices.declareQuorumQueue(queue)
        let count = 10_000
        let publishes = (0..<count).map { AMQPPublish(exchange: "", routingKey: queue, message: message("m\($0)")) }
        let outcomes = try await channel.publish(publishes, window: 256)
        #expect(outcomes.count == count)
        #expect(outcomes.allSatisfy { $0.isConfirmed })
        #expect(try await channel.declareQueue(queue, passive: true).messageCount == UInt32(count))

        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.setPrefetch(500)
        let consumer = try await consumerChannel.consume(queue: queue)
        var seen = Set<String>()
        for try await delivery in consumer {
            #expect(delivery.message.properties.persistent)
            seen.insert(delivery.message.properties.messageID ?? "")
            if seen.count % 250 == 0 { try await consumerChannel.ack(delivery.deliveryTag, multiple: true) }
            if seen.count == count { break }
        }
        try await consumer.cancel()
        #expect(seen == Set((0..<count).map { "m\($0)" }))
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    @Test func unroutableMandatoryMessageIsReturnedWhileTheOthersAreConfirmed() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let channel = try await connection.openChannel(confirms: true)
        let exchange = TestServices.uniqueName("amqp-return")
        let queue = exchange + ".q"
        try await channel.declareExchange(exchange, type: "direct", durable: false, autoDelete: true)
        try await channel.declareQueue(queue, durable: false, exclusive: true)
        try await channel.bindQueue(queue, exchange: exchange, routingKey: "bound")
        let outcomes = try await channel.publish([
            AMQPPublish(exchange: exchange, routingKey: "bound", message: message("a")),
            AMQPPublish(exchange: exchange, routingKey: "nowhere", message: message("b")),
            AMQPPublish(exchange: exchange, routingKey: "bound", message: message("c")),
        ])
        #expect(outcomes[0] == .confirmed)
        #expect(outcomes[1] == .returned(replyCode: 312, replyText: "NO_ROUTE"))
        #expect(outcomes[2] == .confirmed)
        await connection.close()
    }

    @Test func nackedMessageComesBackRedelivered() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let channel = try await connection.openChannel(confirms: true)
        let queue = TestServices.uniqueName("amqp-nack")
        try await TestServices.declareQuorumQueue(queue)
        _ = try await channel.publish([AMQPPublish(exchange: "", routingKey: queue, message: message("again"))])
        let consumer = try await channel.consume(queue: queue)
        var iterator = consumer.makeAsyncIterator()
        let first = try #require(try await iterator.next())
        #expect(!first.redelivered)
        try await channel.nack(first.deliveryTag, requeue: true)
        let second = try #require(try await iterator.next())
        #expect(second.redelivered)
        #expect(second.message.properties.messageID == "again")
        try await channel.ack(second.deliveryTag)
        try await channel.deleteQueue(queue)
        await connection.close()
    }

    @Test func messageRejectedPastTheDeliveryLimitReachesTheDeadLetterQueue() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let channel = try await connection.openChannel(confirms: true)
        let name = TestServices.uniqueName("amqp-dlx")
        try await channel.declareExchange(name + ".dlx", type: "fanout")
        try await TestServices.declareQuorumQueue(name + ".dead")
        try await channel.bindQueue(name + ".dead", exchange: name + ".dlx", routingKey: "")
        try await TestServices.declareQuorumQueue(
            name,
            arguments: [
                "x-delivery-limit": .int(2),
                "x-dead-letter-exchange": .string(name + ".dlx"),
                "x-dead-letter-strategy": .string("at-least-once"), "x-overflow": .string("reject-publish"),
            ])
        _ = try await channel.publish([AMQPPublish(exchange: "", routingKey: name, message: message("poison"))])

        let consumer = try await channel.consume(queue: name)
        var attempts = 0
        for try await delivery in consumer {
            attempts += 1
            try await channel.reject(delivery.deliveryTag, requeue: true)
            if attempts == 3 { break }
        }
        try await consumer.cancel()
        #expect(attempts == 3)  // the first delivery and two redeliveries

        let deadChannel = try await connection.openChannel()
        let dead = try await deadChannel.consume(queue: name + ".dead")
        var deadIterator = dead.makeAsyncIterator()
        let deadLettered = try #require(try await deadIterator.next())
        #expect(deadLettered.message.properties.messageID == "poison")
        #expect(deadLettered.message.properties.headers["x-death"] != nil)
        try await deadChannel.ack(deadLettered.deliveryTag)
        try await channel.deleteQueue(name)
        try await channel.deleteQueue(name + ".dead")
        try await channel.deleteExchange(name + ".dlx")
        await connection.close()
    }

    @Test func conflictingDeclareClosesOnlyTheChannelWithPreconditionFailed() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let channel = try await connection.openChannel()
        let queue = TestServices.uniqueName("amqp-conflict")
        // A classic queue: the conflict is what is tested, and a quorum declare can fail on its
        // own (`cluster_not_formed`) when two loaded cores start its Raft group too slowly.
        try await channel.declareQueue(queue, arguments: ["x-max-length": .int(5)])
        await #expect {
            try await channel.declareQueue(queue, arguments: ["x-max-length": .int(9)])
        } throws: { error in
            let error = error as? AMQPError
            return error?.code == .channelClosed && error?.replyCode == 406
                && error?.message.contains(queue) == true
        }
        await #expect(throws: AMQPError.self) { try await channel.setPrefetch(1) }
        let fresh = try await connection.openChannel()
        try await fresh.deleteQueue(queue)
        await connection.close()
    }

    @Test func publishingToAMissingExchangeFailsThatCallWithNotFound() async throws {
        let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
        let channel = try await connection.openChannel(confirms: true)
        await #expect {
            _ = try await channel.publish([AMQPPublish(exchange: TestServices.uniqueName("missing"), routingKey: "x", message: message("x"))])
        } throws: { error in
            (error as? AMQPError)?.code == .channelClosed && (error as? AMQPError)?.replyCode == 404
        }
        #expect(connection.isOpen)
        await connection.close()
        #expect(!connection.isOpen)
    }

    /// `isOpen` is false as soon as `close()` returns, not once the connection's thread comes
    /// round to it (a worker's test saw a connection it had closed still open, on loaded CI).
    /// Thirty times, since the window was short.
    @Test func aClosedConnectionIsNoLongerOpenWhenCloseReturns() async throws {
        for _ in 0..<30 {
            let connection = try await AMQPConnection.connect(url: TestServices.amqpURL)
            _ = try await connection.openChannel()
            await connection.close()
            #expect(!connection.isOpen)
            await #expect(throws: AMQPError.self) { _ = try await connection.openChannel() }
        }
    }

    @Test func badCredentialsAreAnAuthenticationErrorWithoutThePassword() async throws {
        var configuration = try AMQPConfiguration(url: TestServices.amqpURL)
        configuration.password = "definitely-wrong-\(UUID())"
        let password = configuration.password
        await #expect {
            _ = try await AMQPConnection.connect(configuration)
        } throws: { error in
            (error as? AMQPError)?.code == .authentication && !"\(error)".contains(password)
        }
    }

    @Test func unreachableBrokerIsATransportError() async throws {
        var configuration = try AMQPConfiguration(url: TestServices.amqpURL)
        configuration.port = 1  // nothing listens there
        await #expect {
            _ = try await AMQPConnection.connect(configuration)
        } throws: { error in
            (error as? AMQPError)?.code == .transport && (error as? AMQPError)?.isRetriable == true
        }
    }
}
