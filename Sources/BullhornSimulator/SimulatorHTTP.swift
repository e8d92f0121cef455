import Foundation
import HTTPTypes
import Hummingbird

/// JSON and HTML answers in the shapes Bullhorn uses.
enum SimulatorHTTP {
    /// Keys unsorted, as Bullhorn sends them (sorting was a fifth of the simulator's CPU).
    static func json(_ status: HTTPResponse.Status, _ object: Any) -> Response {
        let bytes = SimulatorJSON.encode(object) ?? Array((try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8))
        return Response(
            status: status, headers: [.contentType: "application/json;charset=UTF-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, key: String? = nil) -> Response {
        var body: [String: Any] = ["errorMessage": message, "errorCode": status.code]
        if let key { body["errorMessageKey"] = key }
        return json(status, body)
    }

    static func html(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(status: status, headers: [.contentType: "text/html;charset=UTF-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Query parameters, then form fields from the body (OAuth accepts either).
    static func parameters(_ request: Request) async throws -> [String: String] {
        var values: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { values[String(key)] = String(value) }
        let body = try await request.body.collect(upTo: 1 << 20)
        let text = String(buffer: body)
        if request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
            for pair in text.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map {
                    String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
                }
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
        }
        return values
    }

    static func queryParameter(_ request: Request, _ name: String) -> String? {
        request.uri.queryParameters[name[...]].map(String.init)
    }
}
