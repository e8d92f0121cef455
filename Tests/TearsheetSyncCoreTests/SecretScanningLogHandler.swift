import BullhornSimulator
import Foundation
import Logging
import Synchronization
import Testing

/// Every log line of the test process, at every level, is searched for secrets before it is
/// printed (or not): the simulator account's client secret and password, every fixture's key,
/// and anything shaped like a code or token the simulator issues. A line that holds one fails
/// the test that logged it. The command-line processes' output is searched the same way by
/// the chaos suite.
struct SecretScanningLogHandler: LogHandler {
    /// Registered secrets (fixtures' keys), beside the fixed ones.
    static let secrets = Mutex<Set<String>>([SimulatedAuth.Account.standard.clientSecret, SimulatedAuth.Account.standard.password])
    nonisolated(unsafe) static let tokenShape = #/(?:at|rt|bh|22:)[0-9]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/#

    /// Installs the handler for the process, once; what is printed is `TSYNC_TEST_LOG_LEVEL`
    /// (default: nothing).
    static let installed: Void = {
        let printed = ProcessInfo.processInfo.environment["TSYNC_TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
        LoggingSystem.bootstrap { label in SecretScanningLogHandler(label: label, printed: printed) }
    }()

    static func register(_ secret: String) {
        secrets.withLock { _ = $0.insert(secret) }
    }

    /// What of `text` is secret, named without repeating it.
    static func leaks(in text: String) -> [String] {
        var found = secrets.withLock { secrets in secrets.filter { text.contains($0) } }.map { "a secret of \($0.count) characters" }
        if text.contains(tokenShape) { found.append("a Bullhorn code or token") }
        return found
    }

    let label: String
    let printed: Logger.Level?
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    // Every level reaches the handler, so that every line is searched; `printed` decides what shows.
    var logLevel: Logger.Level {
        get { .trace }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(metadataProvider?.get() ?? [:]) { _, new in new }.merging(event.metadata ?? [:]) { _, new in new }
        var text = "\(event.message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        if let error = event.error { text += " error=\(error)" }
        for leak in Self.leaks(in: text) {
            Issue.record("\(leak) in a log line of \(label) (\(event.file):\(event.line))")
        }
        if let printed, event.level >= printed {
            FileHandle.standardError.write(Data("\(event.level) \(label): \(text)\n".utf8))
        }
    }
}
