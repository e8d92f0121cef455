import CurlHTTP
import Foundation
import IntegrationSupport
import Testing

/// The long-running commands as an orchestrator runs them: probes that tell "restart me" from
/// "send me no work", a graceful SIGTERM at any moment, and a metrics port that cannot be had.
@Suite struct ServiceLifecycleTests {
    private static let secretKey = Data((0..<32).map { UInt8($0) }).base64EncodedString()

    @Test func aTakenMetricsPortStopsTheWorkerWithOneLineAndExitCode2() async throws {
        let taken = try HeldPort()
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

    /// The looping publisher and the queue monitor too: a metrics server that cannot listen
    /// stops the whole group at once (their loops once carried on, cancelled but never told).
    @Test(arguments: [["publish", "--every", "1h"], ["depth", "--watch", "--json"]])
    func aTakenMetricsPortStopsEveryLongRunningCommandWithExitCode2(command: [String]) async throws {
        let taken = try HeldPort()
        let started = ContinuousClock.now
        let run = try await CommandRun.run(
            command + ["--metrics-port", "\(taken.port)", "--metrics-address", "127.0.0.1"],
            environment: [
                "TSYNC_DATABASE_URL": TestServices.adminDatabaseURL, "TSYNC_AMQP_URL": TestServices.amqpURL,
                "TSYNC_MANAGEMENT_URL": TestServices.managementURL, "TSYNC_SECRET_KEY": Self.secretKey, "TSYNC_LOG_LEVEL": "error",
            ])
        #expect(run.exitCode == 2, "\(run.standardError)")
        #expect(run.standardError.contains("--metrics-port: cannot listen on 127.0.0.1:\(taken.port)"))
        #expect(ContinuousClock.now - started < .seconds(20))
    }

    @Test func aWorkerWaitingForItsDatabaseIsLiveButNotReadyAndStopsAtOnceOnSIGTERM() async throws {
        let port = try HeldPort(listening: false).port
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

    /// In a container the command is PID 1, to which the kernel delivers only the signals it
    /// has a handler for: SIGTERM must still stop it gracefully (a new PID namespace here).
    @Test func aWorkerRunningAsPID1StopsGracefullyOnSIGTERM() async throws {
        let port = try HeldPort(listening: false).port
        let unshare = Process()
        unshare.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        unshare.arguments = [
            "--pid", "--fork", "--mount-proc", RepositoryFiles.commandBinary.path,
            "work", "--metrics-port", "\(port)", "--metrics-address", "127.0.0.1",
        ]
        unshare.environment = [
            "TSYNC_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "TSYNC_AMQP_URL": TestServices.amqpURL,
            "TSYNC_SECRET_KEY": Self.secretKey, "TSYNC_LOG_LEVEL": "critical", "PATH": "/usr/bin:/bin",
        ]
        unshare.currentDirectoryURL = RepositoryFiles.root
        try unshare.run()
        #expect(await Self.status(port: port, path: "/healthz/live") == 200)
        // The worker is unshare's one child: PID 1 inside, another number out here.
        let children = try String(contentsOfFile: "/proc/\(unshare.processIdentifier)/task/\(unshare.processIdentifier)/children", encoding: .utf8)
        let worker = try #require(children.split(separator: " ").compactMap { Int32($0) }.first)
        let namespacePID = try String(contentsOfFile: "/proc/\(worker)/status", encoding: .utf8)
            .split(separator: "\n").first { $0.hasPrefix("NSpid:") }?.split(separator: "\t").last
        #expect(namespacePID == "1", "the worker is PID 1 in its namespace")
        kill(worker, SIGTERM)
        #expect(await unshare.exited() == 0, "it stopped gracefully and exited 0")
    }

    @Test func aLoopingPublisherStopsDuringItsIntervalOnSIGINTWithItsPassesExitCode() async throws {
        let url = try await TestServices.createDatabase("tsync_lifecycle")
        defer { Task { try? await TestServices.dropDatabase(url) } }
        #expect(try await CommandRun.run(["migrate"], environment: ["TSYNC_DATABASE_URL": url]).exitCode == 0)
        let port = try HeldPort(listening: false).port
        let output = Pipe()
        let process = try Self.launch(
            ["publish", "--every", "1h", "--metrics-port", "\(port)", "--metrics-address", "127.0.0.1"],
            environment: ["TSYNC_DATABASE_URL": url, "TSYNC_AMQP_URL": TestServices.amqpURL], standardOutput: output)
        #expect(await Self.status(port: port, path: "/healthz/ready", awaiting: 200) == 200, "ready once it reached its servers")
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

    /// The probe's HTTP status once the server answers (nil if it never does within 15 s);
    /// with `awaiting`, the first answer with that status, or the last one by then.
    private static func status(port: Int, path: String, awaiting expected: Int? = nil) async -> Int? {
        let http = CurlHTTPClient()
        var last: Int?
        for _ in 0..<75 {
            last = (try? await http.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)", timeout: .seconds(2))))?.status ?? last
            if let last, expected == nil || last == expected { return last }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return last
    }
}
