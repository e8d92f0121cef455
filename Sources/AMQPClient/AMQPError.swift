/// Every failure of the AMQP layer. Descriptions name the host, queue or exchange involved,
/// never a password.
public struct AMQPError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// The URL or another setting is unusable.
        case invalidConfiguration
        /// TCP/TLS connect, read or write failed, or the heartbeat timed out.
        case transport
        /// The broker refused the credentials or the virtual host.
        case authentication
        /// The broker closed the connection (`replyCode` says why).
        case connectionClosed
        /// The broker closed the channel, e.g. PRECONDITION_FAILED or NOT_FOUND.
        case channelClosed
        /// The broker cancelled a consumer (its queue was deleted, for example).
        case consumerCancelled
        /// An operation on a channel or connection that we had closed.
        case closed
        /// The broker answered something the protocol does not allow here.
        case unexpectedFrame
        /// Publisher confirms did not arrive in time; the channel was closed.
        case timeout
    }

    public let code: Code
    public let message: String
    /// The AMQP reply code of a broker-initiated close (404 NOT_FOUND, 406 PRECONDITION_FAILED, …).
    public let replyCode: UInt16?

    public init(_ code: Code, _ message: String, replyCode: UInt16? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
    }

    /// True when reconnecting and trying again may succeed.
    public var isRetriable: Bool {
        switch code {
        case .transport, .consumerCancelled, .timeout: return true
        case .connectionClosed:
            // 320 CONNECTION_FORCED (broker shutting down), 506 RESOURCE_ERROR and 541
            // INTERNAL_ERROR (the broker's own failure, e.g. a new quorum queue's leader election
            // outlasting its 5 s on a loaded node) pass; the other 5xx are our bugs.
            return replyCode.map { $0 == 320 || $0 == 506 || $0 == 541 } ?? true
        case .invalidConfiguration, .authentication, .channelClosed, .closed, .unexpectedFrame:
            return false
        }
    }

    public var description: String {
        if let replyCode { return "AMQP \(code.rawValue) (\(replyCode)): \(message)" }
        return "AMQP \(code.rawValue): \(message)"
    }
}
