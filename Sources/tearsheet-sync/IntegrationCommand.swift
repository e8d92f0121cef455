import Foundation
import ArgumentParser
import BullhornClient
import PostgresClient
import TearsheetSyncCore

struct IntegrationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "integration", abstract: "Bullhorn integrations.", subcommands: [Add.self, List.self, Rekey.self])

    struct Rekey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seals every integration's Bullhorn secrets and kept session again under TSYNC_SECRET_KEY.",
            discussion: """
                The second step of rotating the key: every process already has the new key as TSYNC_SECRET_KEY and \
                the old one as TSYNC_PREVIOUS_SECRET_KEY, which still opens what it sealed. Once this has run, \
                TSYNC_PREVIOUS_SECRET_KEY can go. Exit 1 when some integration's secrets open with neither key \
                (they are left as they are: register the integration again with `integration add`).
                """)

        @OptionGroup var options: GlobalOptions

        func run() async throws {
            try await runCommand(options) { settings in
                let keys = try settings.sealingKeys()
                // Without it nothing the old key sealed opens: every integration would be named
                // below, as if its secrets were lost.
                guard keys.previous != nil else {
                    throw ConfigurationError(
                        setting: Settings.previousSecretKeyVariable, "not set: rekey seals again under TSYNC_SECRET_KEY what this key sealed")
                }
                let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: 1)
                let (secrets, sessions) = try await closing(pool) {
                    try await StartupConnections.check(pool)
                    return (try await IntegrationStore(pool: pool).reseal(keys: keys), try await FleetBullhornSessions.reseal(pool: pool, keys: keys))
                }
                print(
                    "sealed again under TSYNC_SECRET_KEY: the Bullhorn secrets of \(secrets.resealed.count) integration(s) "
                        + "(\(secrets.current.count) already were) and \(sessions.resealed) kept Bullhorn session(s)"
                        + (sessions.unopened > 0 ? " (\(sessions.unopened) open with neither key: their next login replaces them)" : ""))
                guard secrets.unopened.isEmpty else {
                    printError(
                        "the Bullhorn secrets of \(secrets.unopened.joined(separator: ", ")) open with neither TSYNC_SECRET_KEY nor "
                            + "TSYNC_PREVIOUS_SECRET_KEY: left as they are; register them again with `integration add`")
                    throw ExitCode(1)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lists the integrations: budget, watermark, last pass, and the fleet's Bullhorn session for each.",
            discussion: """
                Shows which integration's logins are paused after Bullhorn refused one, and why; reads the database \
                only (TSYNC_DATABASE_URL), and nothing sealed.
                """)

        @OptionGroup var options: GlobalOptions
        @Flag(help: "One JSON object, for scripts.") var json = false

        func run() async throws {
            try await runCommand(options) { settings in
                let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: 1)
                let list = try await closing(pool) {
                    try await StartupConnections.check(pool)
                    return try await IntegrationList.load(pool: pool)
                }
                print(json ? try list.json() : list.text())
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Registers (or updates) a Bullhorn integration.",
            discussion: """
                The client secret and password come from --secrets-file (JSON {"clientSecret": "…", "password": "…"}) \
                or from BULLHORN_CLIENT_SECRET and BULLHORN_PASSWORD, never from the command line, and are stored \
                encrypted (AES-GCM) under TSYNC_SECRET_KEY. A new integration's watermark is empty: its first pass \
                covers every tearsheet.
                """)

        @OptionGroup var options: GlobalOptions
        @Option(help: "Integration id (the host application's).") var id: String
        @Option(name: .customLong("client-id"), help: "Bullhorn OAuth client id.") var clientID: String
        @Option(help: "Bullhorn API user name.") var username: String
        @Option(name: .customLong("auth-url"), help: "OAuth base, e.g. https://auth-west9.bullhornstaffing.com/oauth") var authURL: String?
        @Option(name: .customLong("rest-url"), help: "REST base, e.g. https://rest-west9.bullhornstaffing.com/rest-services") var restURL: String?
        @Option(name: .customLong("login-info-url"), help: "loginInfo URL for data-centre discovery.") var loginInfoURL: String?
        @Option(name: .customLong("secrets-file"), help: "JSON file with clientSecret and password.") var secretsFile: String?
        @Option(name: .customLong("calls-per-minute"), help: "Bullhorn call budget of this integration.") var callsPerMinute = 1_200
        @Option(
            help: """
                Bullhorn corporation, when several integrations log in to one: they share its call budget \
                (the smallest --calls-per-minute among them). Default: the integration is its own.
                """) var corporation: String?

        func validate() throws {
            if (authURL == nil) != (restURL == nil) {
                throw ValidationError("--auth-url and --rest-url go together (or give neither, to discover them)")
            }
            if authURL != nil && loginInfoURL != nil {
                throw ValidationError("give --auth-url/--rest-url or --login-info-url, not both")
            }
            guard callsPerMinute > 0 else { throw ValidationError("--calls-per-minute must be positive") }
        }

        func run() async throws {
            try await runCommand(options) { settings in
                let keys = try settings.sealingKeys()
                let secrets = try IntegrationSecrets.load(file: secretsFile)
                let endpoints: BullhornEndpoints =
                    if let authURL, let restURL { .fixed(authURL: authURL, restURL: restURL) }
                    else { .discovered(loginInfoURL: loginInfoURL ?? BullhornEndpoints.defaultLoginInfoURL) }
                let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: 1)
                try await StartupConnections.check(pool)
                try await IntegrationStore(pool: pool).upsert(
                    id: id, clientID: clientID, username: username, endpoints: endpoints, secrets: secrets, keys: keys,
                    callsPerMinute: callsPerMinute, corporation: corporation)
                await pool.close()
                print("integration \(id) registered (\(username), \(callsPerMinute) calls/min\(corporation.map { ", corporation \($0)" } ?? ""))")
                // Its session queue: now if the broker answers, else by the publisher's first pass.
                do {
                    let broker = try await StartupConnections.broker(settings)
                    try await SessionQueue(integrationID: id).declare(on: broker)
                    await broker.close()
                    print("session queue \(SessionQueue.queueName(for: id)) declared")
                } catch {
                    FileHandle.standardError.write(Data("note: session queue not declared now (\(error)); the publisher declares it\n".utf8))
                }
            }
        }
    }
}

struct CampaignCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign", abstract: "Sourcing campaigns.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Registers (or updates) a sourcing campaign for a Bullhorn job.")

        @OptionGroup var options: GlobalOptions
        @Option(help: "Integration id.") var integration: String
        @Option(help: "Campaign id (the host application's).") var campaign: Int64
        @Option(help: "Bullhorn JobOrder id.") var job: Int64
        @Flag(help: "Register the campaign as inactive.") var inactive = false

        func run() async throws {
            try await runCommand(options) { settings in
                let pool = PostgresPool(connectionString: try settings.databaseURL(), maxConnections: 1)
                try await StartupConnections.check(pool)
                do {
                    try await CampaignStore(pool: pool).upsert(id: campaign, integrationID: integration, atsJobID: job, active: !inactive)
                } catch let error as PostgresError where error.sqlState == "23503" {
                    throw ConfigurationError(setting: "--integration", "no integration \(integration) (register it with `integration add`)")
                }
                await pool.close()
                print("campaign \(campaign) → job \(job) of integration \(integration)\(inactive ? " (inactive)" : "")")
            }
        }
    }
}
