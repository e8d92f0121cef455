import BullhornClient
import Foundation

/// A row of `integrations`, with its Bullhorn secrets still sealed.
public struct Integration: Sendable {
    public let id: String
    public let clientID: String
    public let username: String
    public let endpoints: BullhornEndpoints
    public let sealedSecrets: [UInt8]
    public let callsPerMinute: Int
    public let tearsheetsLastSyncedAt: Date?
    public let active: Bool

    /// A Bullhorn client for this integration; the secrets are opened only here.
    public func bullhornClient(
        secretKey: [UInt8], configuration: BullhornClientConfiguration? = nil, budget: BullhornCallBudget? = nil
    ) throws -> BullhornClient {
        let secrets = try IntegrationSecrets.open(sealedSecrets, key: secretKey, integrationID: id)
        var effective = configuration ?? BullhornClientConfiguration()
        effective.callsPerMinute = callsPerMinute
        let id = id
        effective.observeCall = { FleetMetrics.bullhornCall(id, status: $0) }
        FleetMetrics.bullhornBudget(id).record(Double(callsPerMinute) / 60)
        return BullhornClient(
            credentials: BullhornCredentials(clientID: clientID, clientSecret: secrets.clientSecret, username: username, password: secrets.password),
            endpoints: endpoints, configuration: effective, budget: budget)
    }
}
