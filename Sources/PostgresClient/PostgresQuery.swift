/// A SQL statement whose interpolated values become bound parameters (`$1`, `$2`, …), as in
/// postgres-nio: `"SELECT * FROM t WHERE id = \(id)"` never splices `id` into the text.
public struct PostgresQuery: Sendable, ExpressibleByStringInterpolation {
    public private(set) var sql: String
    public private(set) var binds: [PostgresBind]

    /// A statement with no interpolation; `sql` must not contain untrusted text.
    public init(unsafeSQL sql: String, binds: [PostgresBind] = []) {
        self.sql = sql
        self.binds = binds
    }

    public init(stringLiteral value: String) {
        self.init(unsafeSQL: value)
    }

    public init(stringInterpolation: StringInterpolation) {
        self.init(unsafeSQL: stringInterpolation.sql, binds: stringInterpolation.binds)
    }

    public struct StringInterpolation: StringInterpolationProtocol {
        var sql = ""
        var binds: [PostgresBind] = []

        public init(literalCapacity: Int, interpolationCount: Int) {
            sql.reserveCapacity(literalCapacity + interpolationCount * 3)
            binds.reserveCapacity(interpolationCount)
        }

        public mutating func appendLiteral(_ literal: String) {
            sql += literal
        }

        public mutating func appendInterpolation(_ value: some PostgresEncodable) {
            binds.append(PostgresBind(value))
            sql += "$\(binds.count)"
        }

        public mutating func appendInterpolation(_ value: (some PostgresEncodable)?) {
            if let value {
                appendInterpolation(value)
            } else {
                binds.append(.null)
                sql += "$\(binds.count)"
            }
        }

        /// Splices trusted SQL text (an identifier chosen by our own code, never user input).
        public mutating func appendInterpolation(unescaped text: String) {
            sql += text
        }
    }
}

/// One bound parameter: its type and its binary wire encoding (nil is SQL NULL).
public struct PostgresBind: Sendable {
    public let typeOID: UInt32
    public let bytes: [UInt8]?

    public init(_ value: some PostgresEncodable) {
        var bytes: [UInt8] = []
        value.encode(into: &bytes)
        self.typeOID = type(of: value).postgresTypeOID
        self.bytes = bytes
    }

    init(typeOID: UInt32, bytes: [UInt8]?) {
        self.typeOID = typeOID
        self.bytes = bytes
    }

    /// An untyped NULL; the server infers its type from the context.
    public static let null = PostgresBind(typeOID: 0, bytes: nil)
}
