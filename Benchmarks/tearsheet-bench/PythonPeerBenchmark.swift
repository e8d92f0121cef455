import AMQPClient
import Foundation
import IntegrationSupport
import PostgresClient
import TearsheetSyncCore

/// The Python peer (Benchmarks/python-peer: aio-pika and psycopg 3, the same topology and
/// message format) publishing pairs and draining them through the dedup path, in this run on
/// the same services: the figures the publisher and worker suites are compared to (issue 14
/// aims at 8x for publishing and 15x for the dedup path).
///
/// Its publish figure is publishing alone, with no Bullhorn reads: the publish pass it is set
/// beside reads its tearsheet from the simulator as well, so the comparison flatters the peer.
struct PythonPeerBenchmark {
    static let publishRow = "python peer: publish, confirmed (pairs/s)"
    static let dedupRow = "python peer: pairs already on campaign (pairs/s)"

    let options: BenchmarkOptions
    let integrations = 8

    func run(into report: inout BenchmarkReport) async throws {
        let figures = try await BenchEnvironment.with("tsync_bench_peer") { try await measure(in: $0) }
        report.add(Self.publishRow, ours: figures.publish, baseline: nil, unit: "msg/s")
        report.add(Self.dedupRow, ours: figures.dedup, baseline: nil, unit: "msg/s")
    }

    private func measure(in environment: BenchEnvironment) async throws -> (publish: Double, dedup: Double) {
        let pairs = try await registerPairsAlreadyOnTheirCampaigns(pool: environment.pool)
        let broker = try await AMQPConnection.connect(url: environment.amqpURL)
        let sessions = Set(pairs.map { SessionQueue(integrationID: $0.integrationId) })
        for session in sessions { try await session.declare(on: broker) }
        await broker.close()

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tsync-peer-pairs-\(getpid()).jsonl")
        defer { try? FileManager.default.removeItem(at: file) }
        let encoder = JSONEncoder()
        var lines = Data()
        for pair in pairs {
            lines.append(try encoder.encode(pair))
            lines.append(UInt8(ascii: "\n"))
        }
        try lines.write(to: file)

        let published = try runPeer(["publish", environment.amqpURL, file.path])
        guard let publish = published["publish_msgs_per_s"] else { throw BenchmarkFailure("the python peer did not publish") }
        let drained = try runPeer(["dedup", environment.amqpURL, environment.databaseURL, "\(pairs.count)"] + sessions.map(\.queue))
        guard let dedup = drained["dedup_pairs_per_s"] else { throw BenchmarkFailure("the python peer did not drain its queues") }
        guard drained["new_pairs"] == 0 else { throw BenchmarkFailure("the python peer saw \(drained["new_pairs"] ?? -1) pairs not on their campaign") }
        return (publish, dedup)
    }

    /// `integrations` integrations of one campaign each, every member already on it.
    private func registerPairsAlreadyOnTheirCampaigns(pool: PostgresPool) async throws -> [PairMessage] {
        let key = IntegrationSecrets.randomKey()
        var pairs: [PairMessage] = []
        for index in 0..<integrations {
            let id = "peer-\(index)"
            // Never called: the dedup path makes no Bullhorn call.
            try await IntegrationStore(pool: pool).upsert(
                id: id, clientID: "peer", username: "peer", endpoints: .discovered(loginInfoURL: "http://127.0.0.1:9/rest-services/loginInfo"),
                secrets: IntegrationSecrets(clientSecret: "peer", password: "peer"), keys: SealingKeys(current: key), callsPerMinute: 1_500)
            let campaign = Int64(index + 1)
            let job = Int64(1_000 + index)
            try await CampaignStore(pool: pool).upsert(id: campaign, integrationID: id, atsJobID: job)
            let members = (1...Int64(options.membersPerIntegration)).map {
                PairMessage(integrationId: id, campaignId: campaign, atsCandidateId: $0, atsJobId: job, tearsheetId: 1)
            }
            _ = try await CampaignStore(pool: pool).addPairs(members.map(\.pair), integrationID: id, applications: [:])
            pairs += members
        }
        return pairs.shuffled()
    }

    private func runPeer(_ arguments: [String]) throws -> [String: Double] {
        let figures = BaselineProcess.run("Benchmarks/python-peer/peer.sh", arguments)
        guard !figures.isEmpty else { throw BenchmarkFailure("Benchmarks/python-peer/peer.sh \(arguments[0]) printed no figures") }
        return figures
    }
}

extension BenchmarkReport {
    /// Our publish pass and worker dedup path beside the Python peer's, when both ran: the
    /// ratio column is how many times the peer's rate ours is.
    mutating func addPythonPeerComparisons() {
        let comparisons = [
            ("publish pass vs python peer publishing", PublisherBenchmark.row, PythonPeerBenchmark.publishRow),
            ("worker x1 dedup path vs python peer", "worker x1: pairs already on campaign (pairs/s)", PythonPeerBenchmark.dedupRow),
            // The ceiling: how far above the peer a thin C client of this broker gets with the
            // same messages (with no database and no Bullhorn beside it).
            ("thin C publishing pair messages vs python peer", PairLimit.publishRow, PythonPeerBenchmark.publishRow),
            ("thin C consuming pair messages vs python peer", PairLimit.consumeRow, PythonPeerBenchmark.dedupRow),
        ]
        for (name, oursRow, peerRow) in comparisons {
            guard let ours = rows.first(where: { $0.name == oursRow }), let peer = rows.first(where: { $0.name == peerRow }) else { continue }
            add(name, ours: ours.ours, baseline: peer.ours, unit: "msg/s")
        }
    }
}
