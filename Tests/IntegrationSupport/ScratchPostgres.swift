import Foundation

/// A PostgreSQL 15 server of a test's own (initdb in a temporary directory, its own port on
/// 127.0.0.1), so that the test can restart it for real without touching the shared server
/// that the rest of the suite runs against. As root it runs as the `postgres` user, as
/// PostgreSQL requires.
public final class ScratchPostgres: Sendable {
    public let port: Int
    public let directory: String
    private static let binaries = "/usr/lib/postgresql/15/bin"

    /// The server's maintenance database, for `TestServices.createDatabase(adminURL:)`.
    public var adminURL: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    private init(port: Int, directory: String) {
        self.port = port
        self.directory = directory
    }

    /// Creates the cluster and starts the server.
    public static func start() async throws -> ScratchPostgres {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("tsync-pg")).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if getuid() == 0 { try await run("/bin/chown", ["postgres:postgres", directory], asPostgres: false) }
        try await run("\(binaries)/initdb", ["-D", "\(directory)/data", "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
        // A free port may be taken by another test's server between the check and the start:
        // then the server does not start, and another port is tried.
        for attempt in 1...3 {
            let server = ScratchPostgres(port: try ServerTool.freePort(), directory: directory)
            do {
                try await server.pgCtl(["start", "-w", "-t", "60", "-l", "\(directory)/server.log"])
                return server
            } catch where attempt < 3 {
                continue
            }
        }
        throw ScratchServerError(description: "unreachable")
    }

    /// Runs `body` with a server of its own, stopped and deleted afterwards whatever happens.
    public static func with<T>(_ body: (ScratchPostgres) async throws -> T) async throws -> T {
        let server = try await start()
        do {
            let value = try await body(server)
            await server.stop()
            return value
        } catch {
            await server.stop()
            throw error
        }
    }

    /// What a database restart does: every session ends, the server is gone for a moment,
    /// then it accepts connections again.
    public func restart() async throws {
        try await pgCtl(["restart", "-m", "fast", "-w", "-t", "60", "-l", "\(directory)/server.log"])
    }

    /// An outage: the server stops (every session ends, connections are refused) for
    /// `duration`, then starts again with its data.
    public func outage(for duration: Duration) async throws {
        try await pgCtl(["stop", "-m", "fast", "-w", "-t", "60"])
        try await Task.sleep(for: duration)
        try await pgCtl(["start", "-w", "-t", "60", "-l", "\(directory)/server.log"])
    }

    /// Stops the server and deletes its files.
    public func stop() async {
        try? await pgCtl(["stop", "-m", "immediate", "-w", "-t", "60"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func pgCtl(_ arguments: [String]) async throws {
        let options = "-p \(port) -c listen_addresses=127.0.0.1 -c unix_socket_directories=\(directory) -c fsync=off"
        try await Self.run("\(Self.binaries)/pg_ctl", ["-D", "\(directory)/data", "-o", options] + arguments)
    }

    private static func run(_ executable: String, _ arguments: [String], asPostgres: Bool = true) async throws {
        let words = (asPostgres && getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + [executable] + arguments
        try await ServerTool.run(words)
    }
}

