import Foundation

/// A child process's peak resident memory (the kernel's VmHWM), read while it runs, and what
/// it was made of when the process was at its largest: anonymous memory (heaps, stacks) or
/// file pages (the binary and its libraries, shared with every process that maps them).
struct PeakRSS {
    private(set) var peakKiB = 0
    private(set) var largest = Composition()

    struct Composition {
        var rssKiB = 0
        var anonymousKiB = 0
        var fileKiB = 0
        var threads = 0
    }

    /// Reads `pid`'s status once; false once the process is gone.
    @discardableResult
    mutating func sample(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        var fields: [Substring: Int] = [:]
        for line in status.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == ":" || $0 == " " || $0 == "\t" })
            if parts.count >= 2, let value = Int(parts[1]) { fields[parts[0]] = value }
        }
        peakKiB = max(peakKiB, fields["VmHWM"] ?? 0)
        let rss = fields["VmRSS"] ?? 0
        if rss > largest.rssKiB {
            largest = Composition(rssKiB: rss, anonymousKiB: fields["RssAnon"] ?? 0, fileKiB: fields["RssFile"] ?? 0, threads: fields["Threads"] ?? 0)
        }
        return true
    }

    /// Adds the peak and its composition to the report under `name`.
    func report(_ name: String, into report: inout BenchmarkReport) {
        report.add("\(name): peak RSS", ours: Double(peakKiB) / 1024, baseline: nil, unit: "MiB")
        report.add("\(name): at the largest, anonymous", ours: Double(largest.anonymousKiB) / 1024, baseline: nil, unit: "MiB")
        report.add("\(name): at the largest, file pages", ours: Double(largest.fileKiB) / 1024, baseline: nil, unit: "MiB")
        report.add("\(name): at the largest, threads", ours: Double(largest.threads), baseline: nil, unit: "threads")
    }

    /// The release `tearsheet-sync`, built if needed (what an operator runs). `static`: built as
    /// the container image builds it (`--static-swift-stdlib`), in a build directory of its own
    /// (`.build-static`), since the flag recompiles every module and would otherwise undo the
    /// dynamic build the bench itself runs from.
    static func releaseBinary(static isStatic: Bool) throws -> String {
        let flags = isStatic ? " --static-swift-stdlib --scratch-path .build-static" : ""
        let built = BaselineProcess.run("/bin/sh", ["-c", "swift build -c release --product tearsheet-sync\(flags) >&2 && echo ok 1"])
        guard built["ok"] != nil else { throw BenchmarkFailure("cannot build the release tearsheet-sync") }
        return isStatic ? ".build-static/release/tearsheet-sync" : ".build/release/tearsheet-sync"
    }
}
