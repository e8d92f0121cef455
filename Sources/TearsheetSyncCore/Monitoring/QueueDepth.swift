import CurlHTTP
import Foundation

/// One queue's state as the RabbitMQ management API reports it.
public struct QueueDepth: Sendable, Codable, Equatable {
    public let queue: String
    /// The partition index, or nil for the dead-letter queue.
    public let partition: Int?
    public let ready: Int
    public let unacked: Int
    public let consumers: Int
    /// Messages per second over the management API's last sample window.
    public let publishRate: Double
    public let ackRate: Double
    /// False when the queue is missing on the broker (topology not applied).
    public let exists: Bool
}

/// Reads queue depths from the management API (`TSYNC_MANAGEMENT_URL`).
public struct QueueDepthReader: Sendable {
    private let baseURL: String
    private let authorization: String?
    private let http = CurlHTTPClient(maxConcurrentRequests: 1)

    public init(managementURL: URL) {
        var components = URLComponents(url: managementURL, resolvingAgainstBaseURL: false)!
        if let user = components.user {
            let password = components.password ?? ""
            authorization = "Basic " + Data("\(user.removingPercentEncoding ?? user):\(password.removingPercentEncoding ?? password)".utf8).base64EncodedString()
        } else {
            authorization = nil
        }
        components.user = nil
        components.password = nil
        let bare = components.string ?? ""
        baseURL = bare.hasSuffix("/") ? String(bare.dropLast()) : bare
    }

    /// The partition queues of `topology` in order, then the dead-letter queue.
    public func depths(topology: Topology, virtualHost: String) async throws -> [QueueDepth] {
        let vhost = virtualHost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? virtualHost
        var request = HTTPClientRequest(url: "\(baseURL)/api/queues/\(vhost)?columns=name,messages_ready,messages_unacknowledged,consumers,message_stats", timeout: .seconds(10))
        if let authorization { request.headers.append(("Authorization", authorization)) }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request)
        } catch let error as HTTPClientError {
            throw ConfigurationError(setting: Settings.managementURLVariable, "cannot reach the RabbitMQ management API: \(error.message)")
        }
        guard response.status == 200 else {
            throw ConfigurationError(
                setting: Settings.managementURLVariable, "the management API answered \(response.status) for virtual host \(virtualHost)")
        }
        struct Row: Decodable {
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
        let rows: [Row]
        do {
            rows = try JSONDecoder().decode([Row].self, from: Data(response.body))
        } catch {
            throw ConfigurationError(setting: Settings.managementURLVariable, "the management API's answer is not a queue list")
        }
        let byName = Dictionary(rows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let wanted = topology.partitions.map { ($0.queue, Optional($0.index)) } + [(Topology.deadLetterQueue, nil)]
        return wanted.map { name, partition in
            let row = byName[name]
            return QueueDepth(
                queue: name, partition: partition, ready: row?.messages_ready ?? 0, unacked: row?.messages_unacknowledged ?? 0,
                consumers: row?.consumers ?? 0, publishRate: row?.message_stats?.publish_details?.rate ?? 0,
                ackRate: row?.message_stats?.ack_details?.rate ?? 0, exists: row != nil)
        }
    }
}
