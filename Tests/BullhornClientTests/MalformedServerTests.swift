import BullhornClient
import Foundation
import Hummingbird
import IntegrationSupport
import Testing

/// The client against a raw local server that breaks the API's promises.
@Suite struct MalformedServerTests {
    /// A server whose OAuth and REST login succeed, serving REST under `/rest-services/c1/`.
    static func routerThatLogsIn() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/oauth/authorize") { _, _ in Response(status: .found, headers: [.location: "http://127.0.0.1/x?code=c"]) }
        router.post("/oauth/token") { _, _ in #"{"access_token":"a","refresh_token":"r","expires_in":600}"# }
        router.post("/rest-services/login") { request, _ -> String in
            let host = request.head.authority ?? "127.0.0.1"
            return #"{"BhRestToken":"t","restUrl":"http://\#(host)/rest-services/c1/"}"#
        }
        return router
    }

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
        let router = Self.routerThatLogsIn()
        router.get("/rest-services/c1/query/TearsheetMember") { _, _ in #"{"start":0,"count":1,"data":[{"id":1,"dateAdded":1,"tearsheet":{"id":9},"person":{"id":5}}]}"# }
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

    /// A 404 that is not Bullhorn's "entity not found" (a proxy, a wrong REST URL) says nothing
    /// about the candidates: a retriable error, never "none of them exist" (issue 11, finding 6).
    @Test func aProxys404IsNotReadAsMissingCandidates() async throws {
        let router = Self.routerThatLogsIn()
        router.get("/rest-services/c1/entity/Candidate/:ids") { request, _ -> Response in
            if request.uri.path.hasSuffix("/404404") {  // Bullhorn's own answer: none of these exist
                return Response(
                    status: .notFound, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"errorMessage":"Entity not found","errorMessageKey":"errors.entityNotFound","errorCode":404}"#)))
            }
            return Response(status: .notFound, headers: [.contentType: "text/html"], body: .init(byteBuffer: ByteBuffer(string: "<html>404 Not Found</html>")))
        }
        try await withLocalServer(router) { base in
            let client = BullhornClient(
                credentials: .simulator, endpoints: .fixed(authURL: "\(base)/oauth", restURL: "\(base)/rest-services"),
                configuration: .fastRetries)
            let none = try await client.candidates(ids: [404404])
            #expect(none.isEmpty, "Bullhorn's entity-not-found: none exist")
            await #expect {
                _ = try await client.candidates(ids: [1, 2, 3])
            } throws: { error in
                guard let error = error as? BullhornError else { return false }
                return error.code == .transport && error.isRetriable && error.status == 404
            }
        }
    }
}
