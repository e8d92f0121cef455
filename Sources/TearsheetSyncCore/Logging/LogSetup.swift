import Foundation
import Logging

/// Bootstraps swift-log once per process: human-readable lines or one JSON object per line,
/// on standard error (standard output stays for command results).
public enum LogSetup {
    public static func bootstrap(format: Settings.LogFormat, level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = StandardErrorLogHandler(label: label, json: format == .json)
            handler.logLevel = level
            return handler
        }
    }
}

struct StandardErrorLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        event.metadata?.forEach { merged[$0.key] = $0.value }
        let line = json
            ? LogLine.json(at: Date(), level: event.level, logger: label, message: "\(event.message)", metadata: merged)
            : LogLine.text(at: Date(), level: event.level, logger: label, message: "\(event.message)", metadata: merged)
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// One log line, as text or as a JSON object.
enum LogLine {
    /// RFC 3339 in UTC with milliseconds and the zone (`Z`): log collectors read it as it is.
    static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
    }

    static func text(at date: Date, level: Logger.Level, logger: String, message: String, metadata: Logger.Metadata) -> String {
        let fields = metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "\(timestamp(date)) \(level.rawValue.uppercased()) \(logger): \(message)\(fields.isEmpty ? "" : " " + fields)"
    }

    /// `ts`, `level`, `logger`, `msg` and the metadata, keys sorted, each value with its JSON
    /// type: numbers and booleans as such, lists as arrays, nested metadata as objects, anything
    /// else a string. Written by `JSONEncoder`: `JSONSerialization` sorts keys with an ICU
    /// collator, which maps ICU's collation code and data into the process.
    static func json(at date: Date, level: Logger.Level, logger: String, message: String, metadata: Logger.Metadata) -> String {
        var object = metadata.mapValues(JSONLogValue.init)
        object["ts"] = .string(timestamp(date))
        object["level"] = .string(level.rawValue)
        object["logger"] = .string(logger)
        object["msg"] = .string(message)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(object)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A metadata value with its JSON type.
enum JSONLogValue: Encodable {
    case string(String)
    case integer(Int64)
    case number(Double)
    case flag(Bool)
    case array([JSONLogValue])
    case object([String: JSONLogValue])

    init(_ value: Logger.Metadata.Value) {
        switch value {
        case .string(let string): self = .string(string)
        case .array(let values): self = .array(values.map(JSONLogValue.init))
        case .dictionary(let values): self = .object(values.mapValues(JSONLogValue.init))
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as any BinaryInteger: self = Int64(exactly: number).map(JSONLogValue.integer) ?? .string("\(number)")
            case let number as Double: self = number.isFinite ? .number(number) : .string("\(number)")
            case let flag as Bool: self = .flag(flag)
            default: self = .string("\(convertible)")
            }
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let string): try container.encode(string)
        case .integer(let integer): try container.encode(integer)
        case .number(let number): try container.encode(number)
        case .flag(let flag): try container.encode(flag)
        case .array(let values): try container.encode(values)
        case .object(let values): try container.encode(values)
        }
    }
}
