import CLibPQ
import Glibc

/// LISTEN/NOTIFY: a connection that waits for news instead of asking every so often.
extension PostgresConnection {
    /// Starts listening on `channel` (a plain lower-case identifier: it cannot be a bound
    /// parameter in LISTEN).
    public func listen(_ channel: String) async throws {
        guard !channel.isEmpty, channel.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") }) else {
            throw PostgresError(.invalidValue, "a LISTEN channel must be a lower-case identifier")
        }
        try await executeScript(unsafeSQL: "LISTEN \(channel)")
    }

    /// The payloads of the notifications that arrived, waiting up to `timeout` on the
    /// connection's own thread for the first (empty when none came).
    public func notifications(waitingUpTo timeout: Duration) async throws -> [String] {
        let milliseconds = Int32(clamping: timeout.milliseconds)
        return try await run(extra: timeout) { handle in
            var payloads = try Self.takeNotifications(handle)
            guard payloads.isEmpty else { return payloads }
            var socket = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
            guard socket.fd >= 0 else { throw Self.connectionError(handle) }
            if poll(&socket, 1, milliseconds) > 0 {
                payloads = try Self.takeNotifications(handle)
            }
            return payloads
        }
    }

    private static func takeNotifications(_ handle: OpaquePointer) throws -> [String] {
        guard PQconsumeInput(handle) == 1 else { throw connectionError(handle) }
        var payloads: [String] = []
        while let notification = PQnotifies(handle) {
            payloads.append(String(cString: notification.pointee.extra))
            PQfreemem(notification)
        }
        return payloads
    }
}
