import Foundation

/// Runs the command-line tools of the scratch servers, and finds them free ports.
enum ServerTool {
    /// Runs a tool to completion on a thread of its own (not the cooperative pool), with
    /// `environment` added to ours. Not `Process`: `pg_ctl start` and `rabbitmq-server` leave
    /// daemons behind, and Foundation then never noticed `runuser` exit (it stayed a zombie and
    /// the test hung); `system` waits for its own child. `background` starts it and returns.
    static func run(_ words: [String], environment: [String: String] = [:], background: Bool = false) async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent(TestServices.uniqueName("tsync-tool")).path
        defer { if !background { try? FileManager.default.removeItem(atPath: log) } }
        let exports = environment.sorted { $0.key < $1.key }.map { "\($0.key)=\(shellQuoted($0.value))" }
        let command = "cd /tmp && " + (exports.isEmpty ? "" : "env " + exports.joined(separator: " ") + " ")
            + words.map(shellQuoted).joined(separator: " ") + " >\(shellQuoted(log)) 2>&1 </dev/null" + (background ? " &" : "")
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: system(command)) }.start()
        }
        guard status == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw ScratchServerError(description: "\(words.first ?? "") \(words.dropFirst().first ?? "") failed (\(status)): \(text.suffix(2_000))")
        }
    }

    static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Whether something accepts connections on 127.0.0.1:`port`.
    static func isListening(_ port: Int) -> Bool {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socketFD) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A port nothing listens on right now, for a child process to bind (see `HeldPort`).
    static func freePort() throws -> Int {
        try HeldPort(listening: false).port
    }
}

/// A free TCP port on 127.0.0.1, held while this lives: bound only (to learn a free port to
/// hand on), or listening too (so that nothing else can listen on it).
public final class HeldPort {
    public let port: Int
    private let descriptor: Int32

    /// `listening: false` is a port to hand to another process, free when it binds it: it is
    /// picked below the kernel's ephemeral range (32768 up), which every `bind` to port 0 and
    /// every outgoing connection draws from. A port from that range was once taken, between
    /// the pick and the child's bind, by a simulator started in a parallel test.
    public init(listening: Bool = true) throws {
        for _ in 0..<64 {
            let candidate = listening ? 0 : UInt16.random(in: 20_000..<32_768)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = candidate.bigEndian
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(descriptor, pointer, length) == 0 && (!listening || listen(descriptor, 1) == 0)
                        && getsockname(descriptor, pointer, &length) == 0
                }
            }
            guard bound else {
                close(descriptor)
                continue
            }
            self.descriptor = descriptor
            port = Int(UInt16(bigEndian: address.sin_port))
            return
        }
        throw ScratchServerError(description: "no free port")
    }

    deinit { close(descriptor) }
}

public struct ScratchServerError: Error, CustomStringConvertible {
    public let description: String
}
