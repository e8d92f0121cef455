import Foundation
import IntegrationSupport

/// Paths of files in this repository and of the built command, for tests.
enum RepositoryFiles {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var topologyJSON: String { root.appendingPathComponent("topology.json").path }

    /// A copy of topology.json whose entities name `virtualHost`, in a temporary file.
    static func topologyJSON(inVirtualHost virtualHost: String) throws -> String {
        let text = try String(contentsOfFile: topologyJSON, encoding: .utf8)
        let copy = text.replacingOccurrences(of: #""vhost": "/""#, with: #""vhost": "\#(virtualHost)""#)
        precondition(copy != text, "topology.json names no virtual host")
        let path = NSTemporaryDirectory() + "topology-\(virtualHost).json"
        try copy.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The `tearsheet-sync` binary that `swift build` put beside the test bundle.
    static var commandBinary: URL { builtBinary("tearsheet-sync") }

    /// A binary of the package's that `swift build` put beside the test bundle.
    static func builtBinary(_ name: String) -> URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return root.appendingPathComponent(".build/debug/\(name)")
    }
}

/// Runs the built command and captures what it printed.
struct CommandRun {
    let exitCode: Int32
    let standardOutput: String
    let standardError: String

    /// Runs it on a thread of its own: the pipes and the wait block, and the cooperative pool
    /// (two threads here) also serves the in-process simulator the command may be talking to.
    static func run(_ arguments: [String], environment: [String: String], binary: String = "tearsheet-sync") async throws -> CommandRun {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try runBlocking(arguments, environment: environment, binary: binary) }) }.start()
        }
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String], binary: String) throws -> CommandRun {
        let process = Process()
        process.executableURL = RepositoryFiles.builtBinary(binary)
        process.arguments = arguments
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { a, _ in a }
        process.currentDirectoryURL = RepositoryFiles.root
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        return CommandRun(
            exitCode: process.exitedBlocking(), standardOutput: String(decoding: outData, as: UTF8.self),
            standardError: String(decoding: errData, as: UTF8.self))
    }
}
