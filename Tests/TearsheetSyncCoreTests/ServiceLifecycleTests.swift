import CurlHTTP
import Foundation
import IntegrationSupport
import Testing

/// The long-running commands as an orchestrator runs them: probes that tell "restart me" from
/// "send me no work", a graceful SIGTERM at any moment, and a metrics port that cannot be had.
@Suite struct ServiceLifecycleTests {
    private static let secretKey = Data((0..<32).map { UInt8($0) }).base64EncodedString()

    @Test func aTakenMetricsPortStopsTheWorkerWithOneLineAndExitCode2() async throws {
        let taken = try ListeningSocket()
        let run = try await CommandRun.run(
            ["work", "--metrics-port", "\(taken.port)", "--metrics-address", "127.0.0.1"],
            environment: [
                "TSYNC_DATABASE_URL": TestServices.adminDatabaseURL, "TSYNC_AMQP_URL": TestServices.amqpURL,
                "TSYNC_SECRET_KEY": Self.secretKey, "TSYNC_LOG_LEVEL": "error",
            ])
        #expect(run.exitCode == 2)
        let lines = run.standardError.split(separator: "\n")
        #expect(lines.count == 1, "\(run.standardError)")
        #expect(lines.first?.contains("--metrics-port: cannot listen on 127.0.0.1:\(taken.port)") == true)
    }

    @Test func aWorkerWaitingForItsDatabaseIsLiveButNotReadyAndStopsAtOnceOnSIGTERM() async throws {
        let port = Int.random(in: 40_001...45_000)
        let process = try Self.launch(
            ["work", "--metrics-port", "\(port)", "--metrics-address", "127.0.0.1"],
            environment: ["TSYNC_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "TSYNC_AMQP_URL": TestServices.amqpURL])
        let live = await Self.status(port: port, path: "/healthz/live")
        #expect(live == 200, "the process serves: an orchestrator must not restart it")
        #expect(await Self.status(port: port, path: "/healthz/ready") == 503, "but it takes no work")
        #expect(await Self.status(port: port, path: "/healthz") == 503, "the first release's path is ready's alias")
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGTERM)
        #expect(await process.exited() == 0)
        #expect(ContinuousClock.now - signalled < .seconds(10), "it stopped waiting for its database")
    }

    @Test func aLoopingPublisherStopsDuringItsIntervalOnSIGINTWithItsPassesExitCode() async throws {
        let url = try await TestServices.createDatabase("tsync_lifecycle")
        defer { Task { try? await TestServices.dropDatabase(url) } }
        #expect(try await CommandRun.run(["migrate"], environment: ["TSYNC_DATABASE_URL": url]).exitCode == 0)
        let port = Int.random(in: 45_001...50_000)
        let output = Pipe()
        let process = try Self.launch(
            ["publish", "--every", "1h", "--metrics-port", "\(port)", "--metrics-address", "127.0.0.1"],
            environment: ["TSYNC_DATABASE_URL": url, "TSYNC_AMQP_URL": TestServices.amqpURL], standardOutput: output)
        #expect(await Self.status(port: port, path: "/healthz/ready") == 200)
        try await Task.sleep(for: .seconds(1))  // the pass (no integrations) is over; the hour's wait begins
        let signalled = ContinuousClock.now
        kill(process.processIdentifier, SIGINT)
        #expect(await process.exited() == 0, "its one pass succeeded")
        #expect(ContinuousClock.now - signalled < .seconds(10), "the interval does not hold up the stop")
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(printed.contains("no active integrations"))
    }

    private static func launch(_ arguments: [String], environment: [String: String], standardOutput: Pipe? = nil) throws -> Process {
        let process = Process()
        process.executableURL = RepositoryFiles.commandBinary
        process.arguments = arguments
        process.environment = environment.merging(["TSYNC_SECRET_KEY": secretKey, "TSYNC_LOG_LEVEL": "critical", "PATH": "/usr/bin:/bin"]) { a, _ in a }
        process.currentDirectoryURL = RepositoryFiles.root
        if let standardOutput { process.standardOutput = standardOutput }
        try process.run()
        return process
    }

    /// The probe's HTTP status once the server answers (nil if it never does within 15 s).
    private static func status(port: Int, path: String) async -> Int? {
        let http = CurlHTTPClient()
        for _ in 0..<75 {
            if let response = try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)", timeout: .seconds(2))) {
                return response.status
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}

/// A TCP port held open on 127.0.0.1, so that nothing else can listen on it.
private final class ListeningSocket {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && listen(descriptor, 1) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(descriptor) }
}
