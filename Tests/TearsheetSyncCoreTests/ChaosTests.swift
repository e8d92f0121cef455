import AMQPClient
import BullhornSimulator
import CurlHTTP
import Foundation
import IntegrationSupport
import PostgresClient
import Testing

@testable import TearsheetSyncCore

/// The fleet through a bad stretch (issue 11): a hostile Bullhorn, a publisher and three worker
/// processes on a broker and a database of the test's own; meanwhile workers are SIGKILLed and
/// restarted, the broker and the database restart, a worker's broker connection goes silent,
/// the publisher dies mid-pass, and recruiters change tearsheets while passes run. Afterwards
/// every pair is on its campaign exactly once, every (candidate, job) has exactly one
/// JobSubmission, the dead-letter queue holds only what Bullhorn refused, and the watermarks
/// moved forward.
///
/// `TSYNC_CHAOS_SECONDS` (default 60) is the length of the stretch and `TSYNC_CHAOS_SEED` picks
/// the schedule; the test prints what it did and found.
@Suite(.serialized) struct ChaosTests {
    static let integrations = ["acme-staffing", "beta-talent", "gamma-health"]

    @Test func everyPairOnceThroughKillsRestartsSilenceAndABadDay() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["TSYNC_CHAOS_SECONDS"] ?? "") ?? 60
        let seed = UInt64(ProcessInfo.processInfo.environment["TSYNC_CHAOS_SEED"] ?? "") ?? UInt64.random(in: 1...999_999)
        // Six tearsheets of 500 on a job each; each integration has campaigns on two of the jobs.
        let world = SimulatorSeed(seed: seed, candidates: 5_000, jobOrders: 6, tearsheets: Array(repeating: .init(members: 500, jobs: 1), count: 6))
        try await ScratchPostgres.with { database in
            try await ScratchRabbitMQ.with { broker in
                try await FleetFixture.run(
                    seed: world, integrationID: Self.integrations[0], databaseServer: database.adminURL,
                    brokerServer: (broker.amqpURL, broker.managementURL)
                ) { fixture in
                    var run = ChaosRun(fixture: fixture, database: database, broker: broker, seed: seed, seconds: seconds)
                    try await run.prepare()
                    try await run.stretch()
                    try await run.settle()
                    try await run.verify()
                    print(run.report.text)
                }
            }
        }
    }
}

/// One chaos run: the fleet, the schedule and what happened.
struct ChaosRun {
    let fixture: FleetFixture
    let database: ScratchPostgres
    let broker: ScratchRabbitMQ
    let seconds: Int
    var random: ChaosRandom
    var report = ChaosReport()
    var workers: [ChaosProcess?] = [nil, nil, nil]
    var publisher: ChaosProcess?
    /// The first worker reaches the broker through this, so that its connection can go silent.
    let silentRoute: TCPProxy
    let logs: String
    /// Candidates whose JobSubmissions Bullhorn refuses (400): their pairs belong in the
    /// dead-letter queue, and nowhere else.
    var refused: Set<Int64> = []
    var campaigns: [(integration: String, campaign: Int64, job: Int64)] = []
    var watermarksBefore: [String: Date?] = [:]
    /// What `ps` would have shown, taken during the stretch, and the first worker's metrics.
    var processListings: [String] = []
    var metrics = ""
    let metricsPort: Int

