import AMQPClient
import Foundation
import IntegrationSupport
import Testing

@testable import TearsheetSyncCore

/// The message decoder against 20,000 seeded mutations of valid messages
/// (`TSYNC_FUZZ_ITERATIONS`, `TSYNC_FUZZ_SEED`): it never crashes, every refusal has a reason
/// (what a dead letter carries), and whatever it accepts is a pair the contract allows.
@Suite struct PairMessageFuzzTests {
    @Test func mutatedMessagesAreDecodedOrRefusedWithAReasonNeverACrash() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["TSYNC_FUZZ_ITERATIONS"] ?? "") ?? 20_000
        let seed = UInt64(ProcessInfo.processInfo.environment["TSYNC_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        print("fuzz: PairMessage.decode, \(iterations) inputs, TSYNC_FUZZ_SEED=\(seed)")
        var mutator = Mutator(seed: seed)
        let corpus = [
            PairMessage(integrationId: "acme-staffing", campaignId: 12, atsCandidateId: 100_345, atsJobId: 7001, tearsheetId: 3),
            PairMessage(integrationId: "quote\"back\\slash\u{0}nul 東京 🧑‍💻", campaignId: 1, atsCandidateId: 1, atsJobId: 1, tearsheetId: 0),
        ]
        var accepted = 0
        for index in 0..<iterations {
            let original = corpus[index % corpus.count]
            var message = original.amqpMessage()
            message.body = mutator.mutate(message.body)
            if index % 3 == 0 { message.properties.messageID = nil }
            if index % 5 == 0 { message.properties.headers = [:] }
            do {
                let pair = try PairMessage.decode(message)
                accepted += 1
                #expect(!pair.integrationId.isEmpty && pair.campaignId > 0 && pair.atsCandidateId > 0 && pair.atsJobId > 0)
                #expect(pair.source == PairMessage.source)
                if let id = message.properties.messageID { #expect(id == pair.messageID) }
            } catch let error as PairMessageError {
                #expect(!error.description.isEmpty)
            }
        }
        print("fuzz: \(accepted) of \(iterations) mutated messages still decoded (all valid pairs)")
    }

    /// The fast decoder gives JSONDecoder's answer whenever it gives one: on valid messages in
    /// other spellings and on the same mutations.
    @Test func theFastDecoderAgreesWithJSONDecoderWheneverItAnswers() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["TSYNC_FUZZ_ITERATIONS"] ?? "") ?? 20_000
        let seed = UInt64(ProcessInfo.processInfo.environment["TSYNC_FUZZ_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
        print("fuzz: PairMessageFastDecoder against JSONDecoder, \(iterations) inputs, TSYNC_FUZZ_SEED=\(seed)")
        let spellings = [
            #"{"atsCandidateId":5,"atsJobId":6,"campaignId":7,"integrationId":"acme","source":"TEARSHEETS","tearsheetId":8}"#,
            #" { "tearsheetId" : 8 ,"source":"TEARSHEETS", "integrationId":"東京-acme","campaignId":7,"atsJobId":6,"atsCandidateId":5 }\#n"#,
            #"{"atsCandidateId":9223372036854775807,"atsJobId":1,"campaignId":1,"integrationId":"a","source":"OTHER","tearsheetId":0}"#,
        ]
        var mutator = Mutator(seed: seed)
        var answered = 0
        for index in 0..<iterations {
            var body = Array(spellings[index % spellings.count].utf8)
            if index >= spellings.count { body = mutator.mutate(body) }
            let fast = PairMessageFastDecoder.decode(body)
            let reference = try? JSONDecoder().decode(PairMessage.self, from: Data(body))
            if let fast {
                answered += 1
                #expect(fast == reference, "\(String(decoding: body, as: UTF8.self))")
            }
            if index < spellings.count { #expect(fast != nil && fast == reference, "spelling \(index)") }
        }
        print("fuzz: the fast decoder answered \(answered) of \(iterations), always as JSONDecoder did")
    }

    @Test func anOversizedBodyIsRefusedWithAReason() throws {
        var message = PairMessage(integrationId: "acme", campaignId: 1, atsCandidateId: 2, atsJobId: 3, tearsheetId: 4).amqpMessage()
        message.body = Array(#"{"integrationId":""#.utf8) + Array(repeating: UInt8(ascii: "a"), count: 8 << 20) + Array(#"""#.utf8)
        #expect(throws: PairMessageError.self) { try PairMessage.decode(message) }
        message.body = Array(repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: PairMessageError.self) { try PairMessage.decode(message) }
    }
}
