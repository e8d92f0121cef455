/// Every failure of the PostgreSQL layer. Descriptions carry the server's primary message and
/// SQLSTATE but never bound values, row data or the connection string's password.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// Could not connect, or the connection broke.
        case connection
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// A column could not be decoded into the requested Swift type.
        case decoding
        /// A value cannot be sent (for example a string with a NUL byte).
        case invalidValue
        /// The connection was closed by us.
        case closed
    }

    public let code: Code
    public let message: String
    /// The five-character SQLSTATE, for `.server` errors.
    public let sqlState: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    /// True when the same work may succeed if tried again later (broken connection, server
    /// shutting down, serialization failure, deadlock, too many connections).
    public var isRetriable: Bool {
        switch code {
        case .connection: return true
        case .server:
            guard let state = sqlState else { return false }
            return state.hasPrefix("08") || state.hasPrefix("57P") || state == "40001"
                || state == "40P01" || state == "53300"
        case .decoding, .invalidValue, .closed: return false
        }
    }

    public var isUniqueViolation: Bool { sqlState == "23505" }

    public var description: String {
        if let sqlState { return "PostgreSQL \(code.rawValue) error \(sqlState): \(message)" }
        return "PostgreSQL \(code.rawValue) error: \(message)"
    }
}