    init(fixture: FleetFixture, database: ScratchPostgres, broker: ScratchRabbitMQ, seed: UInt64, seconds: Int) {
        self.fixture = fixture
        self.database = database
        self.broker = broker
        self.seconds = seconds
        random = ChaosRandom(seed: seed)
        report.seed = seed
        silentRoute = try! TCPProxy(toPort: broker.amqpPort)
        let probe = try! TCPProxy(toPort: 1)  // a free port for the metrics endpoint
        metricsPort = probe.port
        probe.close()
        logs = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("tsync-chaos")).path
        try? FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    }

    /// Integrations with a Bullhorn budget that keeps them busy through the stretch, their
    /// campaigns, and the candidates Bullhorn will refuse.
    mutating func prepare() async throws {
        for (index, integration) in ChaosTests.integrations.enumerated() {
            try await fixture.registerIntegration(integration, callsPerMinute: 1_500)
            for job in fixture.world.jobOrderIDs[(index * 2)..<(index * 2 + 2)] {
                let campaign = Int64(100 + campaigns.count)
                try await CampaignStore(pool: fixture.pool).upsert(id: campaign, integrationID: integration, atsJobID: job)
                campaigns.append((integration, campaign, job))
            }
            watermarksBefore[integration] = try await IntegrationStore(pool: fixture.pool).watermark(of: integration)
        }
        // The seed links each tearsheet to a random job: one job each here, in order.
        for (tearsheet, job) in zip(fixture.world.tearsheets, fixture.world.jobOrderIDs) {
            fixture.world.updateTearsheet(tearsheet.id) { $0.jobOrderIDs = [job] }
        }
        refused = Set(fixture.world.tearsheets[1].members.prefix(3).map(\.candidateID))
        fixture.world.refuseJobSubmissions(forCandidates: refused, status: 400)
        var faults = SimulatorFaults.hostile
        faults.endpointLatency = ["PUT entity/JobSubmission": .milliseconds(40), "GET query/JobSubmission": .milliseconds(15)]
        faults.latency = .milliseconds(3)
        fixture.world.setFaults(faults)
    }

    /// The bad stretch, one step a second.
    mutating func stretch() async throws {
        for index in workers.indices { try startWorker(index) }
        try startPublisher()
        let started = ContinuousClock.now
        for second in 1...seconds {
            try await Task.sleep(until: started + .seconds(second))
            try await restartWhatDied()
            if second == 2 {
                // The first pass publishes thousands of pairs through a slow, faulty Bullhorn:
                // two seconds in, it is half-way.
                let published = try await publishedSoFar()
                await publisher?.kill()
                report.publisherKills += 1
                report.notes.append("publisher SIGKILLed \(second) s in, \(published) pairs published by then")
                try startPublisher()
            }
            if second % 6 == 3 {
                let victim = random.below(workers.count)
                await workers[victim]?.kill()
                report.workerKills += 1
                try startWorker(victim)
            }
            if second == seconds / 4 {
                try await broker.restart()
                report.brokerRestarts += 1
            }
            if second == seconds / 2 {
                try await database.restart()
                report.databaseRestarts += 1
            }
            if second == seconds * 3 / 4 {
                report.silencedConnections += silentRoute.blackhole()
            }
            if second % 5 == 0 { changeTearsheetMidPass() }
            if second % 10 == 1 { processListings.append(Self.processListing()) }
            if second % 10 == 7 { fixture.world.delayNextWrites(count: 3, by: .seconds(3)) }
        }
    }

    /// Faults off, one last clean pass, and the fleet drains the queues.
    mutating func settle() async throws {
        report.faults = fixture.world.faultsServed
        fixture.world.setFaults(SimulatorFaults())
        publisher?.terminate()
        await publisher?.process.exited()
        publisher = nil
        // Two clean passes: a change scheduled during the stretch may land during the first.
        for _ in 0..<2 {
            let last = try await CommandRun.run(["publish"], environment: fixture.commandEnvironment)
            #expect(last.exitCode == 0, "a last pass: \(last.standardOutput) \(last.standardError)")
        }
        let toAdd = expectedPairs().filter { !refused.contains($0.candidate) }.count
        let started = ContinuousClock.now
        var drained = false
        while !drained, ContinuousClock.now - started < .seconds(240) {
            try await Task.sleep(for: .milliseconds(500))
            try await restartWhatDied()
            // The test's own connections die with the restarts too: a failed read is a "not yet".
            let rows = (try? await fixture.rows()) ?? -1
            let ready = (try? await readyInSessionQueues()) ?? -1
            drained = rows >= toAdd && ready == 0
        }
        #expect(drained, "the fleet drained the queues")
        report.drainSeconds = (ContinuousClock.now - started).timeInterval
        metrics = (try? await CurlHTTPClient().execute(HTTPClientRequest(url: "http://127.0.0.1:\(metricsPort)/metrics")).text) ?? ""
        #expect(metrics.contains("tsync_pairs_added_total"), "the first worker's metrics were read")
        for worker in workers { worker?.terminate() }
        for worker in workers { await worker?.process.exited() }
        silentRoute.close()
    }

    mutating func verify() async throws {
        // Idle pooled connections that the database restart broke fail once each, then go.
        for _ in 0..<fixture.pool.maxConnections { _ = try? await fixture.pool.query("SELECT 1") }
        let expected = expectedPairs()
        var added = Set<ChaosPair>()
        for row in try await fixture.pool.query("SELECT integration_id, campaign_id, ats_candidate_id FROM campaign_candidates").rows {
            added.insert(ChaosPair(integration: try row.decode(at: 0), campaign: try row.decode(at: 1), candidate: try row.decode(at: 2)))
        }
        let shouldFail = expected.filter { refused.contains($0.candidate) }
        let shouldAdd = expected.subtracting(shouldFail)
        report.expected = shouldAdd.count
        report.added = added.count
        report.lost = shouldAdd.subtracting(added).count
        report.unexpected = added.subtracting(shouldAdd).count
        #expect(report.unexpectedExits == 0, "workers and publishers ride out restarts and outages")
        #expect(report.lost == 0, "pairs never added")
        #expect(report.unexpected == 0, "rows that should not be there")

        // One JobSubmission per (candidate, job) that was added; none for those refused.
        let jobOf = Dictionary(uniqueKeysWithValues: campaigns.map { ($0.campaign, $0.job) })
        var perApplication: [String: Int] = [:]
        for submission in fixture.world.jobSubmissions where !submission.isDeleted {
            perApplication["\(submission.candidateID):\(submission.jobOrderID)", default: 0] += 1
        }
        let applications = Set(shouldAdd.map { "\($0.candidate):\(jobOf[$0.campaign]!)" })
        report.jobSubmissions = perApplication.values.reduce(0, +)
        report.duplicates = perApplication.values.filter { $0 > 1 }.count
        report.missingSubmissions = applications.filter { perApplication[$0] == nil }.count
        #expect(report.duplicates == 0, "(candidate, job) with two JobSubmissions")
        // One REST session an integration for the fleet, whatever was killed: a session each
        // for the publisher and the workers (and each killed worker's, left to time out)
        // would be 15 or more. Twice the integrations leaves room for a login a kill orphaned.
        report.sessionsOpened = fixture.world.auth.sessionsOpened
        report.mostLiveSessions = fixture.world.auth.mostLiveSessions
        #expect(report.mostLiveSessions <= 2 * ChaosTests.integrations.count, "Bullhorn sessions live at once")
        #expect(report.missingSubmissions == 0)
        #expect(Set(perApplication.keys) == applications, "no JobSubmission beyond the pairs added")

        // The dead-letter queue holds the refused pairs, each at least once, and nothing else.
        let letters = try await deadLetters()
        report.deadLetters = letters.count
        let lettered = Set(letters.map(\.pair))
        report.unexpectedDeadLetters = lettered.subtracting(shouldFail).count
        for letter in letters where !shouldFail.contains(letter.pair) {
            report.notes.append("unexpected dead letter \(letter.pair.integration):\(letter.pair.campaign):\(letter.pair.candidate): \(letter.reason)")
        }
        #expect(report.unexpectedDeadLetters == 0, "dead letters that should not be there: \(letters.filter { !shouldFail.contains($0.pair) }.prefix(5).map(\.reason))")
        #expect(lettered == shouldFail, "every refused pair is dead-lettered")

        try scanForSecrets(deadLetterReasons: letters.map(\.reason))

        for integration in ChaosTests.integrations {
            let watermark = try await IntegrationStore(pool: fixture.pool).watermark(of: integration)
            let before = watermarksBefore[integration] ?? nil
            #expect(watermark != nil && (before == nil || watermark! > before!), "\(integration)'s watermark moved forward")
        }
    }

    /// No secret in any output: the key, Bullhorn's client secret and password, and every code
    /// and token the simulator issued, searched for in every process's log, the process
    /// listings, the metrics and the dead letters' reasons.
    private mutating func scanForSecrets(deadLetterReasons: [String]) throws {
        let account = SimulatedAuth.Account.standard
        let secrets = [fixture.commandEnvironment["TSYNC_SECRET_KEY"]!, account.clientSecret, account.password] + fixture.world.auth.issuedTokens
        var outputs = processListings + [metrics] + deadLetterReasons
        for name in try FileManager.default.contentsOfDirectory(atPath: logs) {
            outputs.append(try String(contentsOfFile: "\(logs)/\(name)", encoding: .utf8))
        }
        report.secretsChecked = secrets.count
        report.outputBytes = outputs.map(\.utf8.count).reduce(0, +)
        report.secretsSeen = secrets.filter { secret in outputs.contains { $0.contains(secret) } }.count
        #expect(report.secretsSeen == 0, "secrets in the fleet's output (see \(logs))")
    }

    /// Every process's command line, as `ps -eo args` shows them.
    private static func processListing() -> String {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { $0.allSatisfy(\.isNumber) } ?? []
        return pids.compactMap { pid in
            (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))).map { String(decoding: $0.map { $0 == 0 ? 32 : $0 }, as: UTF8.self) }
        }.joined(separator: "\n")
    }

    // MARK: - The fleet's processes

    private mutating func startWorker(_ index: Int) throws {
        var environment = fixture.commandEnvironment
        if index == 0 { environment["TSYNC_AMQP_URL"] = silentRoute.route(fixture.amqpURL) }
        // This Bullhorn applies a held write within 3 s: a grace of 20 s covers it (Bullhorn's
        // own needs the default, 3 min).
        let metrics = index == 1 ? ["--metrics-port", "\(metricsPort)"] : []
        workers[index] = try ChaosProcess.launch(
            ["work", "--batch", "20", "--uncertain-write-grace", "20s"] + metrics, environment: environment, log: "\(logs)/worker-\(index).log")
    }

    private mutating func startPublisher() throws {
        publisher = try ChaosProcess.launch(["publish", "--every", "2s"], environment: fixture.commandEnvironment, log: "\(logs)/publisher.log")
    }

    /// A process that ended on its own (not killed by the run) is started again, and counted.
    private mutating func restartWhatDied() async throws {
        for index in workers.indices {
            guard let status = workers[index]?.process.reapedStatus() else { continue }
            report.unexpectedExits += 1
            report.notes.append("worker \(index) exited by itself (\(status)); see \(logs)")
            try startWorker(index)
        }
        if let status = publisher?.process.reapedStatus() {
            report.unexpectedExits += 1
            report.notes.append("publisher exited by itself (\(status)); see \(logs)")
            try startPublisher()
        }
    }

    // MARK: - The world

    /// A recruiter at work while a pass runs: the third member page read from now adds
    /// candidates to a tearsheet, or links a second job to one.
    private mutating func changeTearsheetMidPass() {
        let world = fixture.world
        let tearsheet = world.tearsheets[random.below(world.tearsheets.count)]
        let members = Set(tearsheet.members.map(\.candidateID))
        let newcomers = world.candidateIDs.filter { !members.contains($0) }.shuffled(using: &random).prefix(15)
        let linkJob = report.tearsheetChanges % 4 == 3
        let extraJob = world.jobOrderIDs[random.below(world.jobOrderIDs.count)]
        world.whenRequested("GET query/TearsheetMember", nth: 3) {
            if linkJob {
                world.updateTearsheet(tearsheet.id) { if !$0.jobOrderIDs.contains(extraJob) { $0.jobOrderIDs.append(extraJob) } }
            } else {
                world.addMembers(Array(newcomers), to: tearsheet.id)
            }
        }
        report.tearsheetChanges += 1
    }

    /// Every (integration, campaign, candidate) the world calls for now.
    private func expectedPairs() -> Set<ChaosPair> {
        var pairs = Set<ChaosPair>()
        for tearsheet in fixture.world.tearsheets where !tearsheet.isDeleted && !tearsheet.isPrivate {
            for campaign in campaigns where tearsheet.jobOrderIDs.contains(campaign.job) {
                for member in tearsheet.members {
                    pairs.insert(ChaosPair(integration: campaign.integration, campaign: campaign.campaign, candidate: member.candidateID))
                }
            }
        }
        return pairs
    }

    // MARK: - The broker

    /// Pairs on the session queues right now.
    private func publishedSoFar() async throws -> Int {
        try await readyInSessionQueues()
    }

    private func readyInSessionQueues() async throws -> Int {
        try await FleetFixture.readyInSessionQueues(ChaosTests.integrations, amqpURL: fixture.amqpURL)
    }

    private func deadLetters() async throws -> [(pair: ChaosPair, reason: String)] {
        let connection = try await AMQPConnection.connect(url: fixture.amqpURL)
        let channel = try await connection.openChannel()
        let count = Int(try await channel.declareQueue(Topology.deadLetterQueue, passive: true).messageCount)
        var letters: [(pair: ChaosPair, reason: String)] = []
        if count > 0 {
            let consumer = try await channel.consume(queue: Topology.deadLetterQueue)
            for try await delivery in consumer {
                let message = try PairMessage.decode(DeadLetterQueue.original(delivery.message))
                let reason = DeadLetterQueue.entry(delivery).reason
                letters.append((ChaosPair(integration: message.integrationId, campaign: message.campaignId, candidate: message.atsCandidateId), reason))
                if letters.count == count { break }
            }
        }
        await connection.close()
        return letters
    }
}

