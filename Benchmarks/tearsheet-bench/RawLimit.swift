import AMQPClient

/// `../shared/bench/raw-limit`, the thin-C broker baseline: confirmed publish and consume of
/// `messages` through one quorum queue on the same broker, run before our own figure.
enum RawLimit {
    /// Its figures (`publish_msgs_per_s`, `consume_msgs_per_s`). It leaves its queue behind,
    /// named after its process id; that goes, so runs do not pile up queues.
    static func run(messages: Int, options: BenchmarkOptions) async throws -> [String: Double] {
        let script = "\(options.sharedDirectory)/bench/raw-limit"
        let (figures, pid) = BaselineProcess.runWithPID("/bin/bash", [script, "\(messages)", "\(options.window)", "\(options.prefetch)"])
        let connection = try await AMQPConnection.connect(AMQPConfiguration(host: options.amqpHost, port: options.amqpPort))
        _ = try? await connection.openChannel().deleteQueue("raw-limit-\(pid)")
        await connection.close()
        return figures
    }
}
