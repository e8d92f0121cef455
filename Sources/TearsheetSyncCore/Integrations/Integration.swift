import BullhornClient
import CurlHTTP
import Foundation
import PostgresClient

/// A row of `integrations`, with its Bullhorn secrets still sealed.
public struct Integration: Sendable {
    public let id: String
    public let clientID: String
    public let username: String
    public let endpoints: BullhornEndpoints
    public let sealedSecrets: [UInt8]
    public let callsPerMinute: Int
    /// The Bullhorn corporation, when several integrations share one (and so its call limit).
    public let corporation: String?
    public let tearsheetsLastSyncedAt: Date?
    public let active: Bool

    /// Whether a client built from `other` is the one built from this row: the same Bullhorn
    /// user (client id, user, endpoints, sealed secrets: re-sealing the same secrets counts as a
    /// change, which only costs a new client) and the same budget. The limit itself is not
    /// compared: the fleet's budget reads it at each lease.
    public func buildsTheSameClient(as other: Integration) -> Bool {
        clientID == other.clientID && username == other.username && endpoints == other.endpoints && sealedSecrets == other.sealedSecrets
            && budgetKey == other.budgetKey
    }

    /// Whose Bullhorn call budget this integration spends: its corporation's, or its own.
    public var budgetKey: String { corporation ?? id }

    /// A Bullhorn client for this integration whose calls spend the fleet-wide budget of its
    /// corporation (`FleetTokenSource`, through `pool`) on the fleet's REST session for the
    /// integration (`FleetBullhornSessions`); the secrets are opened only here.
    public func bullhornClient(
        keys: SealingKeys, pool: PostgresPool, configuration: BullhornClientConfiguration? = nil, http: CurlHTTPClient? = nil
    ) throws -> BullhornClient {
        let secrets = try IntegrationSecrets.open(sealedSecrets, keys: keys, integrationID: id)
        var effective = configuration ?? BullhornClientConfiguration()
        effective.callsPerMinute = callsPerMinute
        let budget = BullhornCallBudget(
            tokens: FleetTokenSource(pool: pool, budgetKey: budgetKey), maxConcurrent: effective.maxConcurrentCalls)
        let id = id
        effective.observeCall = { FleetMetrics.bullhornCall(id, status: $0) }
        FleetMetrics.bullhornBudget(id).record(Double(callsPerMinute) / 60)
        // Exported from zero, before the first login, so that increase() sees the first.
        FleetMetrics.bullhornSessionsOpened(id).increment(by: 0)
        FleetMetrics.bullhornLoginsRefused(id).increment(by: 0)
        let credentials = BullhornCredentials(clientID: clientID, clientSecret: secrets.clientSecret, username: username, password: secrets.password)
        let sessions = FleetBullhornSessions(pool: pool, integrationID: id, keys: keys, credentials: credentials, endpoints: endpoints)
        return BullhornClient(credentials: credentials, endpoints: endpoints, configuration: effective, budget: budget, http: http, sessions: sessions)
    }
}
