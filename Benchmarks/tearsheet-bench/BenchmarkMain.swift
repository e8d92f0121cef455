import CommandLineSupport
import Foundation
import Logging

/// `swift run -c release tearsheet-bench [SUITE] [OPTIONS]` (`--help` lists them; see
/// BenchmarkCommand).
///
/// Measures the project's AMQP and PostgreSQL paths and, in the same run on the same services,
/// the thin-C baselines (../shared/bench/raw-limit for the broker, Benchmarks/baseline/pg_limit.c
/// for the database), then prints each figure as a ratio of its baseline.
@main
struct BenchmarkMain {
    static func main() async throws {
        if CommandLine.arguments.dropFirst().first == SessionScaleBenchmark.childCommand {
            try await SessionScaleBenchmark.runChildWorker()
            return
        }
        await BenchmarkCommand.mainTreatingBadOptionsAsSettings()
    }

    static func run(_ options: BenchmarkOptions) async throws {
        if options.suites.contains("sessions") {
            try await SessionScaleBenchmark(options: options).run()  // prints as it goes
            return
        }
        var runs: [BenchmarkReport] = []
        for run in 1...options.runs {
            if options.runs > 1 { FileHandle.standardError.write(Data("tearsheet-bench: run \(run) of \(options.runs)\n".utf8)) }
            runs.append(try await runOnce(options))
        }
        BenchmarkReport(combining: runs).print()
    }

    /// Every suite asked for, once, each next to its baselines measured just before it.
    private static func runOnce(_ options: BenchmarkOptions) async throws -> BenchmarkReport {
        var report = BenchmarkReport()
        if options.suites.contains("amqp") {
            try await AMQPBenchmark(options: options).run(into: &report)
        }
        if options.suites.contains("postgres") {
            try await PostgresBenchmark(options: options).run(into: &report)
        }
        if options.suites.contains("publisher") {
            try await PublisherBenchmark(options: options).run(into: &report)
        }
        if options.suites.contains("worker") {
            try await WorkerBenchmark(options: options).run(into: &report)
        }
        if options.suites.contains("memory") {
            try await WorkerMemoryBenchmark(options: options).run(into: &report)
        }
        if options.suites.contains("calls") {
            try await CallsPerPassBenchmark(options: options).run(into: &report)
        }
        if options.suites.contains("peer") {
            try await PythonPeerBenchmark(options: options).run(into: &report)
            report.addPythonPeerComparisons()
        }
        if options.suites.contains("budget") {
            try await BudgetBenchmark(options: options).run(into: &report)
        }
        return report
    }
}

