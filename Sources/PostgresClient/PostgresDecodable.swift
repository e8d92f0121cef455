import Foundation

/// A Swift value that can be read from a column in PostgreSQL's text output format.
public protocol PostgresDecodable: Sendable {
    /// `text` is nil for SQL NULL; non-optional types throw then.
    static func decode(postgresText text: String?, column: String) throws -> Self
}

extension PostgresDecodable {
    static func nonNull(_ text: String?, _ column: String) throws -> String {
        guard let text else {
            throw PostgresError(.decoding, "column \(column) is NULL, expected \(Self.self)")
        }
        return text
    }

    static func mismatch(_ column: String) -> PostgresError {
        PostgresError(.decoding, "column \(column) is not a valid \(Self.self)")
    }
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Self {
        guard let text else { return nil }
        return try Wrapped.decode(postgresText: text, column: column)
    }
}

extension String: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> String {
        try nonNull(text, column)
    }
}

extension Int: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Int {
        guard let value = Int(try nonNull(text, column)) else { throw mismatch(column) }
        return value
    }
}

extension Int64: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Int64 {
        guard let value = Int64(try nonNull(text, column)) else { throw mismatch(column) }
        return value
    }
}

extension Int32: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Int32 {
        guard let value = Int32(try nonNull(text, column)) else { throw mismatch(column) }
        return value
    }
}

extension Double: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Double {
        guard let value = Double(try nonNull(text, column)) else { throw mismatch(column) }
        return value
    }
}

extension Bool: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Bool {
        switch try nonNull(text, column) {
        case "t": return true
        case "f": return false
        default: throw mismatch(column)
        }
    }
}

/// `timestamptz` as the server prints it with `DateStyle=ISO` and `TimeZone=UTC`, both set
/// when the connection opens: `2026-11-25 11:40:42.123456+00`.
extension Date: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Date {
        guard let date = PostgresTimestamp.parse(try nonNull(text, column)) else {
            throw mismatch(column)
        }
        return date
    }
}

enum PostgresTimestamp {
    static func parse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        var index = 0
        func number(_ digits: Int) -> Int? {
            guard index + digits <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<digits {
                let byte = bytes[index]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
                index += 1
            }
            return value
        }
        func expect(_ char: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == char else { return false }
            index += 1
            return true
        }
        guard let year = number(4), expect(45), let month = number(2), expect(45),
            let day = number(2), expect(32), let hour = number(2), expect(58),
            let minute = number(2), expect(58), let second = number(2)
        else { return nil }
        var fraction = 0.0
        if index < bytes.count, bytes[index] == 46 {
            index += 1
            var scale = 0.1
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                fraction += Double(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            let sign = bytes[index] == 45 ? -1 : 1
            guard bytes[index] == 43 || bytes[index] == 45 else { return nil }
            index += 1
            guard let offsetHours = number(2) else { return nil }
            var offsetMinutes = 0
            if expect(58) { offsetMinutes = number(2) ?? 0 }
            offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
        }
        guard index == bytes.count else { return nil }
        var components = DateComponents()
        components.year = year
        components.month = month
        components.day = day
        components.hour = hour
        components.minute = minute
        components.second = second
        guard let base = utcCalendar.date(from: components) else { return nil }
        return base.addingTimeInterval(fraction - Double(offsetSeconds))
    }

    private static let utcCalendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}

/// `bytea` in the server's default hex output (`\x0a1b…`).
extension Data: PostgresDecodable {
    public static func decode(postgresText text: String?, column: String) throws -> Data {
        let text = try nonNull(text, column)
        guard text.hasPrefix("\\x") else { throw mismatch(column) }
        var bytes = Data()
        bytes.reserveCapacity((text.utf8.count - 2) / 2)
        var high: UInt8?
        for c in text.utf8.dropFirst(2) {
            let nibble: UInt8
            switch c {
            case 48...57: nibble = c - 48
            case 97...102: nibble = c - 87
            case 65...70: nibble = c - 55
            default: throw mismatch(column)
            }
            if let h = high {
                bytes.append(h << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil else { throw mismatch(column) }
        return bytes
    }
}
