import AMQPClient
import Foundation
import Testing

@testable import TearsheetSyncCore

@Suite struct PairMessageTests {
    let pair = PairMessage(integrationId: "acme", campaignId: 12, atsCandidateId: 345, atsJobId: 6, tearsheetId: 7)

    @Test func wireFormatFollowsTheContract() throws {
        let message = pair.amqpMessage(at: Date(timeIntervalSince1970: 1_700_000_000))
        #expect(message.properties.messageID == "acme:12:345")
        #expect(message.properties.persistent)
        #expect(message.properties.contentType == "application/json")
        #expect(message.properties.type == "tearsheet.pair.v1")
        #expect(message.properties.headers["session-id"] == .string("acme"))
        #expect(message.properties.timestamp == 1_700_000_000)
        let body = try JSONSerialization.jsonObject(with: Data(message.body)) as? [String: Any]
        #expect(body?["integrationId"] as? String == "acme")
        #expect(body?["campaignId"] as? Int == 12)
        #expect(body?["atsCandidateId"] as? Int == 345)
        #expect(body?["atsJobId"] as? Int == 6)
        #expect(body?["tearsheetId"] as? Int == 7)
        #expect(body?["source"] as? String == "TEARSHEETS")
        #expect(try PairMessage.decode(message) == pair)
    }

    @Test(arguments: [
        ("not json", "body is not"), (#"{"integrationId":"acme"}"#, "missing campaignId"),
        (#"{"integrationId":"acme","campaignId":0,"atsCandidateId":1,"atsJobId":1,"tearsheetId":1,"source":"TEARSHEETS"}"#, "positive"),
        (#"{"integrationId":"acme","campaignId":1,"atsCandidateId":1,"atsJobId":1,"tearsheetId":1,"source":"EMAIL"}"#, "source"),
    ])
    func malformedBodiesAreRefusedWithAReason(_ body: String, _ reason: String) {
        #expect {
            _ = try PairMessage.decode(AMQPMessage(body: Array(body.utf8)))
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test func aBodyThatContradictsItsMessageIDIsRefused() throws {
        var message = pair.amqpMessage()
        message.properties.messageID = "acme:12:999"
        #expect(throws: PairMessageError.self) { try PairMessage.decode(message) }
    }

    @Test func anIntegrationsSessionQueueIsRoutedByItsIDAndMatchedByTheSessionPolicy() throws {
        let topology = try Topology.load(path: RepositoryFiles.topologyJSON)
        let session = SessionQueue(integrationID: "acme")
        #expect(session.queue == "tearsheet.session.acme")
        #expect(session.routingKey == "acme")
        #expect(topology.isSessionQueue(session.queue))
        #expect(!topology.isSessionQueue(Topology.deadLetterQueue))
        #expect(!topology.isSessionQueue("tearsheet.pairs.p03"), "old partition queues are not sessions")
    }
}

@Suite struct SecretsAndDurationsTests {
    @Test func secretsOpenOnlyWithTheKeyAndTheIntegrationTheyWereSealedFor() throws {
        let key = (0..<32).map { UInt8($0) }
        let secrets = IntegrationSecrets(clientSecret: "cs-123", password: "pw-456")
        let sealed = try secrets.seal(keys: SealingKeys(current: key), integrationID: "acme")
        #expect(!String(decoding: sealed, as: UTF8.self).contains("pw-456"))
        #expect(try IntegrationSecrets.open(sealed, keys: SealingKeys(current: key), integrationID: "acme") == secrets)
        #expect(throws: SecretsError.self) { try IntegrationSecrets.open(sealed, keys: SealingKeys(current: key), integrationID: "globex") }
        var otherKey = key
        otherKey[0] ^= 1
        #expect(throws: SecretsError.self) { try IntegrationSecrets.open(sealed, keys: SealingKeys(current: otherKey), integrationID: "acme") }
        #expect(!"\(secrets)".contains("pw-456"))
    }

    @Test func durationsParseAsOperatorsWriteThem() {
        #expect(DurationParser.parse("90") == .seconds(90))
        #expect(DurationParser.parse("30s") == .seconds(30))
        #expect(DurationParser.parse("5m") == .seconds(300))
        #expect(DurationParser.parse("1h30m") == .seconds(5400))
        #expect(DurationParser.parse("5x") == nil)
        #expect(DurationParser.parse("m") == nil)
        #expect(DurationParser.parse("") == nil)
    }
}

@Suite struct PairMessageEscapingTests {
    @Test func integrationIDsWithJSONSpecialCharactersRoundTrip() throws {
        let pair = PairMessage(integrationId: "we\"ird\\id\n\u{1}✓", campaignId: 1, atsCandidateId: 2, atsJobId: 3, tearsheetId: 4)
        let message = pair.amqpMessage()
        #expect(try JSONSerialization.jsonObject(with: Data(message.body)) is [String: Any])
        #expect(try PairMessage.decode(message) == pair)
    }
}
