import AMQPClient
import BullhornSimulator
import Foundation
import PostgresClient
import TearsheetSyncCore

/// The demo's own database, recreated on every run.
enum DemoDatabase {
    static let name = "tsync_demo"

    static func recreate(from url: String) async throws -> String {
        let admin = try await PostgresConnection.connect(url)
        try await admin.executeScript(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        try await admin.executeScript(unsafeSQL: "CREATE DATABASE \(name)")
        await admin.close()
        var components = URLComponents(string: url)
        guard components?.scheme?.hasPrefix("postgres") == true else {
            return url + " dbname=\(name)"  // a conninfo string: a later keyword wins
        }
        components?.path = "/\(name)"
        return components?.string ?? url
    }
}

/// Three staffing agencies on the one simulated Bullhorn, each running campaigns on some jobs.
enum DemoData {
    static let integrationIDs = ["acme-staffing", "globex-recruiting", "initech-talent"]

    static func register(world: BullhornWorld, simulatorBase: String, pool: PostgresPool, secretKey: [UInt8]) async throws -> Int {
        let account = SimulatedAuth.Account.standard
        let jobs = Array(Set(world.tearsheets.filter { !$0.isPrivate && !$0.isDeleted }.flatMap(\.jobOrderIDs))).sorted()
        var campaign: Int64 = 1000
        for (index, id) in integrationIDs.enumerated() {
            try await IntegrationStore(pool: pool).upsert(
                id: id, clientID: account.clientID, username: account.username,
                endpoints: .discovered(loginInfoURL: "\(simulatorBase)/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), secretKey: secretKey,
                callsPerMinute: 60_000)  // the simulator is not rate-limited; real Bullhorn is (about 1,500)
            // Every third job, offset per agency: agencies do not share jobs.
            for job in jobs.enumerated().filter({ $0.offset % 3 == index }).map(\.element) {
                try await CampaignStore(pool: pool).upsert(id: campaign, integrationID: id, atsJobID: job)
                campaign += 1
            }
        }
        return Int(campaign - 1000)
    }
}

/// Progress while the workers drain the queues, and the closing table.
enum DemoProgress {
    /// Until the workers have acknowledged every message published (added, skipped or
    /// dead-lettered), a progress line a second.
    static func waitUntilDrained(published: Int, pool: PostgresPool, broker: AMQPConnection, workers: [SessionWorker]) async throws {
        let channel = try await broker.openChannel()
        var acknowledged = 0
        while acknowledged < published {
            try await Task.sleep(for: .seconds(1))
            var waiting: UInt32 = 0
            for integrationID in DemoData.integrationIDs {
                waiting += try await channel.declareQueue(SessionQueue.queueName(for: integrationID), passive: true).messageCount
            }
            let added = try await pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self)
            let held = workers.map { "\($0.workerID): \($0.sessions.count) sessions" }.joined(separator: ", ")
            print("work     \(added) pairs on campaigns, \(waiting) messages waiting (\(held))")
            acknowledged = workers.map(\.totals.acknowledged).reduce(0, +)
        }
        try await channel.close()
    }

    static func finalTable(pool: PostgresPool, broker: AMQPConnection, world: BullhornWorld, published: Int, elapsed: Duration) async throws {
        let added = try await pool.query("SELECT count(*) FROM campaign_candidates WHERE source = 'TEARSHEETS'").scalar(Int.self)
        let channel = try await broker.openChannel()
        let deadLettered = try await channel.declareQueue(Topology.deadLetterQueue, passive: true).messageCount
        try await channel.close()
        let submissions = world.jobSubmissions.count
        let duplicates = Dictionary(grouping: world.jobSubmissions) { "\($0.candidateID):\($0.jobOrderID)" }.values.filter { $0.count > 1 }.count
        let seconds = elapsed.timeInterval
        print("""

            pairs published           \(published)
            pairs added to campaigns  \(added)
            skipped (already there)   \(published - added - Int(deadLettered))
            JobSubmissions created    \(submissions) (\(duplicates) duplicated)
            dead-lettered             \(deadLettered)
            elapsed                   \(String(format: "%.1f s", seconds))
            """)
    }
}
