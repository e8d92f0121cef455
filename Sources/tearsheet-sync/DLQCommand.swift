import ArgumentParser
import Foundation
import PostgresClient
import TearsheetSyncCore

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "The dead-letter queue.", subcommands: [List.self, Replay.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Shows dead-lettered messages with their reason, integration and age; leaves them in place.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Messages to show at most.") var limit = 100
        @Flag(help: "JSON, one array.") var json = false
        @OptionGroup var topology: TopologyOption

        func run() async throws {
            try await runCommand(options) { settings in
                let topology = try self.topology.load(settings)
                let broker = try await StartupConnections.broker(settings)
                let entries = try await DeadLetterQueue(broker: broker, topology: topology).list(limit: limit)
                await broker.close()
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.sortedKeys]
                    encoder.dateEncodingStrategy = .iso8601
                    print(String(decoding: try encoder.encode(entries), as: UTF8.self))
                    return
                }
                for entry in entries {
                    let age = entry.deadLetteredAt.map { "\(Int(Date().timeIntervalSince($0)))s ago" } ?? "age unknown"
                    print("\(entry.messageID)  \(entry.integrationID ?? "-")  \(age)\(entry.replayable ? "" : "  (not replayable)")  \(entry.reason)")
                }
                print("\(entries.count) dead-lettered message(s) shown")
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Puts dead-lettered pairs back in their session (pairs are idempotent).")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Messages to replay at most.") var limit = 1_000
        @Option(help: "Only this integration's messages.") var integration: String?
        @OptionGroup var topology: TopologyOption

        func run() async throws {
            try await runCommand(options) { settings in
                let topology = try self.topology.load(settings)
                let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: 1, applicationName: "tearsheet-sync dlq")
                try await StartupConnections.check(pool)
                let broker = try await StartupConnections.broker(settings)
                let (replayed, kept) = try await DeadLetterQueue(broker: broker, topology: topology).replay(
                    limit: limit, integrationID: integration, sessionWork: SessionWorkStore(pool: pool))
                await broker.close()
                await pool.close()
                print("replayed \(replayed) message(s); \(kept) left in the dead-letter queue")
            }
        }
    }
}
