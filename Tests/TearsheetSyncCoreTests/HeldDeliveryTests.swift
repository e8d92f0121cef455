import AMQPClient
import Foundation
import Testing

@testable import TearsheetSyncCore

/// A session holds its deliveries decoded; what it publishes again (a dead letter, a copy to
/// the back of the queue) must be the message it was given.
@Suite struct HeldDeliveryTests {
    private let pair = PairMessage(integrationId: "acme", campaignId: 7, atsCandidateId: 1_234, atsJobId: 55, tearsheetId: 9)

    @Test func aPairIsPublishedAgainExactlyAsThePublisherSentIt() throws {
        // A change time with milliseconds that a round trip through seconds would lose.
        let changedAt = Date(timeIntervalSince1970: 1_764_000_060.123)
        let sent = pair.amqpMessage(at: Date(timeIntervalSince1970: 1_764_000_100), changedAt: changedAt)
        let held = HeldDelivery(AMQPDelivery(deliveryTag: 42, message: sent))
        #expect(held.deliveryTag == 42)
        #expect(held.message == sent)
        #expect(held.messageID == "acme:7:1234")
        #expect(held.changedAt.map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) } == 1_764_000_060_123)
        guard case .pair(let decoded, _, _) = held.content else {
            Issue.record("not decoded: \(held.content)")
            return
        }
        #expect(decoded == pair)
    }

    /// Another publisher's spelling of the same pair (its own key order and spacing, no change
    /// header) comes back as the same pair, with the contract's properties and its timestamp.
    @Test func anotherPublishersSpellingComesBackAsTheSamePair() throws {
        var sent = pair.amqpMessage(at: Date(timeIntervalSince1970: 1_764_000_100))
        sent.body = Array(#"{ "source": "TEARSHEETS", "tearsheetId": 9, "integrationId": "acme", "campaignId": 7, "atsJobId": 55, "atsCandidateId": 1234 }"#.utf8)
        let again = HeldDelivery(AMQPDelivery(deliveryTag: 1, message: sent)).message
        #expect(try PairMessage.decode(again) == pair)
        #expect(again.properties == sent.properties)
    }

    @Test func aMessageThatIsNotAPairIsKeptWholeWithItsReason() {
        let sent = AMQPMessage(body: Array("not json".utf8), properties: AMQPProperties(messageID: "x:1:2", headers: ["custom": .string("kept")]))
        let held = HeldDelivery(AMQPDelivery(deliveryTag: 3, message: sent))
        #expect(held.message == sent)
        #expect(held.messageID == "x:1:2")
        #expect(held.changedAt == nil)
        guard case .malformed(_, let reason) = held.content else {
            Issue.record("decoded: \(held.content)")
            return
        }
        #expect(reason.hasPrefix("malformed message:"), "\(reason)")
    }
}
