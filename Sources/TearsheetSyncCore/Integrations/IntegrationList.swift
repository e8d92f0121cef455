import Foundation
import PostgresClient

/// `integration list`: every integration with its budget, its passes and the fleet's Bullhorn
/// session for it, so that an operator sees without SQL which integration is paused after a
/// refused login and why, which has never passed, and whose watermark stands still. Nothing
/// sealed is read: neither the Bullhorn secrets nor the session's tokens.
public struct IntegrationList: Sendable, Encodable {
    public struct Entry: Sendable, Encodable {
        public let integration: IntegrationStore.Registration
        /// Nil until a process of the fleet first called Bullhorn for it.
        public let bullhornSession: FleetBullhornSessions.Standing?
    }

    public let integrations: [Entry]

    public static func load(pool: PostgresPool) async throws -> IntegrationList {
        let sessions = try await FleetBullhornSessions.standings(pool: pool)
        return IntegrationList(
            integrations: try await IntegrationStore(pool: pool).registrations().map { Entry(integration: $0, bullhornSession: sessions[$0.id]) })
    }

    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// Three lines an integration, as an operator reads them.
    public func text() -> String {
        guard !integrations.isEmpty else { return "no integrations (register one with `integration add`)" }
        return integrations.map(Self.lines).joined(separator: "\n")
    }

    private static func lines(_ entry: Entry) -> String {
        let registration = entry.integration
        let user = registration.username.map { "user \($0), " } ?? ""
        let budget = registration.corporation.map { "the budget of corporation \($0)" } ?? "its own budget"
        let state = registration.active ? "active" : "inactive"
        let pass = registration.lastPassAt.map { "last pass \(stamp($0)): \(registration.lastPassOutcome ?? "")" } ?? "no pass yet"
        return """
            \(registration.id) (\(state), \(registration.provider), \(user)\(registration.callsPerMinute) calls/min, \(budget))
              watermark \(registration.watermark.map(stamp) ?? "empty (the next pass reads every tearsheet)"); \(pass)
              Bullhorn session: \(session(entry.bullhornSession))
            """
    }

    private static func session(_ standing: FleetBullhornSessions.Standing?) -> String {
        guard let standing else { return "none yet (no call made)" }
        var parts: [String] = []
        if let paused = standing.pausedForSeconds {
            parts.append("logins paused for \(paused) s more after \(standing.refusals) refused in a row (`integration add` lifts it)")
        }
        if let established = standing.establishedAt {
            parts.append("kept since \(stamp(established)) (\(standing.generation) made so far)")
        } else {
            parts.append("none kept")
        }
        if standing.renewing { parts.append("a process is logging in") }
        if let refusal = standing.refusal { parts.append("last refusal: \(refusal)") }
        return parts.joined(separator: "; ")
    }

    private static func stamp(_ date: Date) -> String { date.formatted(.iso8601) }
}
