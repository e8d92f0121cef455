import CurlHTTP
import Foundation
import Hummingbird
import HTTPTypes
import IntegrationSupport
import Testing

/// The libcurl client against a real local HTTP server.
@Suite struct CurlHTTPClientTests {
    private func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/hello") { _, _ -> Response in
            Response(
                status: .ok, headers: [.contentType: "text/plain", HTTPField.Name("X-Trace")!: "abc"],
                body: .init(byteBuffer: ByteBuffer(string: "hello")))
        }
        router.post("/echo") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let type = request.headers[.contentType] ?? ""
            return Response(
                status: .created, headers: [HTTPField.Name("X-Seen-Type")!: type],
                body: .init(byteBuffer: body))
        }
        router.put("/method") { request, _ -> String in request.method.rawValue }
        router.get("/large") { _, _ -> Response in
            Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: Self.largeBody)))
        }
        router.get("/slow") { _, _ -> String in
            try await Task.sleep(for: .seconds(5))
            return "late"
        }
        router.get("/pause") { _, _ -> String in
            try await Task.sleep(for: .seconds(1))
            return "paused"
        }
        router.get("/redirect") { _, _ -> Response in
            Response(status: .found, headers: [.location: "/hello?code=abc%2Bdef"])
        }
        router.get("/status/:code") { _, context -> Response in
            Response(status: .init(code: Int(context.parameters.get("code") ?? "500") ?? 500))
        }
        return router
    }

    @Test func readsStatusHeadersAndBody() async throws {
        try await withLocalServer(router()) { base in
            let client = CurlHTTPClient()
            let response = try await client.execute(HTTPClientRequest(url: base + "/hello"))
            #expect(response.status == 200)
            #expect(response.text == "hello")
            #expect(response.header("x-trace") == "abc")
            #expect(response.header("Content-Type") == "text/plain")
            let missing = try await client.execute(HTTPClientRequest(url: base + "/status/503"))
            #expect(missing.status == 503)
        }
    }

    /// A Bullhorn page is hundreds of kilobytes, read in many pieces.
    static let largeBody = (0..<40_000).map { "\($0 % 10)" }.joined() + String(repeating: "é", count: 100_000)

    @Test func readsALargeBodyWhole() async throws {
        try await withLocalServer(router()) { base in
            let response = try await CurlHTTPClient().execute(HTTPClientRequest(url: base + "/large"))
            #expect(response.status == 200)
            #expect(response.body.count == Self.largeBody.utf8.count)
            #expect(response.text == Self.largeBody)
        }
    }

    @Test func sendsFormAndJSONBodies() async throws {
        try await withLocalServer(router()) { base in
            let client = CurlHTTPClient()
            let form = try await client.execute(
                .form(url: base + "/echo", fields: [("grant_type", "authorization_code"), ("code", "a b&c=d")]))
            #expect(form.status == 201)
            #expect(form.text == "grant_type=authorization_code&code=a%20b%26c%3Dd")
            #expect(form.header("X-Seen-Type") == "application/x-www-form-urlencoded")
            let json = try await client.execute(.json(method: "POST", url: base + "/echo", body: Array(#"{"a":1}"#.utf8)))
            #expect(json.text == #"{"a":1}"#)
            let put = try await client.execute(.json(method: "PUT", url: base + "/method", body: Array("{}".utf8)))
            #expect(put.text == "PUT")
        }
    }

    @Test func doesNotFollowRedirectsUnlessAsked() async throws {
        try await withLocalServer(router()) { base in
            let client = CurlHTTPClient()
            let redirect = try await client.execute(HTTPClientRequest(url: base + "/redirect"))
            #expect(redirect.status == 302)
            #expect(redirect.header("Location") == "/hello?code=abc%2Bdef")
            let followed = try await client.execute(HTTPClientRequest(url: base + "/redirect", followRedirects: true))
            #expect(followed.status == 200)
            #expect(followed.text == "hello")
        }
    }

    @Test func timesOutWithoutLeakingTheQuery() async throws {
        try await withLocalServer(router()) { base in
            let client = CurlHTTPClient()
            let started = ContinuousClock.now
            await #expect {
                _ = try await client.execute(HTTPClientRequest(url: base + "/slow?password=hunter2", timeout: .milliseconds(300)))
            } throws: { error in
                (error as? HTTPClientError)?.code == .timeout && !"\(error)".contains("hunter2")
            }
            #expect(ContinuousClock.now - started < .seconds(2.5))
        }
    }

    @Test func refusedConnectionIsARetriableConnectError() async throws {
        let client = CurlHTTPClient()
        await #expect {
            _ = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:1/nothing"))
        } throws: { error in
            (error as? HTTPClientError)?.code == .connect && (error as? HTTPClientError)?.isRetriable == true
        }
    }

    @Test func manyConcurrentCallersShareFewHandles() async throws {
        try await withLocalServer(router()) { base in
            let client = CurlHTTPClient(maxConcurrentRequests: 3)
            let bodies = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<50 { group.addTask { try await client.execute(HTTPClientRequest(url: base + "/hello")).text } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(bodies.count == 50)
            #expect(bodies.allSatisfy { $0 == "hello" })
        }
    }

    @Test func aCallerWaitingForAFreeHandleLeavesTheLineWhenCancelled() async throws {
        try await withLocalServer(router()) { base in
            let client = CurlHTTPClient(maxConcurrentRequests: 1)
            let slow = Task { try await client.execute(HTTPClientRequest(url: base + "/slow")).text }
            try await Task.sleep(for: .milliseconds(300))  // the only handle is busy for 5 s
            let waiting = Task { try await client.execute(HTTPClientRequest(url: base + "/hello")).text }
            try await Task.sleep(for: .milliseconds(200))
            let cancelled = ContinuousClock.now
            waiting.cancel()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            // Waiting for the slow request would take 4.5 s more; leaving the line is immediate,
            // though beside the whole suite on two cores a wake-up can take a second.
            #expect(ContinuousClock.now - cancelled < .seconds(3), "it did not wait for the slow request")
            #expect(try await slow.value == "late")
            #expect(try await client.execute(HTTPClientRequest(url: base + "/hello")).text == "hello", "the handle went back")
        }
    }

    @Test func requestsInFlightAtOnceShareOneThread() async throws {
        try await withLocalServer(router()) { base in
            let name = "http-test-\(UInt16.random(in: 1000...9999))"
            let client = CurlHTTPClient(maxConcurrentRequests: 8, threadName: name)
            async let threadsMidway: Int = {
                try await Task.sleep(for: .milliseconds(500))
                return Self.threads(named: name)
            }()
            try await sendEightRequestsOfOneSecondAtOnce(client, base: base)
            #expect(try await threadsMidway == 1, "one thread waits on all eight: \(Self.names())")
        }
    }

    @Test func aClientOfSeveralThreadsSpreadsItsRequestsOverThem() async throws {
        try await withLocalServer(router()) { base in
            let name = "http-\(UInt16.random(in: 1000...9999))"
            let client = CurlHTTPClient(maxConcurrentRequests: 8, threads: 2, threadName: name)
            try await sendEightRequestsOfOneSecondAtOnce(client, base: base)
            #expect(Self.threads(named: "\(name)-0") == 1 && Self.threads(named: "\(name)-1") == 1, "\(Self.names())")
            #expect(try await client.execute(HTTPClientRequest(url: base + "/hello")).text == "hello")
        }
    }

    /// Eight requests to `/pause` at once: each answered, all within the time of about one.
    private func sendEightRequestsOfOneSecondAtOnce(_ client: CurlHTTPClient, base: String) async throws {
        let started = ContinuousClock.now
        let bodies = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<8 { group.addTask { try await client.execute(HTTPClientRequest(url: base + "/pause")).text } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(bodies == Array(repeating: "paused", count: 8))
        #expect(ContinuousClock.now - started < .seconds(4), "eight requests of 1 s each were in flight at once")
    }

    /// The names of this process's threads, as the kernel shows them.
    private static func names() -> [String] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        return tasks.map { task in
            ((try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? "").trimmingCharacters(in: .newlines)
        }
    }

    /// The threads of this process that have `name`.
    private static func threads(named name: String) -> Int {
        names().filter { $0 == name }.count
    }
}
