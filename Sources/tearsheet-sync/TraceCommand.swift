import AMQPClient
import ArgumentParser
import Foundation
import PostgresClient
import TearsheetSyncCore

struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Why a candidate is or is not on an integration's campaigns.",
        discussion: """
            From what the fleet knows and what Bullhorn says now: the integration's watermark and last pass, the \
            candidate's tearsheets in Bullhorn (private, deleted, their jobs), the integration's campaigns on those jobs \
            (or --campaign), each one's row and JobSubmission, dead letters with their reason, and the session queue. \
            Reads only.
            """)

    @OptionGroup var options: GlobalOptions
    @OptionGroup var topology: TopologyOption

    @Option(help: "The integration id.") var integration: String
    @Option(help: "The Bullhorn candidate id.") var candidate: Int64
    @Option(help: "Only this campaign (default: the integration's campaigns on the candidate's tearsheets' jobs).") var campaign: Int64?
    @Flag(help: "One JSON object, for scripts.") var json = false

    func run() async throws {
        try await runCommand(options) { settings in
            let topology = try self.topology.load(settings)
            let keys = try settings.sealingKeys()
            let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: 2, applicationName: "tearsheet-sync trace")
            try await closing(pool) {
                try await StartupConnections.check(pool)
                let broker = try await StartupConnections.broker(settings)
                let trace: PairTrace
                do {
                    trace = try await PairTracer(pool: pool, broker: broker, topology: topology, keys: keys)
                        .trace(integrationID: integration, candidateID: candidate, campaignID: campaign)
                } catch {
                    await broker.close()
                    throw error
                }
                await broker.close()
                print(json ? try TraceReport.json(trace) : TraceReport.text(trace))
            }
        }
    }
}

enum TraceReport {
    static func json(_ trace: PairTrace) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(trace), as: UTF8.self)
    }

    static func text(_ trace: PairTrace) -> String {
        func time(_ date: Date?) -> String { date?.formatted(.iso8601) ?? "never" }
        let standing = trace.integration
        var lines = ["candidate \(trace.candidateID) of integration \(trace.integrationID)"]
        lines.append(
            "integration: \(standing.active ? "active" : "INACTIVE"); watermark \(time(standing.watermark)); last pass \(time(standing.lastPassAt))"
                + (standing.lastPassOutcome.map { " (\($0))" } ?? ""))
        if let session = trace.session {
            lines.append(
                "session \(session.queue): \(session.ready) ready, \(session.consumers) consumer(s)"
                    + (session.heldBy.map { ", held by worker \($0)" } ?? ", held by no worker"))
        } else {
            lines.append("session: no queue yet (nothing published for the integration)")
        }
        lines.append("the candidate's tearsheets in Bullhorn now:")
        if trace.tearsheets.isEmpty { lines.append("  none") }
        for tearsheet in trace.tearsheets {
            let kind = tearsheet.isDeleted ? "deleted" : tearsheet.isPrivate ? "private" : "public"
            let jobs = tearsheet.jobOrderIDs.isEmpty ? "no job" : "jobs " + tearsheet.jobOrderIDs.map(String.init).joined(separator: ", ")
            lines.append("  \(tearsheet.id) \"\(tearsheet.name)\": \(kind), \(jobs); changed \(time(tearsheet.changedAt))")
        }
        if !trace.deadLettersReadInFull { lines.append("note: the dead-letter queue holds more than trace reads; a dead letter may be missed") }
        lines.append("campaigns:")
        if trace.campaigns.isEmpty { lines.append("  none of the integration's campaigns is on a job of these tearsheets") }
        for campaign in trace.campaigns {
            let verdict = campaign.verdict.rawValue.replacingOccurrences(of: "_", with: " ").uppercased()
            lines.append("  \(campaign.id) (job \(campaign.jobID)\(campaign.active ? "" : ", inactive")): \(verdict): \(campaign.explanation)")
        }
        return lines.joined(separator: "\n")
    }
}
