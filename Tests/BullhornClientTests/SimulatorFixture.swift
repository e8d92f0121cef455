import BullhornClient
import BullhornSimulator

/// Runs a simulated Bullhorn and a client logged in to it with the standard account.
@discardableResult
func withSimulator<T: Sendable>(
    seed: SimulatorSeed = SimulatorSeed(), faults: SimulatorFaults = SimulatorFaults(),
    configuration: BullhornClientConfiguration = .fastRetries,
    credentials: BullhornCredentials = .simulator,
    _ body: @Sendable (BullhornWorld, BullhornClient) async throws -> T
) async throws -> T {
    let world = BullhornWorld(seed: seed, faults: faults)
    return try await BullhornSimulatorServer(world: world).run { base in
        let client = BullhornClient(
            credentials: credentials, endpoints: .discovered(loginInfoURL: "\(base)/rest-services/loginInfo"),
            configuration: configuration)
        return try await body(world, client)
    }
}

extension BullhornCredentials {
    static let simulator = BullhornCredentials(
        clientID: SimulatedAuth.Account.standard.clientID, clientSecret: SimulatedAuth.Account.standard.clientSecret,
        username: SimulatedAuth.Account.standard.username, password: SimulatedAuth.Account.standard.password)
}

extension BullhornClientConfiguration {
    /// Real backoff shapes, millisecond scale, so fault-heavy tests stay quick.
    static let fastRetries = BullhornClientConfiguration(
        callsPerMinute: 600_000, maxConcurrentCalls: 4,
        retry: BullhornRetryPolicy(baseDelay: .milliseconds(1), maxDelay: .milliseconds(20), maxAttempts: 12))
}
