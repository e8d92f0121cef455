import CCurl
import Foundation

/// One libcurl easy handle: the options and buffers of one request at a time. Connections
/// live in the multi handle that runs it (`CurlMulti`), so any handle can reuse any of them.
/// Touched only on the multi's thread.
final class CurlEasyHandle {
    let raw: UnsafeMutableRawPointer
    static let maxBodyBytes = 64 << 20

    /// libcurl's global state must be set up once before any handle exists.
    static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_DEFAULT))
    }()

    init() {
        _ = Self.globalInit
        raw = curl_easy_init()
    }

    deinit {
        curl_easy_cleanup(raw)
    }

    /// What one request needs until its response is read: where the response goes, and the
    /// header list libcurl reads while it sends.
    final class Exchange {
        let request: HTTPClientRequest
        let sink = ResponseSink()
        var headerList: UnsafeMutablePointer<curl_slist>?

        init(request: HTTPClientRequest) {
            self.request = request
        }

        deinit {
            curl_slist_free_all(headerList)
        }
    }

    /// Sets the handle up for `request`; the returned exchange must live until `response`.
    func prepare(_ request: HTTPClientRequest, connectTimeout: Duration, userAgent: String) -> Exchange {
        // reset clears the options of the last request.
        curl_easy_reset(raw)
        let handle = raw
        let exchange = Exchange(request: request)
        let sinkPointer = Unmanaged.passUnretained(exchange.sink).toOpaque()

        tsync_curl_setopt_string(handle, CURLOPT_URL, request.url)
        tsync_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)  // threads must not get SIGALRM
        // Not CURLOPT_BUFFERSIZE (a 4 KiB receive buffer took 0.7–1.0 MiB off a 200-session
        // worker): curl 7.88 refuses it while a handle keeps its buffer (an HTTP/2 connection
        // still in use, a failed lookup), after `curl_easy_reset` has put the size back to 16 KiB,
        // and would then read 16 KiB into 4.
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
            exchange.headerList = curl_slist_append(exchange.headerList, "\(name): \(value)")
        }
        exchange.headerList = curl_slist_append(exchange.headerList, "Expect:")  // no 100-continue round trip

        let method = request.method.uppercased()
        switch method {
        case "GET": tsync_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
        case "HEAD": tsync_curl_setopt_long(handle, CURLOPT_NOBODY, 1)
        default:
            if method != "POST" { tsync_curl_setopt_string(handle, CURLOPT_CUSTOMREQUEST, method) }
            if request.body != nil || method == "POST" {
                var body = request.body ?? []
                tsync_curl_setopt_long(handle, CURLOPT_POST, 1)
                tsync_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                // Copied now (the size is set first, so a body may hold NULs): the request may
                // be sent long after this call, from nothing this frame keeps alive.
                if body.isEmpty { body = [0] }
                _ = body.withUnsafeMutableBytes { tsync_curl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) }
            }
        }
        tsync_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, exchange.headerList)
        return exchange
    }

    /// The response of a finished exchange, or the error libcurl's `code` says.
    func response(to exchange: Exchange, code: CURLcode) throws -> HTTPClientResponse {
        guard code == CURLE_OK else {
            throw Self.error(code, request: exchange.request, tooLarge: exchange.sink.tooLarge)
        }
        var status = 0
        tsync_curl_getinfo_long(raw, CURLINFO_RESPONSE_CODE, &status)
        return HTTPClientResponse(status: status, headers: exchange.sink.headers, body: exchange.sink.body)
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
final class ResponseSink {
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
