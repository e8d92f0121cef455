import Foundation

/// A Swift value that can be bound as a parameter, in PostgreSQL's binary wire format.
///
/// Binary parameters carry their length, so a string is sent byte for byte: a NUL byte
/// reaches the server (which rejects it for `text` with a clear error) instead of silently
/// truncating the value as a C-string parameter would.
public protocol PostgresEncodable: Sendable {
    static var postgresTypeOID: UInt32 { get }
    func encode(into buffer: inout [UInt8])
}

/// Element types that also have an array type, for `= ANY($1)` and `unnest($1)` batches.
public protocol PostgresArrayElement: PostgresEncodable {
    static var postgresArrayTypeOID: UInt32 { get }
}

extension [UInt8] {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }
}

extension Int64: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { 20 }
    public static var postgresArrayTypeOID: UInt32 { 1016 }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
}

extension Int: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { 20 }
    public static var postgresArrayTypeOID: UInt32 { 1016 }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(Int64(self)) }
}

extension Int32: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { 23 }
    public static var postgresArrayTypeOID: UInt32 { 1007 }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(self) }
}

extension String: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { 25 }
    public static var postgresArrayTypeOID: UInt32 { 1009 }
    public func encode(into buffer: inout [UInt8]) { buffer.append(contentsOf: utf8) }
}

extension Bool: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { 16 }
    public static var postgresArrayTypeOID: UInt32 { 1000 }
    public func encode(into buffer: inout [UInt8]) { buffer.append(self ? 1 : 0) }
}

extension Double: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { 701 }
    public static var postgresArrayTypeOID: UInt32 { 1022 }
    public func encode(into buffer: inout [UInt8]) { buffer.appendBigEndian(bitPattern) }
}

/// `timestamptz`: microseconds since 2000-01-01 00:00:00 UTC.
extension Date: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { 1184 }
    public static var postgresArrayTypeOID: UInt32 { 1185 }
    static let postgresEpoch = Date(timeIntervalSince1970: 946_684_800)
    public func encode(into buffer: inout [UInt8]) {
        let micros = (timeIntervalSince(Date.postgresEpoch) * 1_000_000).rounded()
        buffer.appendBigEndian(Int64(micros))
    }
}

/// `bytea`.
extension Data: PostgresEncodable {
    public static var postgresTypeOID: UInt32 { 17 }
    public func encode(into buffer: inout [UInt8]) { buffer.append(contentsOf: self) }
}

/// A one-dimensional array, with NULL-free elements.
extension Array: PostgresEncodable where Element: PostgresArrayElement {
    public static var postgresTypeOID: UInt32 { Element.postgresArrayTypeOID }
    public func encode(into buffer: inout [UInt8]) {
        buffer.appendBigEndian(Int32(isEmpty ? 0 : 1))  // dimensions
        buffer.appendBigEndian(Int32(0))  // no NULLs
        buffer.appendBigEndian(Element.postgresTypeOID)
        if isEmpty { return }
        buffer.appendBigEndian(Int32(count))
        buffer.appendBigEndian(Int32(1))  // lower bound
        var element: [UInt8] = []
        for value in self {
            element.removeAll(keepingCapacity: true)
            value.encode(into: &element)
            buffer.appendBigEndian(Int32(element.count))
            buffer.append(contentsOf: element)
        }
    }
}

/// A `jsonb` value from already-serialised JSON text.
public struct PostgresJSONB: PostgresEncodable {
    public static var postgresTypeOID: UInt32 { 3802 }
    public let json: String
    public init(json: String) { self.json = json }
    public func encode(into buffer: inout [UInt8]) {
        buffer.append(1)  // jsonb binary format version
        buffer.append(contentsOf: json.utf8)
    }
}

/// A one-dimensional array whose elements may be NULL (`[String?]` and the like), for
/// `unnest` batches of nullable columns.
public struct PostgresNullableArray<Element: PostgresArrayElement>: PostgresEncodable {
    public static var postgresTypeOID: UInt32 { Element.postgresArrayTypeOID }
    public let values: [Element?]

    public init(_ values: [Element?]) {
        self.values = values
    }

    public func encode(into buffer: inout [UInt8]) {
        buffer.appendBigEndian(Int32(values.isEmpty ? 0 : 1))
        buffer.appendBigEndian(Int32(values.contains { $0 == nil } ? 1 : 0))
        buffer.appendBigEndian(Element.postgresTypeOID)
        if values.isEmpty { return }
        buffer.appendBigEndian(Int32(values.count))
        buffer.appendBigEndian(Int32(1))
        var element: [UInt8] = []
        for value in values {
            guard let value else {
                buffer.appendBigEndian(Int32(-1))
                continue
            }
            element.removeAll(keepingCapacity: true)
            value.encode(into: &element)
            buffer.appendBigEndian(Int32(element.count))
            buffer.append(contentsOf: element)
        }
    }
}
