/// The statements one connection has prepared on the server, by text and parameter types.
///
/// The fleet's hot statements are few and always the same texts (arrays travel as one
/// parameter, so a batch's size never changes its text): the worker's lookup a batch,
/// hundreds a second, and the publisher's one a page. Run unprepared, each was parsed and
/// planned anew. A text is prepared the second time the connection runs it, so that a
/// statement run once costs no extra round trip, and stays prepared for the connection's
/// life; at most `capacity` of them, after which new texts run unprepared.
///
/// Touched only on the connection's thread (as the libpq handle is), which is what makes the
/// `@unchecked Sendable` sound.
final class PreparedStatements: @unchecked Sendable {
    struct Key: Hashable {
        let sql: String
        let types: [UInt32]
    }

    let capacity: Int
    private var names: [Key: String] = [:]
    private var seenOnce: Set<Key> = []
    private var issued = 0

    init(capacity: Int = 64) {
        self.capacity = capacity
    }

    /// The server-side name `key` runs by, if it is prepared.
    func name(for key: Key) -> String? { names[key] }

    /// Whether to prepare `key` now: it ran before and there is room. Texts seen once are
    /// forgotten in bulk when they pile up (a stream of one-off texts must not grow without end).
    func shouldPrepare(_ key: Key) -> Bool {
        guard names.count < capacity else { return false }
        if seenOnce.remove(key) != nil { return true }
        if seenOnce.count >= capacity * 4 { seenOnce.removeAll() }
        seenOnce.insert(key)
        return false
    }

    /// The name for the next statement to prepare; `prepared(_:as:)` records it once the server
    /// has it. Names are never reused within a connection, even after `forgetAll`: the server
    /// may still hold statements of ours that it did not report missing.
    var nextName: String { "tsync_\(issued + 1)" }

    func prepared(_ key: Key, as name: String) {
        names[key] = name
        issued += 1
    }

    /// After the server said it has no such statement (someone ran `DISCARD`): prepare anew.
    func forgetAll() {
        names.removeAll()
        seenOnce.removeAll()
    }

    var count: Int { names.count }
}
