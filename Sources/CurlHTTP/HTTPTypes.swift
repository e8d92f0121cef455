import Foundation

/// An HTTP request for `CurlHTTPClient`.
public struct HTTPClientRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]?
    /// Whole-request deadline: connect, send, wait and read.
    public var timeout: Duration
    /// Off by default: a redirect is returned to the caller (OAuth reads the code from it).
    public var followRedirects: Bool

    public init(
        method: String = "GET", url: String, headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil, timeout: Duration = .seconds(30), followRedirects: Bool = false
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.followRedirects = followRedirects
    }

    /// A POST of `application/x-www-form-urlencoded` fields.
    public static func form(url: String, fields: [(String, String)], timeout: Duration = .seconds(30)) -> HTTPClientRequest {
        HTTPClientRequest(
            method: "POST", url: url,
            headers: [("Content-Type", "application/x-www-form-urlencoded")],
            body: Array(FormEncoding.encode(fields).utf8), timeout: timeout)
    }

    /// A request with a JSON body.
    public static func json(method: String, url: String, body: [UInt8], timeout: Duration = .seconds(30)) -> HTTPClientRequest {
        HTTPClientRequest(
            method: method, url: url, headers: [("Content-Type", "application/json")], body: body, timeout: timeout)
    }

    /// The URL without its query or credentials, safe for errors and logs: OAuth passes
    /// passwords and tokens in query strings.
    public var redactedURL: String {
        guard var components = URLComponents(string: url) else { return "<invalid URL>" }
        components.query = nil
        components.fragment = nil
        components.user = nil
        components.password = nil
        return components.string ?? "<invalid URL>"
    }
}

/// A complete response: status, headers in arrival order, and the body.
public struct HTTPClientResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    /// The last value of a header, matched case-insensitively.
    public func header(_ name: String) -> String? {
        headers.last { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request got no response. Never carries the query string or credentials.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case invalidRequest
        case connect
        case timeout
        case transport
        case responseTooLarge
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Connect failures, timeouts and broken transfers may succeed on a later try.
    public var isRetriable: Bool {
        code == .connect || code == .timeout || code == .transport
    }

    public var description: String { "HTTP \(code.rawValue): \(message)" }
}

/// `application/x-www-form-urlencoded`, as browsers and OAuth servers expect it.
public enum FormEncoding {
    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    public static func escape(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? value
    }

    public static func encode(_ fields: [(String, String)]) -> String {
        fields.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }
}
