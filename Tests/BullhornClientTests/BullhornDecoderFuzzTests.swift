import Foundation
import IntegrationSupport
import Testing

@testable import BullhornClient

/// Bullhorn's answers as our decoders read them, against seeded mutations of real-shaped
/// answers (`TSYNC_FUZZ_ITERATIONS`, `TSYNC_FUZZ_SEED`): each is decoded or refused as
/// `.malformedResponse` naming its endpoint, never a crash and never another error.
@Suite struct BullhornDecoderFuzzTests {
    static let answers: [(endpoint: String, body: String, decode: @Sendable ([UInt8], String) throws -> Void)] = [
        ("GET query/Tearsheet", #"{"start":0,"count":2,"total":2,"data":[{"id":1,"name":"Nurses \"RN\" 東京","isPrivate":false,"isDeleted":false,"dateLastModified":1764000000000},{"id":2,"name":null,"isPrivate":true,"isDeleted":false,"dateLastModified":1}]}"#,
         { _ = try BullhornJSON.decode($0, endpoint: $1, as: Page<TearsheetRecord>.self) }),
        ("GET query/TearsheetMember", #"{"start":0,"count":1,"data":[{"id":5000001,"dateAdded":1764000000000,"tearsheet":{"id":1},"person":{"id":100001,"_subtype":"Candidate"}}]}"#,
         { _ = try BullhornJSON.decode($0, endpoint: $1, as: Page<MemberRecord>.self) }),
        ("GET entity/Candidate", #"{"data":[{"id":100001,"firstName":"Ada","lastName":"O'Brien","name":"Ada O'Brien","email":"ada@example.com","phone":"555","mobile":null,"address":{"city":"Boston","state":"MA","zip":"02110","countryID":1},"occupation":"Nurse","companyName":"Acme","status":"Active","owner":{"id":7,"firstName":"Sam","lastName":"Lee"},"isDeleted":false,"dateLastModified":1764000000000}]}"#,
         { _ = try BullhornJSON.decode($0, endpoint: $1, as: DataEnvelope<OneOrMany<CandidateRecord>>.self) }),
        ("GET query/JobSubmission", #"{"start":0,"count":1,"data":[{"id":900001,"candidate":{"id":100001}}]}"#,
         { _ = try BullhornJSON.decode($0, endpoint: $1, as: Page<SubmissionRecord>.self) }),
        ("PUT entity/JobSubmission", #"{"changedEntityType":"JobSubmission","changedEntityId":900002,"changeType":"INSERT"}"#,
         { _ = try BullhornJSON.decode($0, endpoint: $1, as: ChangeResult.self) }),
        ("POST oauth/token", #"{"access_token":"at-1","token_type":"Bearer","expires_in":600,"refresh_token":"rt-1"}"#,
         { _ = try BullhornJSON.decode($0, endpoint: $1, as: OAuthTokens.self) }),
    ]

    @Test func mutatedAnswersAreDecodedOrRefusedAsMalformedNeverACrash() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["TSYNC_FUZZ_ITERATIONS"] ?? "") ?? 20_000
        let seed = UInt64(ProcessInfo.processInfo.environment["TSYNC_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        print("fuzz: Bullhorn decoders, \(iterations) inputs, TSYNC_FUZZ_SEED=\(seed)")
        for answer in Self.answers {
            try answer.decode(Array(answer.body.utf8), answer.endpoint)  // the unmutated answer decodes
        }
        var mutator = Mutator(seed: seed)
        var refused = 0
        for index in 0..<iterations {
            let answer = Self.answers[index % Self.answers.count]
            let body = mutator.mutate(Array(answer.body.utf8))
            do {
                try answer.decode(body, answer.endpoint)
            } catch let error as BullhornError {
                refused += 1
                #expect(error.code == .malformedResponse)
                #expect(error.description.contains(answer.endpoint))
            }
        }
        print("fuzz: \(refused) of \(iterations) mutated answers refused as malformed")
    }
}
