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
            throw PostgresError(.invalidValue, "not a PostgreSQL URI or conninfo string: \(redactingQuotes(oneLine))")
        }
        PQconninfoFree(options)
    }

    /// libpq quotes the text around a parse error, and that can be the password or the whole
    /// URI: every quoted part with a letter or digit in it goes ("=" and the like stay).
    static func redactingQuotes(_ message: String) -> String {
        var result = ""
        var quoted: String?
        for character in message {
            if character == "\"" {
                if let inside = quoted {
                    result += inside.contains(where: { $0.isLetter || $0.isNumber }) ? "\"…\"" : "\"\(inside)\""
                    quoted = nil
                } else {
                    quoted = ""
                }
            } else if quoted != nil {
                quoted!.append(character)
            } else {
                result.append(character)
            }
        }
        if quoted != nil { result += "\"…" }  // an unterminated quote: what follows it goes too
        return result
    }
}
