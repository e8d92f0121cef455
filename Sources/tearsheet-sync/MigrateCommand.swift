import ArgumentParser
import TearsheetSyncCore

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Creates or upgrades the PostgreSQL schema (idempotent; safe from several processes at once).")

    @OptionGroup var options: GlobalOptions

    func run() async throws {
        try await runCommand(options) { settings in
            let connection = try await StartupConnections.database(settings)
            let migrator = SchemaMigrator()
            let applied = try await migrator.migrate(connection)
            let version = try await migrator.currentVersion(connection)
            await connection.close()
            if applied.isEmpty {
                print("schema is current (version \(version))")
            } else {
                print("applied migrations \(applied.map(String.init).joined(separator: ", ")); schema version \(version)")
            }
        }
    }
}
