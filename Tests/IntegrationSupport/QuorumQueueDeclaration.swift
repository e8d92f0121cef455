import AMQPClient

extension TestServices {
    /// Declares a quorum queue on a connection of its own, again when the broker fails the
    /// declaration itself. On two loaded cores a new quorum queue's leader election can outlast
    /// the 5 s RabbitMQ gives it, and the broker then closes the connection with INTERNAL_ERROR
    /// (541) before the code under test has run. Declared, the queue is redeclared or used on
    /// the test's own channel without an election.
    public static func declareQuorumQueue(
        _ name: String, arguments: [String: AMQPFieldValue] = [:], url: String = amqpURL, attempts: Int = 4
    ) async throws {
        var arguments = arguments
        arguments["x-queue-type"] = .string("quorum")
        for attempt in 1...attempts {
            do {
                let connection = try await AMQPConnection.connect(url: url)
                do {
                    _ = try await connection.openChannel().declareQueue(name, arguments: arguments)
                } catch {
                    await connection.close()
                    throw error
                }
                await connection.close()
                return
            } catch let error as AMQPError where error.isRetriable && attempt < attempts {
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
