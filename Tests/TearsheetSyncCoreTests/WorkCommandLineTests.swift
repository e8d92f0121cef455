import BullhornSimulator
import CurlHTTP
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

/// `work` as an operator runs it: metrics, health, and a graceful SIGTERM.
@Suite struct WorkCommandLineTests {
    @Test func workServesMetricsAndHealthAndStopsCleanlyOnSIGTERM() async throws {
        let seed = SimulatorSeed(candidates: 100, jobOrders: 1, tearsheets: [.init(members: 25, jobs: 1)])
        try await FleetFixture.run(seed: seed) { fixture in
            try await fixture.addCampaign(1, job: fixture.world.tearsheets[0].jobOrderIDs[0])
            _ = try await fixture.publisher().run()
            let port = try HeldPort(listening: false).port
            let process = try fixture.launch(["work", "--metrics-port", "\(port)", "--metrics-address", "127.0.0.1"])
            let http = CurlHTTPClient()
            var metrics = ""
            var healthy = false
            // The series exist at zero from the session's start: wait for the count, not the name.
            func addedTotal(_ text: String) -> Double {
                text.split(separator: "\n").filter { $0.hasPrefix("tsync_pairs_added_total") }
                    .compactMap { Double($0.split(separator: " ").last ?? "") }.reduce(0, +)
            }
            for _ in 0..<150 {
                try await Task.sleep(for: .milliseconds(200))
                guard let response = try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics", timeout: .seconds(2))) else { continue }
                metrics = response.text
                healthy = (try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/healthz/ready", timeout: .seconds(2))))?.status == 200
                if addedTotal(metrics) == 25 && healthy { break }
            }
            #expect(healthy)
            #expect(metrics.contains("tsync_sessions_held"))
            #expect(SecretScanningLogHandler.leaks(in: metrics).isEmpty, "no secret in the metrics")
            #expect(metrics.contains(#"tsync_pairs_added_total{integration="\#(fixture.integrationID)"}"#), "per session")
            let added = addedTotal(metrics)
            #expect(added == 25)
            #expect(try await fixture.pool.query("SELECT count(*) FROM campaign_candidates").scalar(Int.self) == 25)

            kill(process.processIdentifier, SIGTERM)
            #expect(await process.exited() == 0)
            #expect(try await fixture.pool.query("SELECT count(*) FROM worker_heartbeats").scalar(Int.self) == 0, "it resigned")
        }
    }
}
