import AMQPClient
import BullhornSimulator
import Foundation
import PostgresClient
import TearsheetSyncCore

/// The demo's own database, recreated on every run: only ever one that the demo made (it says
/// so in its comment), never a database of the same name that someone else keeps data in.
enum DemoDatabase {
    static let name = "tsync_demo"
    static let marker = "made by tearsheet-sync demo; dropped and made again by every run"

    static func recreate(from url: String) async throws -> String {
        let admin = try await PostgresConnection.connect(url)
        do {
            let existing = try await admin.query(
                "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = \(name)")
            if let comment = existing.rows.first, try comment.decode(at: 0, as: String.self) != marker {
                throw DemoRefusal(
                    "database \(name) exists and was not made by the demo: it is left as it is (drop it yourself, or point TSYNC_DATABASE_URL at another server)")
            }
            // Names cannot be bound parameters; both are constants of this file.
            try await admin.executeScript(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            try await admin.executeScript(unsafeSQL: "CREATE DATABASE \(name)")
            try await admin.executeScript(unsafeSQL: "COMMENT ON DATABASE \(name) IS '\(marker)'")
        } catch {
            await admin.close()
            throw error
        }
        await admin.close()
        var components = URLComponents(string: url)
        guard components?.scheme?.hasPrefix("postgres") == true else {
            return url + " dbname=\(name)"  // a conninfo string: a later keyword wins
        }
        components?.path = "/\(name)"
        return components?.string ?? url
    }
}

/// The demo's own virtual host on the broker, where it purges queues on every run: made by the
/// demo and marked so in its description; one of the same name that the demo did not make is
/// refused, so that the demo never purges queues that someone else relies on.
enum DemoVirtualHost {
    static let name = "tsync-demo"
    static let marker = "made by tearsheet-sync demo; its queues are purged by every run"

    private struct VirtualHost: Decodable {
        let description: String?
    }

    /// Makes the virtual host (and gives `user` its permissions) or checks that the demo made it.
    static func claim(management: RabbitMQManagement, user: String) async throws {
        let path = "/api/vhosts/\(RabbitMQManagement.segment(name))"
        if let existing = try await management.getIfPresent(path, as: VirtualHost.self) {
            guard existing.description == marker else {
                throw DemoRefusal("virtual host \(name) exists and was not made by the demo: its queues are left as they are (delete it yourself)")
            }
            return
        }
        try await management.put(path, json: ["description": marker])
        try await management.put(
            "/api/permissions/\(RabbitMQManagement.segment(name))/\(RabbitMQManagement.segment(user))",
            json: ["configure": ".*", "write": ".*", "read": ".*"])
    }
}

/// The demo will not touch what it did not make.
struct DemoRefusal: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = "demo: " + description
    }
}

/// Three staffing agencies on the one simulated Bullhorn, each running campaigns on some jobs.
enum DemoData {
    static let integrationIDs = ["acme-staffing", "globex-recruiting", "initech-talent"]

    static func register(world: BullhornWorld, simulatorBase: String, pool: PostgresPool, keys: SealingKeys) async throws -> Int {
        let account = SimulatedAuth.Account.standard
        let jobs = Array(Set(world.tearsheets.filter { !$0.isPrivate && !$0.isDeleted }.flatMap(\.jobOrderIDs))).sorted()
        var campaign: Int64 = 1000
        for (index, id) in integrationIDs.enumerated() {
            try await IntegrationStore(pool: pool).upsert(
                id: id, clientID: account.clientID, username: account.username,
                endpoints: .discovered(loginInfoURL: "\(simulatorBase)/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: account.clientSecret, password: account.password), keys: keys,
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
            Bullhorn REST sessions    \(world.auth.sessionsOpened) (the publisher's and both workers', shared)
            elapsed                   \(String(format: "%.1f s", seconds))
            """)
    }
}
