import CLibPQ

/// Checks a connection string the way libpq will read it, without connecting.
public enum PostgresConnectionString {
    /// Throws when libpq cannot parse `value` as a URI or conninfo string. The error repeats
    /// libpq's reason, never the string itself (it may hold a password).
    public static func validate(_ value: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(value, &error) else {
            let reason = error.map { String(cString: $0) } ?? "unparseable"
            PQfreemem(error)
            let oneLine = reason.split(whereSeparator: \.isNewline).joined(separator: " ")
            throw PostgresError(.invalidValue, "not a PostgreSQL URI or conninfo string: \(oneLine)")
        }
        PQconninfoFree(options)
    }
}
