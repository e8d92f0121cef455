import BullhornSimulator
import CurlHTTP
import Foundation
import Testing

/// The simulator keeps Bullhorn's traps, checked with raw HTTP (not through our client, whose
/// habits it must not mirror).
@Suite struct SimulatorBehaviourTests {
    private func withSession(
        seed: SimulatorSeed, _ body: @Sendable (BullhornWorld, _ rest: String, _ token: String, CurlHTTPClient) async throws -> Void
    ) async throws {
        let world = BullhornWorld(seed: seed)
        try await BullhornSimulatorServer(world: world).run { base in
            let http = CurlHTTPClient()
            let account = SimulatedAuth.Account.standard
            let query = FormEncoding.encode([
                ("client_id", account.clientID), ("response_type", "code"), ("username", account.username), ("password", account.password),
            ])
            let authorize = try await http.execute(HTTPClientRequest(url: "\(base)/oauth/authorize?\(query)"))
            #expect(authorize.status == 302)
            let location = try #require(authorize.header("Location"))
            #expect(location.contains("%3A"), "the code carries an encoded ':'")
            let code = try #require(URLComponents(string: location)?.queryItems?.first { $0.name == "code" }?.value)
            let token = try await http.execute(
                .form(url: "\(base)/oauth/token", fields: [
                    ("grant_type", "authorization_code"), ("code", code), ("client_id", account.clientID), ("client_secret", account.clientSecret),
                ]))
            let access = try #require(try JSONSerialization.jsonObject(with: Data(token.body)) as? [String: Any])["access_token"] as! String
            let reused = try await http.execute(
                .form(url: "\(base)/oauth/token", fields: [
                    ("grant_type", "authorization_code"), ("code", code), ("client_id", account.clientID), ("client_secret", account.clientSecret),
                ]))
            #expect(reused.status == 400, "codes are single-use")
            let login = try await http.execute(HTTPClientRequest(method: "POST", url: "\(base)/rest-services/login?version=*&access_token=\(FormEncoding.escape(access))"))
            let session = try #require(try JSONSerialization.jsonObject(with: Data(login.body)) as? [String: Any])
            try await body(world, session["restUrl"] as! String, session["BhRestToken"] as! String, http)
        }
    }

    private func json(_ response: HTTPClientResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
    }

    @Test func queryDefaultsTo15CapsAt500AndReportsTotalsOnlyWhenAsked() async throws {
        try await withSession(seed: SimulatorSeed(candidates: 5, tearsheets: Array(repeating: .init(members: 0), count: 700))) { _, rest, token, http in
            let headers = [("BhRestToken", token)]
            let plain = try json(try await http.execute(HTTPClientRequest(url: "\(rest)query/Tearsheet?where=id%20%3E%200&fields=id", headers: headers)))
            #expect((plain["data"] as? [Any])?.count == 15)
            #expect(plain["total"] == nil)
            let capped = try json(try await http.execute(HTTPClientRequest(url: "\(rest)query/Tearsheet?where=id%20%3E%200&fields=id&count=1000&showTotalMatched=true", headers: headers)))
            #expect((capped["data"] as? [Any])?.count == 500)
            #expect(capped["total"] as? Int == 700)
            let star = try await http.execute(HTTPClientRequest(url: "\(rest)query/Tearsheet?where=id%20%3E%200&fields=*", headers: headers))
            #expect(star.status == 400)
        }
    }

    /// A bad day, endpoint by endpoint: searches slow and everything else quick, and every
    /// fault served is counted, so that a hostile run can say what it went through.
    @Test func latencyCanBePerEndpointAndFaultsServedAreCounted() async throws {
        try await withSession(seed: SimulatorSeed(candidates: 5)) { world, rest, token, http in
            let headers = [("BhRestToken", token)]
            world.setFaults(SimulatorFaults(throttleEvery: 4, throttleBurst: 1, endpointLatency: ["GET query/JobSubmission": .milliseconds(400)]))
            let clock = ContinuousClock()
            _ = try await http.execute(HTTPClientRequest(url: "\(rest)ping", headers: headers))
            let search = try await clock.measure {
                _ = try await http.execute(HTTPClientRequest(url: "\(rest)query/JobSubmission?where=id%3E0&fields=id", headers: headers))
            }
            #expect(search >= .milliseconds(400))
            var statuses: [Int] = []
            for _ in 0..<6 { statuses.append(try await http.execute(HTTPClientRequest(url: "\(rest)ping", headers: headers)).status) }
            #expect(statuses == [200, 429, 200, 200, 200, 429], "calls 4 and 8")
            _ = try await http.execute(HTTPClientRequest(url: "\(rest)ping", headers: [("BhRestToken", "forged")]))
            #expect(world.faultsServed == ["429": 2, "401 session expired": 1])
        }
    }

    @Test func missingTokenIs412AndABadOneIs401() async throws {
        try await withSession(seed: SimulatorSeed(candidates: 5)) { _, rest, _, http in
            #expect(try await http.execute(HTTPClientRequest(url: "\(rest)ping")).status == 412)
            let bad = try await http.execute(HTTPClientRequest(url: "\(rest)ping", headers: [("BhRestToken", "nope")]))
            #expect(bad.status == 401)
            #expect(try json(bad)["errorMessageKey"] as? String == "errors.authentication.invalidRestToken")
        }
    }

    @Test func toManyFieldsAreTruncatedToFiveWithTheRealTotal() async throws {
        try await withSession(seed: SimulatorSeed(candidates: 100, tearsheets: [.init(members: 42)])) { _, rest, token, http in
            let body = try json(try await http.execute(HTTPClientRequest(url: "\(rest)entity/Tearsheet/1?fields=id,candidates,dateLastModified", headers: [("BhRestToken", token)])))
            let tearsheet = try #require(body["data"] as? [String: Any])
            let candidates = try #require(tearsheet["candidates"] as? [String: Any])
            #expect(candidates["total"] as? Int == 42)
            #expect((candidates["data"] as? [Any])?.count == 5)
            #expect(tearsheet["dateLastModified"] as? Int64 == 1_764_000_000_000, "dates are epoch milliseconds")
        }
    }

    @Test func theSameSeedMakesTheSameWorld() {
        let seed = SimulatorSeed(seed: 7, candidates: 200, tearsheets: [.init(members: 30, jobs: 2), .init(members: 5)])
        #expect(BullhornWorld(seed: seed).tearsheets == BullhornWorld(seed: seed).tearsheets)
        var other = seed
        other.seed = 8
        #expect(BullhornWorld(seed: other).tearsheets != BullhornWorld(seed: seed).tearsheets)
    }

    @Test func mutationsAreDeterministicAndOnlyAddOrDelete() {
        let seed = SimulatorSeed(candidates: 300, tearsheets: Array(repeating: .init(members: 10), count: 5))
        let first = BullhornWorld(seed: seed)
        let second = BullhornWorld(seed: seed)
        for step in 0..<20 {
            #expect(first.mutate(step: step, at: 1_764_000_000_000 + Int64(step)) == second.mutate(step: step, at: 1_764_000_000_000 + Int64(step)))
        }
        #expect(first.tearsheets == second.tearsheets)
        #expect(first.tearsheets.filter(\.isDeleted).count == 2)
        #expect(first.tearsheets.allSatisfy { $0.members.count >= 10 })
    }
}
