import ArgumentParser
import Foundation
import Logging
import TearsheetSyncCore

struct DepthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "depth",
        abstract: "Queue depth per session (integration) and for the dead-letter queue (RabbitMQ management API).",
        discussion: "Exit code 2 when the management API cannot be reached. With --watch and --metrics-port it is the fleet's queue monitor for Prometheus.")

    @OptionGroup var options: GlobalOptions
    @OptionGroup var metrics: MetricsOptions

    @Flag(help: "One JSON object per run, for scripts.")
    var json = false

    @Flag(help: "Redraw every two seconds until interrupted.")
    var watch = false

    @OptionGroup var topology: TopologyOption

    func run() async throws {
        try await runCommand(options) { settings in
            let topology = try self.topology.load(settings)
            let reader = QueueDepthReader(managementURL: try settings.managementURL())
            let vhost = try settings.amqp().virtualHost
            let report: @Sendable ([QueueDepth]) throws -> Void = { [json, watch] depths in
                // Drawn in place on a terminal only: a log file or a pipe gets one table a round.
                if watch && !json && isatty(STDOUT_FILENO) == 1 { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print(json ? try DepthReport.json(depths) : DepthReport.table(depths))
                fflush(nil)
            }
            guard watch else { return try report(try await reader.depths(topology: topology, virtualHost: vhost)) }
            let logger = Logger(label: "tearsheet-sync.monitor")
            let monitor = QueueMonitor(interval: .seconds(2), logger: logger) {
                let depths = try await reader.depths(topology: topology, virtualHost: vhost)
                FleetMetrics.record(depths)
                try report(depths)
            }
            try await runServices(monitor, metrics: metrics.server(), logger: logger)
        }
    }
}

enum DepthReport {
    static func json(_ depths: [QueueDepth]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let sessions = depths.filter { $0.session != nil }
        let report = Report(
            sessions: sessions, deadLetter: depths.first { $0.session == nil }, totalReady: sessions.map(\.ready).reduce(0, +),
            totalUnacked: sessions.map(\.unacked).reduce(0, +))
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }

    struct Report: Encodable {
        let sessions: [QueueDepth]
        let deadLetter: QueueDepth?
        let totalReady: Int
        let totalUnacked: Int
    }

    static func table(_ depths: [QueueDepth]) -> String {
        let width = max(34, (depths.map(\.queue.count).max() ?? 0) + 2)
        var lines = ["queue".padding(toLength: width, withPad: " ", startingAt: 0) + "   ready  unacked  consumers  publish/s    ack/s"]
        for depth in depths {
            let name = depth.queue + (depth.exists ? "" : " (missing)")
            lines.append(
                name.padding(toLength: width, withPad: " ", startingAt: 0)
                    + String(format: "%8d %8d %10d %10.1f %8.1f", depth.ready, depth.unacked, depth.consumers, depth.publishRate, depth.ackRate))
        }
        return lines.joined(separator: "\n")
    }
}
