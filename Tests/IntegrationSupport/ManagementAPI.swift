import CurlHTTP
import Foundation

/// The RabbitMQ management HTTP API, for test set-up: scratch virtual hosts and definition
/// imports (the same importer `rabbitmqctl import_definitions` uses).
public struct ManagementAPI: Sendable {
    public let baseURL: String
    private let authorization: String
    private let client = CurlHTTPClient(maxConcurrentRequests: 2)

    /// The broker's own AMQP URL (any virtual host), for `amqpURL(vhost:)`.
    private let brokerURL: String

    public init(url: String = TestServices.managementURL, amqpURL: String = TestServices.amqpURL) {
        brokerURL = amqpURL
        let components = URLComponents(string: url)!
        let user = components.user ?? "guest"
        let password = components.password ?? "guest"
        var bare = components
        bare.user = nil
        bare.password = nil
        baseURL = bare.string!.hasSuffix("/") ? String(bare.string!.dropLast()) : bare.string!
        authorization = "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @discardableResult
    public func request(_ method: String, _ path: String, json: String? = nil) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(method: method, url: baseURL + path, headers: [("Authorization", authorization)])
        if let json {
            request.headers.append(("Content-Type", "application/json"))
            request.body = Array(json.utf8)
        }
        let response = try await client.execute(request)
        guard (200..<300).contains(response.status) else {
            throw ManagementAPIError(status: response.status, path: path, body: response.text)
        }
        return response
    }

    /// Creates a virtual host that guest may use and returns its name.
    public func createScratchVirtualHost() async throws -> String {
        let name = TestServices.uniqueName("tsync-vhost")
        try await request("PUT", "/api/vhosts/\(name)", json: "{}")
        try await request("PUT", "/api/permissions/\(name)/guest", json: #"{"configure":".*","write":".*","read":".*"}"#)
        return name
    }

    public func deleteVirtualHost(_ name: String) async throws {
        try await request("DELETE", "/api/vhosts/\(name)")
    }

    /// Imports RabbitMQ definitions into one virtual host.
    public func importDefinitions(_ json: String, into vhost: String) async throws {
        try await request("POST", "/api/definitions/\(vhost)", json: json)
    }

    /// The AMQP URL of `vhost` on this broker.
    public func amqpURL(vhost: String) -> String {
        var components = URLComponents(string: brokerURL)!
        components.percentEncodedPath = "/" + vhost
        return components.string!
    }
}

public struct ManagementAPIError: Error, CustomStringConvertible {
    public let status: Int
    public let path: String
    public let body: String
    public var description: String { "management API \(path) answered \(status): \(body.prefix(300))" }
}
