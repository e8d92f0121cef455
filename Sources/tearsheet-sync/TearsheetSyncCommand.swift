import ArgumentParser
import CommandLineSupport
import Foundation
import TearsheetSyncCore

@main
struct TearsheetSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tearsheet-sync",
        abstract: "Keeps sourcing campaigns in step with Bullhorn tearsheets.",
        discussion: """
            Settings come from the environment (TSYNC_AMQP_URL, TSYNC_DATABASE_URL, TSYNC_TOPOLOGY, \
            TSYNC_LOG_FORMAT, TSYNC_LOG_LEVEL, TSYNC_SECRET_KEY, TSYNC_PREVIOUS_SECRET_KEY while rotating it, \
            TSYNC_MANAGEMENT_URL); the flags \
            below override them. A bad setting stops the command with exit code 2.
            """,
        version: BuildInfo.version,
        subcommands: [
            MigrateCommand.self, TopologyCommand.self, IntegrationCommand.self, CampaignCommand.self, PublishCommand.self,
            WorkCommand.self, DLQCommand.self, DepthCommand.self, TraceCommand.self, DemoCommand.self, SimulateCommand.self,
        ]
    )

    /// A bad option stops the command like a bad setting: one line, exit 2.
    static func main() async {
        // The fleet keeps time in UTC (its database sessions, its logs, Bullhorn's epoch
        // milliseconds). Without a default zone, the first calendar made (Hummingbird's date
        // header, a log line's timestamp) asks ICU for the machine's zone, which maps some
        // 2 MiB of ICU's code and data into every process (`/proc/PID/smaps`).
        NSTimeZone.default = TimeZone.gmt
        await mainTreatingBadOptionsAsSettings()
    }
}
