import Foundation

/// Decoding that turns any mismatch into `.malformedResponse` naming the endpoint.
enum BullhornJSON {
    static func decode<T: Decodable>(_ bytes: [UInt8], endpoint: String, as type: T.Type = T.self) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw BullhornError(.malformedResponse, endpoint: endpoint, describe(error))
        } catch {
            throw BullhornError(.malformedResponse, endpoint: endpoint, "\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? "" : " at \(path)"
        }
        switch error {
        case .keyNotFound(let key, let context): return "missing \(key.stringValue)\(path(context))"
        case .typeMismatch(let type, let context): return "expected \(type)\(path(context))"
        case .valueNotFound(let type, let context): return "null where \(type) was expected\(path(context))"
        case .dataCorrupted(let context): return "not valid JSON\(path(context))"
        @unknown default: return "undecodable answer"
        }
    }
}

/// `{"data": {...}}` for one id, `{"data": [...]}` for several: Bullhorn's multi-get answers both.
struct OneOrMany<T: Decodable>: Decodable {
    let values: [T]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let many = try? container.decode([T].self) {
            values = many
        } else {
            values = [try container.decode(T.self)]
        }
    }
}

struct DataEnvelope<T: Decodable>: Decodable {
    let data: T
}

/// One page of `query/…` or of a to-many association.
struct Page<T: Decodable>: Decodable {
    let total: Int?
    let start: Int?
    let count: Int?
    let data: [T]
}

struct IDRef: Decodable, Sendable {
    let id: Int64
}
