import Foundation
import Metrics
import Synchronization
import TearsheetSyncCore

/// The `process_*` series that Prometheus' client libraries export (the standard names, so
/// that dashboards and alerts written for them work) and `tsync_build_info`, read from
/// /proc at each scrape. Hand-written: swift-metrics-extras' SystemMetrics, which does this,
/// is not among the packages this project may use.
final class ProcessMetrics: Sendable {
    private let cpuCounted = Mutex<Double>(0)
    private let cpu = FloatingPointCounter(label: "process_cpu_seconds_total")
    private let resident = Gauge(label: "process_resident_memory_bytes")
    private let virtual = Gauge(label: "process_virtual_memory_bytes")
    private let openFiles = Gauge(label: "process_open_fds")
    private let maxFiles = Gauge(label: "process_max_fds")
    private let startTime = Gauge(label: "process_start_time_seconds")

    init() {
        Gauge(label: "tsync_build_info", dimensions: [("version", BuildInfo.version), ("swift", BuildInfo.swiftVersion)]).record(1)
    }

    func update() {
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
            let afterName = stat.lastIndex(of: ")")
        else { return }
        // Fields after the command name, which may hold spaces: state is field 3 of proc(5).
        let fields = stat[stat.index(after: afterName)...].split(separator: " ")
        func field(_ number: Int) -> Double { Double(fields[number - 3]) ?? 0 }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let seconds = (field(14) + field(15)) / ticks
        cpuCounted.withLock { counted in
            if seconds > counted { cpu.increment(by: seconds - counted) }
            counted = max(counted, seconds)
        }
        virtual.record(field(23))
        resident.record(field(24) * Double(sysconf(Int32(_SC_PAGESIZE))))
        if let boot = Self.bootTime { startTime.record(boot + field(22) / ticks) }
        openFiles.record((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0)
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 { maxFiles.record(Double(limit.rlim_cur)) }
    }

    private static let bootTime: Double? = {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return stat.split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6)) }
    }()
}