struct ChaosPair: Hashable {
    let integration: String
    let campaign: Int64
    let candidate: Int64
}

/// A `tearsheet-sync` process of the fleet, its output in a log file.
struct ChaosProcess {
    let process: Process

    static func launch(_ arguments: [String], environment: [String: String], log: String) throws -> ChaosProcess {
        if !FileManager.default.fileExists(atPath: log) { _ = FileManager.default.createFile(atPath: log, contents: nil) }
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        output.seekToEndOfFile()
        let process = Process()
        process.executableURL = RepositoryFiles.commandBinary
        process.arguments = arguments
        process.currentDirectoryURL = RepositoryFiles.root
        process.environment = environment.merging(["TSYNC_LOG_LEVEL": "info"]) { _, new in new }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return ChaosProcess(process: process)
    }

    /// SIGKILL, and the process reaped, so that it is not mistaken for one that died by itself.
    func kill() async {
        Glibc.kill(process.processIdentifier, SIGKILL)
        await process.exited()
    }

    func terminate() {
        Glibc.kill(process.processIdentifier, SIGTERM)
    }
}

/// The schedule's dice: xorshift64*, so that a seed replays the same choices.
struct ChaosRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed == 0 ? 0x9e37_79b9_7f4a_7c15 : seed
    }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_f491_4f6c_dd1d
    }

    mutating func below(_ bound: Int) -> Int {
        Int(next() % UInt64(bound))
    }
}

