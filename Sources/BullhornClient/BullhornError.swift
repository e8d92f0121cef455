/// Every failure of the Bullhorn client. Messages name the endpoint (never its query string,
/// which may carry a password or token) and never include credentials.
public struct BullhornError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// Bad client id, secret, username or password; or a refresh that cannot recover.
        case authentication
        /// 429 / capacity 500 / 503 still failing after every retry.
        case throttled
        /// The entity does not exist (404).
        case notFound
        /// Bullhorn refused the data (400 with errors), e.g. a field too long.
        case validation
        /// The answer is not what the API documents: invalid JSON, missing fields, a page
        /// that does not advance.
        case malformedResponse
        /// No answer: connect failure, timeout, broken transfer.
        case transport
        /// Any other status.
        case server
        /// We broke the protocol (412: BhRestToken missing): a bug on our side.
        case protocolViolation
        /// A write whose outcome is unknown (the request may or may not have been applied):
        /// look before writing again.
        case ambiguousWrite
        /// No call token could be had (the fleet's shared budget lives in the database, and
        /// the database did not answer): nothing was sent.
        case budgetUnavailable
        /// The fleet's shared REST session could not be read or kept (its database did not
        /// answer, or another process's renewal took too long): the call was not sent.
        case sessionStoreUnavailable
    }

    public let code: Code
    public let endpoint: String
    public let message: String
    public let status: Int?

    public init(_ code: Code, endpoint: String, _ message: String, status: Int? = nil) {
        self.code = code
        self.endpoint = endpoint
        self.message = message
        self.status = status
    }

    /// True when the same call may succeed later (after backoff, or after re-checking state).
    public var isRetriable: Bool {
        switch code {
        case .throttled, .transport, .ambiguousWrite, .budgetUnavailable, .sessionStoreUnavailable: return true
        case .server: return (status ?? 0) >= 500
        case .authentication, .notFound, .validation, .malformedResponse, .protocolViolation: return false
        }
    }

    public var description: String {
        let status = self.status.map { " (HTTP \($0))" } ?? ""
        return "Bullhorn \(code.rawValue) at \(endpoint)\(status): \(message)"
    }
}
