import BullhornClient
import CurlHTTP
import Foundation
import Logging
import PostgresClient
import Synchronization

/// One Bullhorn client per integration in this process, built on first use from the
/// integration's row: its callers share its session and its call budget. The row is read
/// again at most every `recheckEvery`: a client whose credentials or corporation changed (a
/// rotated password, another API user) is replaced, so a running worker takes the change
/// within a minute; while the row cannot be read, or its secrets do not open (a key rotation's
/// `integration rekey` run before this process had the new key), the client in hand serves.
/// Every integration's client sends through one pool of `connections` HTTP workers (a thread
/// and a libcurl handle each): a worker holding 200 sessions held 200 × 16 of them, 195 MiB,
/// before they were shared. Each integration still has at most its budget's calls in flight.
public final class BullhornClients: Sendable {
    private let pool: PostgresPool
    private let keys: SealingKeys
    private let configuration: BullhornClientConfiguration?
    private let http: CurlHTTPClient
    private let recheckEvery: Duration
    private let logger: Logger
    private let clients = Mutex<[String: Built]>([:])
    /// Each session's share of the connections for JobSubmission creations.
    public let writeShares: WriteShares

    /// A client, the row it was built from, and when that row was last found unchanged.
    private struct Built {
        let client: BullhornClient
        let integration: Integration
        var checkedAt: ContinuousClock.Instant
    }

    /// 64 connections: ten busy sessions spending 1,500 calls a minute each, at 250 ms an
    /// answer, keep about 63 calls in flight; more busy sessions than that share the line.
    /// `writesUnderWay`: JobSubmission creations under way at once in the process, shared
    /// between the sessions creating (by default twice the connections).
    public init(
        pool: PostgresPool, keys: SealingKeys, configuration: BullhornClientConfiguration? = nil, connections: Int = 64,
        writesUnderWay: Int? = nil, recheckEvery: Duration = .seconds(60), logger: Logger = Logger(label: "tearsheet-sync.bullhorn")
    ) {
        self.pool = pool
        self.logger = logger
        self.keys = keys
        self.configuration = configuration
        self.recheckEvery = recheckEvery
        // Four threads: on two busy cores one thread carrying every integration's calls got less
        // of the CPU than the 64 it replaced (20 integrations' budget: 0.49 of it against 0.55).
        http = CurlHTTPClient(maxConcurrentRequests: max(connections, 1), userAgent: "tearsheet-sync", threads: 4)
        writeShares = WriteShares(total: writesUnderWay ?? 2 * max(connections, 1))
    }

    public func client(for integrationID: String) async throws -> BullhornClient {
        let now = ContinuousClock.now
        let cached = clients.withLock { $0[integrationID] }
        if let cached, now - cached.checkedAt < recheckEvery { return cached.client }
        let integration: Integration
        do {
            guard let loaded = try await IntegrationStore(pool: pool).load(ids: [integrationID]).first else {
                throw ConfigurationError(setting: "integrations", "no integration \(integrationID)")
            }
            integration = loaded
        } catch let error as PostgresError {
            // The row could not be read again: the client in hand serves until it can.
            guard let cached else { throw error }
            return cached.client
        }
        if let cached, cached.integration.buildsTheSameClient(as: integration) {
            clients.withLock { $0[integrationID]?.checkedAt = now }
            return cached.client
        }
        let client: BullhornClient
        do {
            client = try integration.bullhornClient(keys: keys, pool: pool, configuration: configuration, http: http)
        } catch let error as SecretsError {
            // The client in hand holds the secrets opened before; it serves until this process
            // has the key that opens the row's (said once a recheck, until then).
            guard let cached else { throw error }
            clients.withLock { $0[integrationID]?.checkedAt = now }
            logger.error("keeping the Bullhorn client built before: \(error)", metadata: ["integration": .string(integrationID)])
            return cached.client
        }
        return clients.withLock { clients in
            // Another caller may have built one from the same row meanwhile: one client a row.
            if let existing = clients[integrationID], existing.integration.buildsTheSameClient(as: integration) { return existing.client }
            clients[integrationID] = Built(client: client, integration: integration, checkedAt: now)
            return client
        }
    }
}
