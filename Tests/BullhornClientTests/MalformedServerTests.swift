import BullhornClient
import Foundation
import Hummingbird
import IntegrationSupport
import Testing

/// The client against a raw local server that breaks the API's promises.
@Suite struct MalformedServerTests {
    @Test func aNonJSONTokenAnswerIsATypedErrorNotACrash() async throws {
        let router = Router()
        router.get("/oauth/authorize") { _, _ in
            Response(status: .found, headers: [.location: "http://127.0.0.1/x?code=abc%3Adef"])
        }
        router.post("/oauth/token") { _, _ in "<html>this is not JSON</html>" }
        try await withLocalServer(router) { base in
            let client = BullhornClient(
                credentials: .simulator, endpoints: .fixed(authURL: "\(base)/oauth", restURL: "\(base)/rest-services"),
                configuration: .fastRetries)
            await #expect {
                try await client.connect()
            } throws: { error in
                (error as? BullhornError)?.code == .malformedResponse && (error as? BullhornError)?.endpoint == "POST oauth/token"
            }
        }
    }

    @Test func aPageWithoutItsTotalIsRefused() async throws {
        let router = Router()
        router.get("/oauth/authorize") { _, _ in Response(status: .found, headers: [.location: "http://127.0.0.1/x?code=c"]) }
        router.post("/oauth/token") { _, _ in #"{"access_token":"a","refresh_token":"r","expires_in":600}"# }
        router.post("/rest-services/login") { request, _ -> String in
            let host = request.head.authority ?? "127.0.0.1"
            return #"{"BhRestToken":"t","restUrl":"http://\#(host)/rest-services/c1/"}"#
        }
        router.get("/rest-services/c1/entity/Tearsheet/:id/candidates") { _, _ in #"{"start":0,"count":1,"data":[{"id":1}]}"# }
        try await withLocalServer(router) { base in
            let client = BullhornClient(
                credentials: .simulator, endpoints: .fixed(authURL: "\(base)/oauth", restURL: "\(base)/rest-services"),
                configuration: .fastRetries)
            await #expect {
                _ = try await client.tearsheetCandidateIDs(9).collect()
            } throws: { error in
                (error as? BullhornError)?.code == .malformedResponse && "\(error)".contains("total")
            }
        }
    }
}
