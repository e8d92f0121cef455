import BullhornClient
import Foundation
import PostgresClient
import Synchronization

/// One Bullhorn client per integration in this process, built on first use from the
/// integration's row: they share its session, its call budget and its connections.
public final class BullhornClients: Sendable {
    private let pool: PostgresPool
    private let secretKey: [UInt8]
    private let configuration: BullhornClientConfiguration?
    private let clients = Mutex<[String: BullhornClient]>([:])

    public init(pool: PostgresPool, secretKey: [UInt8], configuration: BullhornClientConfiguration? = nil) {
        self.pool = pool
        self.secretKey = secretKey
        self.configuration = configuration
    }

    public func client(for integrationID: String) async throws -> BullhornClient {
        if let client = clients.withLock({ $0[integrationID] }) { return client }
        guard let integration = try await IntegrationStore(pool: pool).load(ids: [integrationID]).first else {
            throw ConfigurationError(setting: "integrations", "no integration \(integrationID)")
        }
        let client = try integration.bullhornClient(secretKey: secretKey, pool: pool, configuration: configuration)
        return clients.withLock { clients in
            if let existing = clients[integrationID] { return existing }
            clients[integrationID] = client
            return client
        }
    }
}
