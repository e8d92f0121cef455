import BullhornSimulator
import CurlHTTP
import Foundation
import IntegrationSupport
import Logging
import Testing

@testable import TearsheetSyncCore

/// What an operator's Prometheus and log collector read (issue 13): metric names by the
/// conventions, every series present from the start, process and build series, a monitor
/// that outlives the management API, and JSON logs with typed values and zoned timestamps.
@Suite struct ObservabilityTests {
    @Test func theWorkersAndThePublishersSeriesFollowTheConventionsAndArePresentAtZero() async throws {
        let seed = SimulatorSeed(candidates: 100, jobOrders: 1, tearsheets: [.init(members: 25, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            // A first pass sets the watermark (its tearsheets changed long ago: no freshness).
            _ = try await fixture.publisher().run()
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            // A recruiter changed the tearsheet 90 s ago: its pairs land between 90 and 120 s later.
            fixture.world.updateTearsheet(fixture.world.tearsheets[0].id, at: Int64(Date().timeIntervalSince1970 * 1000) - 90_000) { _ in }
            // Bullhorn timed out the session the first pass opened: the publisher renews it (its
            // first call), the worker uses the renewed one.
            fixture.world.auth.expireAllSessions()
            let publisherPort = try HeldPort(listening: false).port
            let workerPort = try HeldPort(listening: false).port
            let publisher = try fixture.launch(["publish", "--every", "1h", "--metrics-port", "\(publisherPort)", "--metrics-address", "127.0.0.1"])
            let worker = try fixture.launch(["work", "--metrics-port", "\(workerPort)", "--metrics-address", "127.0.0.1"])
            let integration = #"{integration="\#(fixture.integrationID)"}"#
            let published = await Self.scrape(publisherPort) { $0.contains("tsync_last_successful_pass_timestamp_seconds\(integration)") }
            let worked = await Self.scrape(workerPort) { $0.contains(#"tsync_pair_freshness_seconds_count\#(integration) 25"#) }
            publisher.terminate()
            worker.terminate()
            #expect(await publisher.exited() == 0)
            #expect(await worker.exited() == 0)

            // Failures counted from zero, before the first one: increase() sees it.
            #expect(published.contains("tsync_publish_passes_failed_total\(integration) 0"))
            #expect(published.contains("tsync_pairs_published_total\(integration) 25"))
            #expect(published.contains("tsync_watermark_timestamp_seconds\(integration)"))
            #expect(!published.contains("_age_seconds"), "timestamps, not ages")
            for name in ["tsync_dead_lettered_total", "tsync_retries_total", "tsync_pairs_skipped_total"] {
                #expect(worked.contains("\(name)\(integration) 0"), "\(name) present at zero")
            }
            #expect(worked.contains("tsync_pairs_added_total\(integration) 25"))
            // Bullhorn calls by status, drawn against the integration's budget.
            #expect(worked.contains(#"tsync_bullhorn_calls_total{integration="\#(fixture.integrationID)",status="200"}"#))
            #expect(worked.contains("tsync_bullhorn_budget_calls_per_second\(integration) 10000.0"))
            #expect(published.contains(#"tsync_bullhorn_calls_total{integration="\#(fixture.integrationID)",status="200"}"#))
            // The publisher renewed the session; the worker, calling Bullhorn later, used the one it kept.
            #expect(published.contains("tsync_bullhorn_sessions_opened_total\(integration) 1"))
            #expect(published.contains("tsync_bullhorn_logins_refused_total\(integration) 0"), "present at zero")
            #expect(worked.contains("tsync_bullhorn_sessions_opened_total\(integration) 0"))
            // Every pair carried its Bullhorn change time to the worker.
            #expect(worked.contains(#"tsync_pair_freshness_seconds_bucket{integration="\#(fixture.integrationID)",le="60.0"} 0"#))
            #expect(worked.contains(#"tsync_pair_freshness_seconds_bucket{integration="\#(fixture.integrationID)",le="120.0"} 25"#))
            // The SLO's recording rules select the 600 s bucket as the exporter writes it (a
            // rule reading `le="600"` once matched nothing, silently).
            let rules = try String(contentsOf: RepositoryFiles.root.appendingPathComponent("deploy/prometheus/alerts.yml"), encoding: .utf8)
            let matcher = try #require(rules.firstMatch(of: /tsync_pair_freshness_seconds_bucket\{le=~"([^"]+)"\}/)?.1)
            let pattern = try Regex("^(?:" + matcher.replacingOccurrences(of: #"\\"#, with: #"\"#) + ")$")
            let exported = worked.split(separator: "\n").compactMap { $0.firstMatch(of: /tsync_pair_freshness_seconds_bucket\{[^}]*le="(6[0-9.]+)"\}/)?.1 }
            #expect(exported.contains { String($0).wholeMatch(of: pattern) != nil && Double($0) == 600 }, "\(matcher) matches the exported \(exported)")
            #expect(worked.contains(#"tsync_batch_duration_seconds_count{integration="\#(fixture.integrationID)",outcome="settled"}"#))
            for text in [published, worked] {
                #expect(text.contains("process_resident_memory_bytes "))
                #expect(text.contains("process_cpu_seconds_total "))
                #expect(text.contains("process_open_fds "))
                #expect(text.contains(#"tsync_build_info{version="\#(BuildInfo.version)""#))
                #expect(Self.conventionBreaches(text).isEmpty, "\(Self.conventionBreaches(text))")
            }
        }
    }

    @Test func theQueueMonitorOutlivesAnUnreachableManagementAPIAndCountsItsErrors() async throws {
        let port = try HeldPort(listening: false).port
        let unreachable = try HeldPort(listening: false).port
        let process = Process()
        process.executableURL = RepositoryFiles.commandBinary
        process.arguments = ["depth", "--watch", "--json", "--metrics-port", "\(port)", "--metrics-address", "127.0.0.1"]
        process.environment = ["TSYNC_MANAGEMENT_URL": "http://guest:guest@127.0.0.1:\(unreachable)", "TSYNC_LOG_LEVEL": "critical", "PATH": "/usr/bin:/bin"]
        process.currentDirectoryURL = RepositoryFiles.root
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let metrics = await Self.scrape(port) { text in
            text.split(separator: "\n").contains { $0.hasPrefix("tsync_monitor_errors_total ") && !$0.hasSuffix(" 0") && !$0.hasSuffix(" 1") }
        }
        #expect(process.reapedStatus() == nil, "still running after rounds that failed")
        process.terminate()
        #expect(await process.exited() == 0)
        #expect(metrics.contains("tsync_monitor_errors_total "), "errors counted: \(metrics.prefix(300))")
        #expect(!metrics.contains("tsync_monitor_last_success_timestamp_seconds "), "no round succeeded")
    }

    /// Into a file or a pipe, `depth --watch` appends a table a round: no terminal codes.
    @Test func depthWatchRedrawsOnlyOnATerminal() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("depth-watch")).path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let process = Process()
        process.executableURL = RepositoryFiles.commandBinary
        process.arguments = ["depth", "--watch"]
        process.environment = [
            "TSYNC_MANAGEMENT_URL": TestServices.managementURL, "TSYNC_AMQP_URL": TestServices.amqpURL, "TSYNC_LOG_LEVEL": "critical",
            "PATH": "/usr/bin:/bin",
        ]
        process.currentDirectoryURL = RepositoryFiles.root
        process.standardOutput = FileHandle(forWritingAtPath: path)!
        try process.run()
        var output = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while output.components(separatedBy: "tearsheet.dead-letter").count < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            output = try String(contentsOfFile: path, encoding: .utf8)
        }
        process.terminate()
        #expect(await process.exited() == 0)
        #expect(output.components(separatedBy: "tearsheet.dead-letter").count >= 3, "two rounds at least")
        #expect(!output.contains("\u{1B}"), "no terminal codes in a file")
    }

    @Test func jsonLogLinesHaveZonedTimestampsAndTypedValues() throws {
        let line = LogLine.json(
            at: Date(timeIntervalSince1970: 1_788_000_000.25), level: .warning, logger: "tearsheet-sync.worker", message: "pairs failed",
            metadata: [
                "pairs": .stringConvertible(12), "seconds": .stringConvertible(1.5), "final": .stringConvertible(true),
                "session": "acme", "ids": .array(["1", .stringConvertible(2)]),
            ])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["ts"] as? String == "2026-08-29T10:40:00.250Z", "RFC 3339, UTC, with the zone")
        #expect(object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "tearsheet-sync.worker")
        #expect(object["msg"] as? String == "pairs failed")
        #expect(object["pairs"] as? Int == 12)
        #expect(object["seconds"] as? Double == 1.5)
        #expect(object["final"] as? Bool == true)
        #expect(object["session"] as? String == "acme")
        #expect((object["ids"] as? [Any])?.count == 2)
        #expect(!line.contains("\n"), "one line")
    }

    @Test func jsonLogLinesNestMetadataAsObjectsWithTheirKeysSorted() throws {
        let line = LogLine.json(
            at: Date(timeIntervalSince1970: 0), level: .info, logger: "l", message: "m/n",
            metadata: ["zeta": "z", "batch": .dictionary(["size": .stringConvertible(200), "queue": "tearsheet.session.7"]), "alpha": "a"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let batch = try #require(object["batch"] as? [String: Any], "nested metadata is an object")
        #expect(batch["size"] as? Int == 200)
        #expect(batch["queue"] as? String == "tearsheet.session.7")
        let keys = ["alpha", "batch", "level", "logger", "msg", "ts", "zeta"]
        let offsets = keys.map { line.range(of: "\"\($0)\":")?.lowerBound }
        #expect(offsets.allSatisfy { $0 != nil } && offsets.map { $0! } == offsets.map { $0! }.sorted(), "keys in order: \(line)")
        #expect(line.contains("\"msg\":\"m/n\""), "slashes unescaped")
        #expect(line.contains("{\"queue\":\"tearsheet.session.7\",\"size\":200}"), "nested keys sorted too")
    }

    @Test func aLoopingPublishersJSONLogsCarryItsSummaryAndNothingGoesToStandardOutput() async throws {
        let seed = SimulatorSeed(candidates: 50, jobOrders: 1, tearsheets: [.init(members: 5, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            let output = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("publish-out")).path
            let errors = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("publish-err")).path
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            _ = FileManager.default.createFile(atPath: errors, contents: nil)
            defer { for path in [output, errors] { try? FileManager.default.removeItem(atPath: path) } }
            let process = Process()
            process.executableURL = RepositoryFiles.commandBinary
            process.arguments = ["publish", "--every", "1h"]
            process.environment = fixture.commandEnvironment.merging(["TSYNC_LOG_FORMAT": "json", "TSYNC_LOG_LEVEL": "info"]) { _, new in new }
            process.standardOutput = FileHandle(forWritingAtPath: output)!
            process.standardError = FileHandle(forWritingAtPath: errors)!
            try process.run()
            var lines: [[String: Any]] = []
            let deadline = ContinuousClock.now + .seconds(30)
            while !lines.contains(where: { $0["msg"] as? String == "publisher pass done" }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                lines = try String(contentsOfFile: errors, encoding: .utf8).split(separator: "\n").map { line in
                    try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
                }
            }
            process.terminate()
            #expect(await process.exited() == 0)
            let summary = try #require(lines.first { $0["msg"] as? String == "publisher pass done" })
            #expect(summary["integration"] as? String == fixture.integrationID)
            #expect(summary["pairs_published"] as? Int == 5)
            #expect(summary["outcome"] as? String == "succeeded")
            #expect(try String(contentsOfFile: output, encoding: .utf8).isEmpty, "everything went through the logger")
            #expect(lines.allSatisfy { ($0["ts"] as? String)?.hasSuffix("Z") == true })
        }
    }

    @Test func aLoginBullhornRefusesIsCountedForItsAlert() async throws {
        // Every concurrent session of the corporation is taken: Bullhorn refuses each login.
        let seed = SimulatorSeed(candidates: 20, jobOrders: 1, tearsheets: [.init(members: 5, jobs: 1)])
        try await FleetFixture.run(seed: seed, faults: SimulatorFaults(sessionLimit: 0)) { fixture in
            let port = try HeldPort(listening: false).port
            let publisher = try fixture.launch(["publish", "--every", "1h", "--metrics-port", "\(port)", "--metrics-address", "127.0.0.1"])
            let integration = #"{integration="\#(fixture.integrationID)"}"#
            let scraped = await Self.scrape(port) { $0.contains("tsync_publish_passes_failed_total\(integration) 1") }
            publisher.terminate()
            #expect(await publisher.exited() == 1, "its last pass failed")
            #expect(scraped.contains("tsync_bullhorn_logins_refused_total\(integration) 1"))
            #expect(scraped.contains("tsync_bullhorn_sessions_opened_total\(integration) 0"))
            #expect(try await fixture.pool.query("SELECT refusals FROM bullhorn_sessions").scalar(Int.self) == 1)
        }
    }

    /// The metrics text once `done` says so (or after 30 s).
    static func scrape(_ port: Int, until done: (String) -> Bool) async -> String {
        let http = CurlHTTPClient()
        var text = ""
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            text = (try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics", timeout: .seconds(2))))?.text ?? text
            if done(text) { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return text
    }

    /// Names that break Prometheus' conventions: counters without `_total`, anything else
    /// with it, rates (left to PromQL) and ages (timestamps instead).
    static func conventionBreaches(_ text: String) -> [String] {
        text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.compactMap { line in
            let words = line.split(separator: " ")
            guard words.count == 4 else { return String(line) }
            let (name, type) = (words[2], words[3])
            if (type == "counter") != name.hasSuffix("_total") { return "\(name) (\(type))" }
            if name.contains("_rate") || name.contains("_age") { return String(name) }
            return nil
        }
    }
}
