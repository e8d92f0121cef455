import CurlHTTP
import Foundation

/// The RabbitMQ management HTTP API (`TSYNC_MANAGEMENT_URL`), for what AMQP cannot do:
/// policies, queue statistics, bindings. Errors name the setting and the path, never the
/// credentials in the URL.
public struct RabbitMQManagement: Sendable {
    private let baseURL: String
    private let authorization: String?
    private let http = CurlHTTPClient(maxConcurrentRequests: 2)

    public init(url: URL) {
        var components = URLComponents(url: url, resolvingAgainstBaseURL: false)!
        if let user = components.user {
            let password = components.password ?? ""
            authorization = "Basic " + Data("\(user.removingPercentEncoding ?? user):\(password.removingPercentEncoding ?? password)".utf8).base64EncodedString()
        } else {
            authorization = nil
        }
        components.user = nil
        components.password = nil
        let bare = components.string ?? ""
        baseURL = bare.hasSuffix("/") ? String(bare.dropLast()) : bare
    }

    /// A path segment (a virtual host, a queue or policy name) as the API wants it: `/` is `%2F`.
    public static func segment(_ name: String) -> String {
        name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~"))) ?? name
    }

    /// GET, decoded as `T`.
    public func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        try Self.decode(T.self, from: try await send("GET", path, body: nil), path: path)
    }

    /// GET, decoded as `T`; nil when there is no such thing (404).
    public func getIfPresent<T: Decodable>(_ path: String, as type: T.Type) async throws -> T? {
        let response = try await send("GET", path, body: nil, absentIsAnswer: true)
        return response.status == 404 ? nil : try Self.decode(T.self, from: response, path: path)
    }

    private static func decode<T: Decodable>(_ type: T.Type, from response: HTTPClientResponse, path: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(response.body))
        } catch {
            throw ConfigurationError(setting: Settings.managementURLVariable, "the management API's answer to \(pathOnly(path)) is not what it documents")
        }
    }

    /// PUT of a JSON body.
    public func put<T: Encodable>(_ path: String, json body: T) async throws {
        _ = try await send("PUT", path, body: try JSONEncoder().encode(body))
    }

    private func send(_ method: String, _ path: String, body: Data?, absentIsAnswer: Bool = false) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(method: method, url: baseURL + path, timeout: .seconds(30))
        if let authorization { request.headers.append(("Authorization", authorization)) }
        if let body {
            request.headers.append(("Content-Type", "application/json"))
            request.body = Array(body)
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request)
        } catch let error as HTTPClientError {
            throw ConfigurationError(setting: Settings.managementURLVariable, "cannot reach the RabbitMQ management API: \(error.message)")
        }
        guard (200..<300).contains(response.status) || (absentIsAnswer && response.status == 404) else {
            throw ConfigurationError(
                setting: Settings.managementURLVariable, "the management API answered \(response.status) for \(method) \(Self.pathOnly(path))")
        }
        return response
    }

    private static func pathOnly(_ path: String) -> String {
        String(path.prefix { $0 != "?" })
    }
}
