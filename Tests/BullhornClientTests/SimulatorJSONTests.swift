import Foundation
import Testing

@testable import BullhornSimulator

/// The simulator's own JSON writer says what `JSONSerialization` would: both parse back to the
/// same value, whatever the tree holds.
@Suite struct SimulatorJSONTests {
    /// The value parsed back, re-serialised with sorted keys: two texts of one value compare equal.
    private func canonical(_ bytes: [UInt8]) throws -> String {
        let parsed = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        return String(decoding: try JSONSerialization.data(withJSONObject: parsed, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    @Test func writesWhatJSONSerializationWouldForEveryKindOfValueTheSimulatorAnswers() throws {
        let object: [String: Any] = [
            "id": Int64(9_007_199_254_740_993), "count": 500, "negative": -42, "small": Int32(7),
            "name": #"O"Brien \ "the" / ops"#, "lines": "one\ntwo\r\tthree\u{1}\u{1F}", "unicode": "Zoë 😀 東京",
            "isDeleted": false, "isPrivate": true, "description": NSNull(), "salary": 85_000.5, "round": 100.0,
            "owner": ["id": Int64(3), "firstName": "Ann"] as [String: Any],
            "data": [["id": Int64(1), "person": ["id": Int64(2), "_subtype": "Candidate"] as [String: Any]], ["id": Int64(4)]] as [[String: Any]],
            "ids": [Int64(1), 2, 3], "mixed": [1, "two", NSNull(), ["three": 3] as [String: Any], [Any]()] as [Any],
            "empty": [String: Any](), "none": [Any](),
        ]
        let ours = try #require(SimulatorJSON.encode(object))
        let theirs = Array(try JSONSerialization.data(withJSONObject: object))
        #expect(try canonical(ours) == canonical(theirs))
        #expect(try canonical(ours).contains(#""id":9007199254740993"#))  // no trip through Double
        #expect(try canonical(ours).contains(#""isPrivate":true"#))  // a Bool stays a Bool
    }

    @Test func refusesWhatJSONCannotHoldSoTheCallerFallsBack() {
        #expect(SimulatorJSON.encode(["when": Date()]) == nil)
        #expect(SimulatorJSON.encode(["x": Double.nan]) == nil)
        #expect(SimulatorJSON.encode([["nested": [Date()]] as [String: Any]]) == nil)
    }
}
