import AMQPClient
import Foundation

/// One (campaign, candidate) pair to add, as ../shared/contract.md fixes it on the wire.
public struct PairMessage: Sendable, Equatable, Codable {
    public static let type = "tearsheet.pair.v1"
    public static let source = "TEARSHEETS"

    public let integrationId: String
    public let campaignId: Int64
    public let atsCandidateId: Int64
    public let atsJobId: Int64
    public let tearsheetId: Int64
    public let source: String

    public init(integrationId: String, campaignId: Int64, atsCandidateId: Int64, atsJobId: Int64, tearsheetId: Int64) {
        self.integrationId = integrationId
        self.campaignId = campaignId
        self.atsCandidateId = atsCandidateId
        self.atsJobId = atsJobId
        self.tearsheetId = tearsheetId
        self.source = Self.source
    }

    /// As decoded: the source is what the message says.
    init(integrationId: String, campaignId: Int64, atsCandidateId: Int64, atsJobId: Int64, tearsheetId: Int64, source: String) {
        self.integrationId = integrationId
        self.campaignId = campaignId
        self.atsCandidateId = atsCandidateId
        self.atsJobId = atsJobId
        self.tearsheetId = tearsheetId
        self.source = source
    }

    /// `{integration_id}:{campaign_id}:{ats_candidate_id}`: the same pair always has the same
    /// id, which is what makes republishing harmless.
    public var messageID: String { "\(integrationId):\(campaignId):\(atsCandidateId)" }

    public var pair: PairKey { PairKey(campaignID: campaignId, candidateID: atsCandidateId) }

    /// The JSON body, written byte by byte: the publisher builds one per pair, and JSONEncoder
    /// (or even string interpolation) costs more than the rest of the message together.
    var jsonBody: [UInt8] {
        var json: [UInt8] = []
        json.reserveCapacity(140 + integrationId.utf8.count)
        json.append(contentsOf: #"{"atsCandidateId":"#.utf8)
        json.append(contentsOf: String(atsCandidateId).utf8)
        json.append(contentsOf: #","atsJobId":"#.utf8)
        json.append(contentsOf: String(atsJobId).utf8)
        json.append(contentsOf: #","campaignId":"#.utf8)
        json.append(contentsOf: String(campaignId).utf8)
        json.append(contentsOf: #","integrationId":"#.utf8)
        JSONString.append(integrationId, to: &json)
        json.append(contentsOf: #","source":"#.utf8)
        JSONString.append(source, to: &json)
        json.append(contentsOf: #","tearsheetId":"#.utf8)
        json.append(contentsOf: String(tearsheetId).utf8)
        json.append(UInt8(ascii: "}"))
        return json
    }

    /// The header carrying the Bullhorn change that called for the pair, in milliseconds since
    /// 1970: the worker measures the pair's freshness from it. Optional: a message without
    /// it is processed all the same.
    public static let changedAtHeader = "tsync-changed-at"

    public func amqpMessage(at date: Date = Date(), changedAt: Date? = nil) -> AMQPMessage {
        amqpMessage(timestamp: UInt64(date.timeIntervalSince1970), changedAtMillis: changedAt.map { Int64($0.timeIntervalSince1970 * 1000) })
    }

    /// The message with these two values as they travel: seconds since 1970 for `timestamp`,
    /// milliseconds for the change header (a worker rebuilding a message it decoded passes them
    /// on exactly as they came).
    func amqpMessage(timestamp: UInt64?, changedAtMillis: Int64?) -> AMQPMessage {
        var headers: [String: AMQPFieldValue] = ["session-id": .string(integrationId)]
        if let changedAtMillis { headers[Self.changedAtHeader] = .int(changedAtMillis) }
        return AMQPMessage(
            body: jsonBody,
            properties: AMQPProperties(
                contentType: "application/json", messageID: messageID, type: Self.type, timestamp: timestamp, persistent: true,
                headers: headers))
    }

    /// The change time a delivered message carries, if any, in milliseconds since 1970.
    static func changedAtMillis(_ message: AMQPMessage) -> Int64? {
        message.properties.headers[changedAtHeader]?.intValue
    }

    /// Decodes and validates a delivered message. The error says what is wrong, for the
    /// dead-letter reason.
    public static func decode(_ message: AMQPMessage) throws -> PairMessage {
        if let type = message.properties.type, type != Self.type {
            throw PairMessageError("unsupported message type \(type)")
        }
        let pair: PairMessage
        if let fast = PairMessageFastDecoder.decode(message.body) {
            pair = fast
        } else {
            do {
                pair = try JSONDecoder().decode(PairMessage.self, from: Data(message.body))
            } catch {
                throw PairMessageError("body is not a \(Self.type) JSON object: \(Self.describe(error))")
            }
        }
        guard !pair.integrationId.isEmpty else { throw PairMessageError("integrationId is empty") }
        guard pair.campaignId > 0, pair.atsCandidateId > 0, pair.atsJobId > 0 else {
            throw PairMessageError("ids must be positive")
        }
        guard pair.source == Self.source else { throw PairMessageError("source must be \(Self.source), not \(pair.source)") }
        if let id = message.properties.messageID, id != pair.messageID {
            throw PairMessageError("message_id \(id) does not match the body (\(pair.messageID))")
        }
        if let session = message.properties.headers["session-id"]?.stringValue, session != pair.integrationId {
            throw PairMessageError("session-id \(session) does not match integrationId \(pair.integrationId)")
        }
        return pair
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing \(key.stringValue)"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "wrong type at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted: return "invalid JSON"
        default: return "undecodable"
        }
    }
}

/// JSON string literals, escaped as RFC 8259 requires.
enum JSONString {
    /// Appends `value` as a JSON string literal; one that needs no escape is copied as it is.
    static func append(_ value: String, to json: inout [UInt8]) {
        if value.utf8.allSatisfy({ $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            json.append(UInt8(ascii: "\""))
            json.append(contentsOf: value.utf8)
            json.append(UInt8(ascii: "\""))
            return
        }
        var escaped = ""
        append(value, to: &escaped)
        json.append(contentsOf: escaped.utf8)
    }

    static func append(_ value: String, to json: inout String) {
        json.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": json.append("\\\"")
            case "\\": json.append("\\\\")
            case "\n": json.append("\\n")
            case "\r": json.append("\\r")
            case "\t": json.append("\\t")
            case _ where scalar.value < 0x20: json.append(String(format: "\\u%04x", scalar.value))
            default: json.unicodeScalars.append(scalar)
            }
        }
        json.append("\"")
    }
}

public struct PairMessageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
