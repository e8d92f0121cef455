import AMQPClient
import Foundation
import IntegrationSupport
import Testing

/// A cluster's brokers as one setting: comma-separated URLs, tried in order (issue 12).
@Suite struct AMQPBrokerListTests {
    @Test func aCommaSeparatedListIsParsedBrokerByBrokerWithoutItsPasswords() throws {
        let configuration = try AMQPConfiguration(url: "amqp://app:s3cret@node-a:5672/prod, amqp://app:s3cret@node-b:5673/prod,amqps://app:s3cret@node-c/prod")
        #expect(configuration.brokers.map(\.host) == ["node-a", "node-b", "node-c"])
        #expect(configuration.brokers.map(\.port) == [5672, 5673, 5671])
        #expect(configuration.brokers.allSatisfy { $0.virtualHost == "prod" && $0.password == "s3cret" })
        #expect(configuration.description == "amqp://app@node-a:5672/prod,amqp://app@node-b:5673/prod,amqps://app@node-c:5671/prod")
        let error = #expect(throws: AMQPError.self) { try AMQPConfiguration(url: "amqp://app:s3cret@node-a/prod,http://app:s3cret@node-b/prod") }
        #expect(error?.message.contains("broker 2") == true)
        #expect(error?.description.contains("s3cret") == false)
    }

    @Test func theFirstBrokerThatAnswersIsUsed() async throws {
        let dead = try TCPProxy(inFrontOf: TestServices.amqpURL)
        dead.close()  // nothing listens on its port now
        let connection = try await AMQPConnection.connect(url: "\(dead.route(TestServices.amqpURL)),\(TestServices.amqpURL)")
        #expect(connection.isOpen)
        #expect(connection.configuration.port == URLComponents(string: TestServices.amqpURL)?.port ?? 5672)
        await connection.close()
        await #expect(throws: AMQPError.self) { try await AMQPConnection.connect(url: "\(dead.route(TestServices.amqpURL)),\(dead.route(TestServices.amqpURL))") }
    }

    /// The broker a process was using goes away: the next connection, made from the same
    /// setting, is to the next broker of the list.
    @Test func aLostBrokerIsReplacedByTheNextOfTheList() async throws {
        let first = try TCPProxy(inFrontOf: TestServices.amqpURL)
        let setting = "\(first.route(TestServices.amqpURL)),\(TestServices.amqpURL)"
        let connection = try await AMQPConnection.connect(url: setting)
        #expect(connection.configuration.port == first.port, "the first of the list while it answers")
        first.close()  // the node goes: its connections end, new ones are refused
        let deadline = ContinuousClock.now + .seconds(30)
        while connection.isOpen, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(!connection.isOpen)
        let next = try await AMQPConnection.connect(url: setting)
        #expect(next.configuration.port != first.port)
        let channel = try await next.openChannel()
        _ = try await channel.declareQueue(TestServices.uniqueName("failover"), exclusive: true)
        await next.close()
    }
}
