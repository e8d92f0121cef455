import AMQPClient
import Foundation

/// `topology.json` in RabbitMQ's definitions format (what `rabbitmqctl import_definitions`
/// reads): only the parts this project declares.
public struct TopologyDefinitions: Codable, Sendable {
    public struct Exchange: Codable, Sendable {
        public var name: String
        public var vhost: String?
        public var type: String
        public var durable: Bool
        public var auto_delete: Bool
        public var `internal`: Bool?
        public var arguments: [String: JSONArgument]?
    }

    public struct Queue: Codable, Sendable {
        public var name: String
        public var vhost: String?
        public var durable: Bool
        public var auto_delete: Bool
        public var arguments: [String: JSONArgument]?
    }

    public struct Binding: Codable, Sendable {
        public var source: String
        public var vhost: String?
        public var destination: String
        public var destination_type: String
        public var routing_key: String
        public var arguments: [String: JSONArgument]?
    }

    /// A policy: settings that may change later (delivery limit, dead-lettering, overflow)
    /// applied by the broker to every queue whose name matches `pattern`.
    public struct Policy: Codable, Sendable {
        public var vhost: String?
        public var name: String
        public var pattern: String
        public var applyTo: String?
        public var priority: Int?
        public var definition: [String: JSONArgument]

        enum CodingKeys: String, CodingKey {
            case vhost, name, pattern, priority, definition
            case applyTo = "apply-to"
        }
    }

    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]
    public var policies: [Policy]?

    /// Reads and decodes the file; errors name the file and what is wrong with it.
    public static func load(path: String) throws -> TopologyDefinitions {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(setting: Settings.topologyVariable, "cannot read \(path)")
        }
        do {
            return try JSONDecoder().decode(TopologyDefinitions.self, from: data)
        } catch {
            throw ConfigurationError(setting: Settings.topologyVariable, "\(path) is not RabbitMQ definitions JSON: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            return "missing \(key.stringValue) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.dataCorrupted(let context):
            return "\(context.debugDescription) at \(context.codingPath.map(\.stringValue).joined(separator: "."))"
        default:
            return "\(error)"
        }
    }
}

/// A queue, exchange or binding argument as JSON carries it.
public enum JSONArgument: Codable, Sendable, Equatable {
    case string(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "arguments must be strings, numbers or booleans")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        }
    }

    var fieldValue: AMQPFieldValue {
        switch self {
        case .string(let value): return .string(value)
        case .int(let value): return .int(value)
        case .double(let value): return .double(value)
        case .bool(let value): return .bool(value)
        }
    }
}

extension Optional where Wrapped == [String: JSONArgument] {
    var fieldTable: [String: AMQPFieldValue] {
        (self ?? [:]).mapValues(\.fieldValue)
    }
}
