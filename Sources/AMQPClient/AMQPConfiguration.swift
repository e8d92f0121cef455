import Foundation

/// Where and how to connect, parsed from an `amqp://` or `amqps://` URL as RabbitMQ documents
/// it: `amqp[s]://user:password@host:port/vhost?heartbeat=10&connection_timeout=10000`.
/// An empty path is the default vhost `/` (written `%2F` in a URL).
public struct AMQPConfiguration: Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var virtualHost: String
    public var username: String
    public var password: String
    /// TLS through `amqp_ssl_socket`, for `amqps://`.
    public var useTLS: Bool
    /// Verify the broker's certificate and host name (`verify=verify_none` turns it off).
    public var verifyPeer: Bool
    /// CA bundle for TLS (`cacertfile=`); the system's default otherwise.
    public var caCertificatePath: String?
    /// Seconds between heartbeats; a silent peer is declared dead after twice that. 10 by
    /// default, within the 5–20 s RabbitMQ recommends: a connection that went silent is
    /// replaced in about 20 s, and the broker frees its single-active-consumer slots as soon.
    public var heartbeatSeconds: Int
    public var connectTimeout: Duration
    /// How long an RPC (declare, bind, channel open/close, consume, cancel, connection close)
    /// may wait for the broker's answer: a silent broker fails the connection instead of
    /// holding its thread for ever (`rpc_timeout=` in milliseconds).
    public var rpcTimeout: Duration
    public var frameMax: Int
    /// Other brokers of the same cluster, tried in order when this one does not answer
    /// (`amqp://…@node1/vh,amqp://…@node2/vh`, as other AMQP clients accept).
    public var alternatives: [AMQPConfiguration] = []

    /// This broker, then each alternative, without their own alternatives.
    public var brokers: [AMQPConfiguration] {
        var first = self
        first.alternatives = []
        return [first] + alternatives
    }

    public init(
        host: String = "127.0.0.1", port: Int? = nil, virtualHost: String = "/",
        username: String = "guest", password: String = "guest", useTLS: Bool = false,
        verifyPeer: Bool = true, caCertificatePath: String? = nil, heartbeatSeconds: Int = 10,
        connectTimeout: Duration = .seconds(10), rpcTimeout: Duration = .seconds(30), frameMax: Int = 131_072
    ) {
        self.rpcTimeout = rpcTimeout
        self.host = host
        self.port = port ?? (useTLS ? 5671 : 5672)
        self.virtualHost = virtualHost
        self.username = username
        self.password = password
        self.useTLS = useTLS
        self.verifyPeer = verifyPeer
        self.caCertificatePath = caCertificatePath
        self.heartbeatSeconds = heartbeatSeconds
        self.connectTimeout = connectTimeout
        self.frameMax = frameMax
    }

    /// Parses a URL, or several separated by commas (the brokers of a cluster, tried in
    /// order); the error never repeats the URL (it may hold a password).
    public init(url: String) throws {
        let urls = url.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard let first = urls.first else { throw AMQPError(.invalidConfiguration, "no broker URL") }
        try self.init(singleURL: first)
        alternatives = try urls.dropFirst().enumerated().map { index, other in
            do {
                return try AMQPConfiguration(singleURL: other)
            } catch let error as AMQPError {
                throw AMQPError(.invalidConfiguration, "broker \(index + 2) of the list: \(error.message)")
            }
        }
    }

    private init(singleURL url: String) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased()
        else { throw AMQPError(.invalidConfiguration, "not a URL (expected amqp://user:password@host:port/vhost)") }
        guard scheme == "amqp" || scheme == "amqps" else {
            throw AMQPError(.invalidConfiguration, "scheme must be amqp or amqps, not \(scheme)")
        }
        // The host as written: `host` and `percentEncodedHost` run it through ICU's IDNA
        // transcoder, which maps about 1 MiB of ICU's code and data into every process for a
        // name the resolver wants as written.
        guard var host = components.encodedHost?.removingPercentEncoding, !host.isEmpty else {
            throw AMQPError(.invalidConfiguration, "the URL has no host")
        }
        // An IPv6 address comes with its brackets, which the resolver would take for a name.
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let tls = scheme == "amqps"
        var vhost = "/"
        let path = components.percentEncodedPath
        if path.count > 1 {
            guard let decoded = String(path.dropFirst()).removingPercentEncoding, !decoded.contains("/") || path.contains("%2F") || path.contains("%2f")
            else { throw AMQPError(.invalidConfiguration, "the virtual host must be one path segment (write / as %2F)") }
            vhost = decoded
        }
        self.init(
            host: host, port: components.port, virtualHost: vhost,
            username: components.user?.removingPercentEncoding ?? "guest",
            password: components.password?.removingPercentEncoding ?? "guest", useTLS: tls)
        for item in components.queryItems ?? [] {
            let value = item.value ?? ""
            switch item.name {
            case "heartbeat":
                guard let seconds = Int(value), seconds >= 0 else {
                    throw AMQPError(.invalidConfiguration, "heartbeat must be a whole number of seconds")
                }
                heartbeatSeconds = seconds
            case "connection_timeout":
                guard let millis = Int(value), millis > 0 else {
                    throw AMQPError(.invalidConfiguration, "connection_timeout must be milliseconds > 0")
                }
                connectTimeout = .milliseconds(millis)
            case "rpc_timeout":
                guard let millis = Int(value), millis > 0 else {
                    throw AMQPError(.invalidConfiguration, "rpc_timeout must be milliseconds > 0")
                }
                rpcTimeout = .milliseconds(millis)
            case "frame_max":
                guard let size = Int(value), size >= 4096 else {
                    throw AMQPError(.invalidConfiguration, "frame_max must be at least 4096")
                }
                frameMax = size
            case "cacertfile": caCertificatePath = value
            case "verify": verifyPeer = value != "verify_none"
            default: break  // RabbitMQ's URI spec lets clients ignore unknown keys
            }
        }
    }

    /// The same brokers, in another virtual host.
    public func inVirtualHost(_ name: String) -> AMQPConfiguration {
        var copy = self
        copy.virtualHost = name
        copy.alternatives = alternatives.map { $0.inVirtualHost(name) }
        return copy
    }

    /// The URL (or URLs) without the password, for logs.
    public var description: String {
        let vhost = virtualHost == "/" ? "%2F" : virtualHost
        let own = "\(useTLS ? "amqps" : "amqp")://\(username)@\(host):\(port)/\(vhost)"
        return ([own] + alternatives.map(\.description)).joined(separator: ",")
    }
}