extension BenchmarkOptions {
    /// What the fleet inside the bench logs: nothing unless `TSYNC_BENCH_LOG_LEVEL` says.
    static let logLevel = ProcessInfo.processInfo.environment["TSYNC_BENCH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    /// What the `tearsheet-sync` processes the bench starts log: warnings unless it says.
    static let childLogLevel = ProcessInfo.processInfo.environment["TSYNC_BENCH_LOG_LEVEL"] ?? "warning"

    /// A `tearsheet-sync` process the bench starts: `binary` with `arguments`, or, when
    /// `TSYNC_BENCH_WRAPPER` names a profiler (heaptrack, a script running strace or perf),
    /// that wrapper given the binary and its arguments.
    static func childProcess(_ binary: String, _ arguments: [String]) -> Process {
        let process = Process()
        if let wrapper = ProcessInfo.processInfo.environment["TSYNC_BENCH_WRAPPER"] {
            process.executableURL = URL(fileURLWithPath: wrapper)
            process.arguments = [binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        return process
    }

    /// The environment of a `tearsheet-sync` process the bench starts: `settings`, its log
    /// level, and glibc's allocator settings when the bench was given them (`GLIBC_TUNABLES`,
    /// `MALLOC_ARENA_MAX`), so that their effect on peak RSS can be measured.
    static func childEnvironment(_ settings: [String: String]) -> [String: String] {
        var environment = settings
        environment["TSYNC_LOG_LEVEL"] = childLogLevel
        // PATH for a profiler's wrapper script (TSYNC_BENCH_WRAPPER), which finds its tools by it.
        for name in ["GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "PATH"] {
            if let value = ProcessInfo.processInfo.environment[name] { environment[name] = value }
        }
        return environment
    }
}

/// Rows of (what, ours, baseline) in the units each measurement uses.
struct BenchmarkReport {
    struct Row {
        let name: String
        let ours: Double
        let baseline: Double?
        let unit: String
        /// Over several runs: each run's ratio, taken against the baseline of that run.
        var ratiosOfRuns: [Double] = []
        /// Over several runs: each run's own figure (its range is printed where there is no baseline).
        var oursOfRuns: [Double] = []

        /// The ratio printed: over several runs their median, since the baselines themselves
        /// move by a fifth between runs minutes apart on two shared cores.
        var ratio: Double? {
            ratiosOfRuns.count > 1 ? ratiosOfRuns.median : baseline.map { ours / $0 }
        }
    }

    var rows: [Row] = []

    init() {}

    /// Several runs of the same suites as one report: each row's median figure and median
    /// baseline, and the median and range of its per-run ratios. A row missing from a run
    /// (a suite that measured nothing) is left out of that row's figures, not counted as 0.
    init(combining runs: [BenchmarkReport]) {
        guard runs.count > 1, let first = runs.first else {
            rows = runs.first?.rows ?? []
            return
        }
        for name in first.rows.map(\.name) {
            let measured = runs.compactMap { $0.rows.first(where: { $0.name == name }) }
            let baselines = measured.compactMap(\.baseline)
            var row = Row(
                name: name, ours: measured.map(\.ours).median, baseline: baselines.isEmpty ? nil : baselines.median,
                unit: measured[0].unit)
            row.ratiosOfRuns = measured.compactMap { run in run.baseline.map { run.ours / $0 } }
            row.oursOfRuns = measured.map(\.ours)
            rows.append(row)
        }
    }

    mutating func add(_ name: String, ours: Double, baseline: Double?, unit: String) {
        rows.append(Row(name: name, ours: ours, baseline: baseline, unit: unit))
    }

    func print() {
        let runs = rows.map(\.oursOfRuns.count).max() ?? 0
        Swift.print(
            "benchmark".padding(toLength: 56, withPad: " ", startingAt: 0) + "ours".leftPadded(12) + "baseline".leftPadded(12)
                + "ratio".leftPadded(8) + "  unit" + (runs > 1 ? "   (medians of \(runs) runs; ratios' range, or ours' without a baseline)" : ""))
        for row in rows {
            // Memory to a tenth of a MiB: its target is a line (64 MiB) a rounding could cross.
            let figure = row.unit == "MiB" ? "%.1f" : "%.0f"
            let baseline = row.baseline.map { String(format: figure, $0) } ?? "-"
            let ratio = row.ratio.map { String(format: "%.2f", $0) } ?? "-"
            let range =
                row.ratiosOfRuns.count > 1
                ? String(format: "   %.2f–%.2f", row.ratiosOfRuns.min()!, row.ratiosOfRuns.max()!)
                : row.oursOfRuns.count > 1 ? String(format: "   \(figure)–\(figure)", row.oursOfRuns.min()!, row.oursOfRuns.max()!) : ""
            Swift.print(
                row.name.padding(toLength: 56, withPad: " ", startingAt: 0) + String(format: figure, row.ours).leftPadded(12)
                    + baseline.leftPadded(12) + ratio.leftPadded(8) + "  \(row.unit)" + range)
        }
    }
}

extension Array where Element == Double {
    /// The middle value (the mean of the two middle ones for an even count); 0 when empty.
    var median: Double {
        guard !isEmpty else { return 0 }
        let sorted = self.sorted()
        return count % 2 == 1 ? sorted[count / 2] : (sorted[count / 2 - 1] + sorted[count / 2]) / 2
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// Runs a baseline tool and reads the `name value` lines it prints.
enum BaselineProcess {
    /// Compiles `Benchmarks/baseline/NAME.c` to a temporary binary (the caller removes it).
    static func compile(_ name: String, flags: String = "", libraries: String) throws -> String {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("baseline/\(name).c").path
        let binary = NSTemporaryDirectory() + "\(name)-\(ProcessInfo.processInfo.processIdentifier)"
        let compiled = run("/bin/sh", ["-c", "cc -O2 \(flags) '\(source)' \(libraries) -o '\(binary)' && echo ok 1"])
        guard compiled["ok"] != nil else { throw BenchmarkFailure("cannot compile \(source)") }
        return binary
    }

    /// The figures printed, and the process id (raw-limit names its queue after it).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) -> [String: Double] {
        runWithPID(executable, arguments, environment: environment).figures
    }

    static func runWithPID(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) -> (figures: [String: Double], pid: Int32) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        do {
            try process.run()
        } catch {
            FileHandle.standardError.write(Data("baseline \(executable) did not start: \(error)\n".utf8))
            return ([:], 0)
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var values: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        return (values, process.processIdentifier)
    }
}
