import AMQPClient
import IntegrationSupport
import Testing

/// amqps:// against the local broker's TLS listener (certificate for localhost, signed by a
/// CA that deploy/local/services.sh makes).
@Suite struct AMQPTLSTests {
    @Test func amqpsWithTheRightCAConnectsAndCarriesMessages() async throws {
        let url = "amqps://guest:guest@localhost:\(TestServices.amqpsPort)/%2F?cacertfile=\(TestServices.tlsCAPath)"
        let configuration = try AMQPConfiguration(url: url)
        #expect(configuration.useTLS)
        let connection = try await AMQPConnection.connect(configuration)
        let channel = try await connection.openChannel(confirms: true)
        let queue = TestServices.uniqueName("amqps")
        try await channel.declareQueue(queue, durable: false, exclusive: true)
        let outcomes = try await channel.publish(
            (0..<100).map { AMQPPublish(exchange: "", routingKey: queue, message: AMQPMessage(body: [UInt8($0)], properties: AMQPProperties(messageID: "t\($0)"))) })
        #expect(outcomes.allSatisfy { $0 == .confirmed })
        let consumer = try await channel.consume(queue: queue)
        var received = 0
        for try await delivery in consumer {
            received += 1
            try await channel.ack(delivery.deliveryTag)
            if received == 100 { break }
        }
        #expect(received == 100)
        await connection.close()
    }

    @Test func amqpsRefusesACertificateItCannotVerify() async throws {
        // The system trust store does not know the local test CA.
        await #expect {
            _ = try await AMQPConnection.connect(url: "amqps://guest:guest@localhost:\(TestServices.amqpsPort)/%2F")
        } throws: { error in
            (error as? AMQPError)?.code == .transport && "\(error)".contains("cannot connect")
        }
    }
}
