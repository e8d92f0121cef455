import AMQPClient
import Foundation
import TearsheetSyncCore

/// Confirmed publish and acknowledged consume of persistent 300-byte messages through one
/// quorum queue: the shape of `raw-limit`, through the project's AMQP layer.
struct AMQPBenchmark {
    let options: BenchmarkOptions

    func run(into report: inout BenchmarkReport) async throws {
        let baseline = try await RawLimit.run(messages: options.messages, options: options)
        let ours = try await measure()
        report.add(
            "amqp publish (confirms, window \(options.window))", ours: ours.publish,
            baseline: baseline["publish_msgs_per_s"], unit: "msg/s")
        report.add(
            "amqp consume (prefetch \(options.prefetch), multi-ack)", ours: ours.consume,
            baseline: baseline["consume_msgs_per_s"], unit: "msg/s")
    }

    private func measure() async throws -> (publish: Double, consume: Double) {
        let connection = try await AMQPConnection.connect(
            AMQPConfiguration(host: options.amqpHost, port: options.amqpPort))
        let channel = try await connection.openChannel(confirms: true)
        let queue = "tearsheet-bench-\(ProcessInfo.processInfo.processIdentifier)"
        try await channel.declareQueue(queue, arguments: ["x-queue-type": .string("quorum")])
        let body = [UInt8](repeating: UInt8(ascii: "x"), count: 300)

        let publishStart = ContinuousClock.now
        var sent = 0
        while sent < options.messages {
            let chunk = min(20_000, options.messages - sent)
            let messages = (sent..<(sent + chunk)).map { index in
                AMQPPublish(
                    exchange: "", routingKey: queue, mandatory: false,
                    message: AMQPMessage(
                        body: body,
                        properties: AMQPProperties(contentType: "application/json", messageID: "7:\(index % 97):\(index)")))
            }
            let outcomes = try await channel.publish(messages, window: options.window)
            guard outcomes.allSatisfy({ $0 == .confirmed }) else { throw BenchmarkFailure("unconfirmed publishes") }
            sent += chunk
        }
        let publishSeconds = (ContinuousClock.now - publishStart).timeInterval

        let consumerChannel = try await connection.openChannel()
        try await consumerChannel.setPrefetch(UInt16(min(options.prefetch, 65_535)))
        let consumeStart = ContinuousClock.now
        let consumer = try await consumerChannel.consume(queue: queue)
        let ackEvery = max(options.prefetch / 2, 1)
        var received = 0
        for try await delivery in consumer {
            received += 1
            if received % ackEvery == 0 || received == options.messages {
                try await consumerChannel.ack(delivery.deliveryTag, multiple: true)
            }
            if received == options.messages { break }
        }
        let consumeSeconds = (ContinuousClock.now - consumeStart).timeInterval
        try await consumer.cancel()
        try await channel.deleteQueue(queue)
        await connection.close()
        return (Double(options.messages) / publishSeconds, Double(options.messages) / consumeSeconds)
    }

    /// raw-limit leaves its queue (named after its shell's PID) behind by design.
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