/// What a chaos run did and found, printed at its end.
struct ChaosReport {
    var seed: UInt64 = 0
    var workerKills = 0
    var publisherKills = 0
    var brokerRestarts = 0
    var databaseRestarts = 0
    var silencedConnections = 0
    var tearsheetChanges = 0
    var unexpectedExits = 0
    var faults: [String: Int] = [:]
    var expected = 0
    var added = 0
    var lost = 0
    var unexpected = 0
    var jobSubmissions = 0
    var duplicates = 0
    var missingSubmissions = 0
    var deadLetters = 0
    var unexpectedDeadLetters = 0
    var drainSeconds = 0.0
    var sessionsOpened = 0
    var mostLiveSessions = 0
    var secretsChecked = 0
    var outputBytes = 0
    var secretsSeen = 0
    var notes: [String] = []

    var text: String {
        let faultText = faults.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value)" }.joined(separator: ", ")
        return """
            chaos (seed \(seed)): did: \(workerKills) worker SIGKILLs, \(publisherKills) publisher SIGKILL mid-pass, \
            RabbitMQ restarts \(brokerRestarts), PostgreSQL restarts \(databaseRestarts), \
            broker connections silenced \(silencedConnections), tearsheet changes mid-pass \(tearsheetChanges)
            chaos: Bullhorn faults served: \(faultText)
            chaos: found: pairs expected \(expected), added \(added), lost \(lost), unexpected \(unexpected); \
            JobSubmissions \(jobSubmissions), duplicates \(duplicates), missing \(missingSubmissions); \
            dead letters \(deadLetters) (unexpected \(unexpectedDeadLetters)); drained \(String(format: "%.1f", drainSeconds)) s after the stretch; \
            processes that exited by themselves \(unexpectedExits)
            chaos: Bullhorn REST sessions: \(sessionsOpened) opened, at most \(mostLiveSessions) live at once, for \(ChaosTests.integrations.count) integrations
            chaos: secrets: \(secretsChecked) (key, client secret, password, every code and token issued) looked for in \(outputBytes) bytes \
            of logs, process listings, metrics and dead-letter reasons: \(secretsSeen) found
            """ + notes.map { "\nchaos: \($0)" }.joined()
    }
}
