import CCurl
import Foundation

/// One libcurl easy handle. Reused across requests so that its connection cache keeps
/// connections alive; touched only on the thread of the `CurlHTTPClient` worker that owns it.
final class CurlEasyHandle {
    private let handle: UnsafeMutableRawPointer
    static let maxBodyBytes = 64 << 20

    /// libcurl's global state must be set up once before any handle exists.
    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    init() {
        _ = Self.globalInit
        handle = curl_easy_init()
    }

    deinit {
        curl_easy_cleanup(handle)
    }

    /// Performs `request` synchronously: call only on the owning thread.
    func perform(_ request: HTTPClientRequest, connectTimeout: Duration, userAgent: String) throws -> HTTPClientResponse {
        // reset clears the options of the last request but keeps live connections.
        curl_easy_reset(handle)
        let sink = ResponseSink()
        let sinkPointer = Unmanaged.passUnretained(sink).toOpaque()
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }

        tsync_curl_setopt_string(handle, CURLOPT_URL, request.url)
        tsync_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)  // threads must not get SIGALRM
        tsync_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, milliseconds(request.timeout))
        tsync_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(min(connectTimeout, request.timeout)))
        tsync_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, request.followRedirects ? 1 : 0)
        tsync_curl_setopt_long(handle, CURLOPT_MAXREDIRS, 10)
        tsync_curl_setopt_string(handle, CURLOPT_USERAGENT, userAgent)
        tsync_curl_setopt_string(handle, CURLOPT_ACCEPT_ENCODING, "")  // any encoding curl can decode
        tsync_curl_setopt_long(handle, CURLOPT_PROTOCOLS, Int(CURLPROTO_HTTP | CURLPROTO_HTTPS))
        tsync_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, { data, size, count, context in
            let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
            return sink.appendBody(data, size * count)
        })
        tsync_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, sinkPointer)
        tsync_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, { data, size, count, context in
            let sink = Unmanaged<ResponseSink>.fromOpaque(context!).takeUnretainedValue()
            return sink.appendHeaderLine(data, size * count)
        })
        tsync_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, sinkPointer)

        for (name, value) in request.headers {
            headerList = curl_slist_append(headerList, "\(name): \(value)")
        }
        headerList = curl_slist_append(headerList, "Expect:")  // no 100-continue round trip

        let method = request.method.uppercased()
        // POSTFIELDS does not copy: `body` must stay alive until perform returns.
        let body = request.body ?? []
        let code: CURLcode = body.withUnsafeBytes { bytes in
            switch method {
            case "GET": tsync_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
            case "HEAD": tsync_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
            default:
                if method != "POST" { tsync_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method) }
                if request.body != nil || method == "POST" {
                    tsync_curl_setopt_long(handle, CURLOPT_POST, 1)
                    tsync_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
                    tsync_curl_setopt_pointer(
                        handle, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(sinkPointer)))
                }
            }
            tsync_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList)
            return curl_easy_perform(handle)
        }
        withExtendedLifetime(sink) {}

        guard code == CURLE_OK else {
            throw Self.error(code, request: request, tooLarge: sink.tooLarge)
        }
        var status = 0
        tsync_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        return HTTPClientResponse(status: status, headers: sink.headers, body: sink.body)
    }

    private func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return max(1, Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000))
    }

    private static func error(_ code: CURLcode, request: HTTPClientRequest, tooLarge: Bool) -> HTTPClientError {
        let reason = String(cString: curl_easy_strerror(code))
        let target = "\(request.method) \(request.redactedURL)"
        if tooLarge { return HTTPClientError(.responseTooLarge, "\(target): response over \(maxBodyBytes) bytes") }
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            return HTTPClientError(.timeout, "\(target): no complete response within \(request.timeout)")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return HTTPClientError(.connect, "\(target): \(reason)")
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL:
            return HTTPClientError(.invalidRequest, "\(target): \(reason)")
        default:
            return HTTPClientError(.transport, "\(target): \(reason)")
        }
    }
}

/// Collects one response's headers and body from libcurl's callbacks.
private final class ResponseSink {
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    var tooLarge = false

    func appendBody(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        guard let data, count > 0 else { return 0 }
        guard body.count + count <= CurlEasyHandle.maxBodyBytes else {
            tooLarge = true
            return 0  // makes libcurl abort with CURLE_WRITE_ERROR
        }
        body.append(contentsOf: UnsafeRawBufferPointer(start: data, count: count))
        return count
    }

    func appendHeaderLine(_ data: UnsafeMutablePointer<CChar>?, _ count: Int) -> Int {
        guard let data else { return 0 }
        let line = String(decoding: UnsafeRawBufferPointer(start: data, count: count), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            headers.removeAll()  // a new response (after 100-continue or a followed redirect)
        } else if let colon = line.firstIndex(of: ":") {
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            headers.append((name, value))
        }
        return count
    }
}
