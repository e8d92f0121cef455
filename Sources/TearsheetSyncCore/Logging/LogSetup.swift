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

    /// `ts`, `level`, `logger`, `msg`, then the metadata, each with its JSON type: numbers and
    /// booleans as such, lists as arrays, nested metadata as objects, anything else a string.
    static func json(at date: Date, level: Logger.Level, logger: String, message: String, metadata: Logger.Metadata) -> String {
        var object: [String: Any] = [:]
        metadata.forEach { object[$0.key] = jsonValue($0.value) }
        object["ts"] = timestamp(date)
        object["level"] = level.rawValue
        object["logger"] = logger
        object["msg"] = message
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    private static func jsonValue(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let string): return string
        case .array(let values): return values.map(jsonValue)
        case .dictionary(let values): return values.mapValues(jsonValue)
        case .stringConvertible(let convertible):
            switch convertible {
            case let number as any BinaryInteger: return Int64(exactly: number).map { $0 as Any } ?? "\(number)"
            case let number as Double: return number.isFinite ? number : "\(number)"
            case let flag as Bool: return flag
            default: return "\(convertible)"
            }
        }
    }
}
