import Foundation

/// A child process's peak resident memory (the kernel's VmHWM), read while it runs.
enum PeakRSS {
    /// VmHWM of `pid` in KiB; nil once the process is gone.
    static func kib(of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// The release `tearsheet-sync`, built if needed (what an operator runs).
    static func releaseBinary() throws -> String {
        let built = BaselineProcess.run("/bin/sh", ["-c", "swift build -c release --product tearsheet-sync >&2 && echo ok 1"])
        guard built["ok"] != nil else { throw BenchmarkFailure("cannot build the release tearsheet-sync") }
        return ".build/release/tearsheet-sync"
    }
}
