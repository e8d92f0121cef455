import AMQPClient
import Testing

@Suite struct AMQPConfigurationTests {
    @Test func parsesAFullURL() throws {
        let configuration = try AMQPConfiguration(url: "amqps://ops:s%40cret@broker.example:5673/prod?heartbeat=10&connection_timeout=2500")
        #expect(configuration.host == "broker.example")
        #expect(configuration.port == 5673)
        #expect(configuration.useTLS)
        #expect(configuration.username == "ops")
        #expect(configuration.password == "s@cret")
        #expect(configuration.virtualHost == "prod")
        #expect(configuration.heartbeatSeconds == 10)
        #expect(configuration.connectTimeout == .milliseconds(2500))
    }

    @Test func defaultsFollowRabbitMQsURISpec() throws {
        let plain = try AMQPConfiguration(url: "amqp://127.0.0.1")
        #expect(plain.port == 5672)
        #expect(plain.virtualHost == "/")
        #expect(plain.username == "guest")
        let encodedRoot = try AMQPConfiguration(url: "amqp://u:p@h/%2F")
        #expect(encodedRoot.virtualHost == "/")
        #expect(try AMQPConfiguration(url: "amqps://h").port == 5671)
    }

    @Test(arguments: [
        ("amqp://u:p%40ss@rabbit-0.rabbit:5672/v", "rabbit-0.rabbit"), ("amqp://[::1]:5672/%2F", "::1"), ("amqp://[fe80::1]", "fe80::1"),
        ("amqps://u@10.0.0.7?heartbeat=5", "10.0.0.7"), ("amqp://u:p@h#frag", "h"),
    ])
    func readsTheHostAndAnIPv6AddressWithoutItsBrackets(url: String, host: String) throws {
        #expect(try AMQPConfiguration(url: url).host == host)
    }

    @Test(arguments: ["nonsense", "http://host/", "amqp://", "amqp://u:p@:5672/", "amqp://[::1", "amqp://h?heartbeat=-1", "amqp://h?frame_max=12"])
    func rejectsBadURLs(_ url: String) {
        #expect(throws: AMQPError.self) { try AMQPConfiguration(url: url) }
    }

    @Test func descriptionNeverShowsThePassword() throws {
        let configuration = try AMQPConfiguration(url: "amqp://user:hunter2@h:5672/v")
        #expect(!configuration.description.contains("hunter2"))
        #expect(configuration.description == "amqp://user@h:5672/v")
    }
}
