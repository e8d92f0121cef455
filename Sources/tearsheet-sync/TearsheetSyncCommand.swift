import ArgumentParser
import TearsheetSyncCore

@main
struct TearsheetSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tearsheet-sync",
        abstract: "Keeps sourcing campaigns in step with Bullhorn tearsheets.",
        discussion: """
            Settings come from the environment (TSYNC_AMQP_URL, TSYNC_DATABASE_URL, TSYNC_TOPOLOGY, \
            TSYNC_LOG_FORMAT, TSYNC_LOG_LEVEL, TSYNC_SECRET_KEY, TSYNC_MANAGEMENT_URL); the flags \
            below override them. A bad setting stops the command with exit code 2.
            """,
        version: BuildInfo.version,
        subcommands: [
            MigrateCommand.self, TopologyCommand.self, IntegrationCommand.self, CampaignCommand.self, PublishCommand.self,
            WorkCommand.self, DLQCommand.self, DepthCommand.self, TraceCommand.self, DemoCommand.self, SimulateCommand.self,
        ]
    )

    /// As argument-parser's own, except that a bad option is a bad setting like any other: one
    /// line naming it and exit code 2, not the usage text and 64 (a supervisor's log would
    /// show the usage and bury the line).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            printError(message(for: error))
            exit(withError: ExitCode(2))
        }
    }
}
