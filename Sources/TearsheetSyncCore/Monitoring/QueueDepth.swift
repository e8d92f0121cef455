import Foundation

/// One queue's state as the RabbitMQ management API reports it.
public struct QueueDepth: Sendable, Codable, Equatable {
    public let queue: String
    /// The session (integration id) whose queue this is, or nil for the dead-letter queue.
    public let session: String?
    public let ready: Int
    public let unacked: Int
    public let consumers: Int
    /// Messages per second over the management API's last sample window.
    public let publishRate: Double
    public let ackRate: Double
    /// False when the queue is missing on the broker (topology not applied).
    public let exists: Bool
}

/// Reads queue depths from the management API (`TSYNC_MANAGEMENT_URL`). Session queues are
/// found from `topology.json` alone: the queues bound to its pairs exchange that its session
/// policy's pattern matches.
public struct QueueDepthReader: Sendable {
    private let management: RabbitMQManagement

    public init(managementURL: URL) {
        management = RabbitMQManagement(url: managementURL)
    }

    private struct BindingRow: Decodable {
        let destination: String
        let destination_type: String
        let routing_key: String
    }

    private struct QueueRow: Decodable {
        struct Stats: Decodable {
            struct Rate: Decodable { let rate: Double? }
            let publish_details: Rate?
            let ack_details: Rate?
        }

        let name: String
        let messages_ready: Int?
        let messages_unacknowledged: Int?
        let consumers: Int?
        let message_stats: Stats?
    }

    /// The session queues by integration id, then the dead-letter queue.
    public func depths(topology: Topology, virtualHost: String) async throws -> [QueueDepth] {
        let vhost = RabbitMQManagement.segment(virtualHost)
        let bindings = try await management.get(
            "/api/exchanges/\(vhost)/\(RabbitMQManagement.segment(Topology.pairsExchange))/bindings/source", as: [BindingRow].self)
        let sessions = bindings.filter { $0.destination_type == "queue" && topology.isSessionQueue($0.destination) }
            .sorted { $0.routing_key < $1.routing_key }
        let rows = try await management.get(
            "/api/queues/\(vhost)?columns=name,messages_ready,messages_unacknowledged,consumers,message_stats", as: [QueueRow].self)
        let byName = Dictionary(rows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let wanted = sessions.map { ($0.destination, Optional($0.routing_key)) } + [(Topology.deadLetterQueue, nil)]
        return wanted.map { name, session in
            let row = byName[name]
            return QueueDepth(
                queue: name, session: session, ready: row?.messages_ready ?? 0, unacked: row?.messages_unacknowledged ?? 0,
                consumers: row?.consumers ?? 0, publishRate: row?.message_stats?.publish_details?.rate ?? 0,
                ackRate: row?.message_stats?.ack_details?.rate ?? 0, exists: row != nil)
        }
    }
}
