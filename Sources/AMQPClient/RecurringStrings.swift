import CRabbitMQ

/// The strings that recur from frame to frame, decoded once and then shared: consumer tags,
/// content types, message types, header names, a session's routing key. A worker holding 200
/// sessions keeps thousands of deliveries in hand, and each held its own copy of each of these
/// (a heap allocation apiece); message ids, which never recur, are not offered.
///
/// Strings of up to 15 UTF-8 bytes live inside the `String` value itself and pass straight
/// through. Confined to its connection's thread, like the connection core that owns it.
struct RecurringStrings {
    private var known: [Int: String] = [:]
    /// Past this many distinct strings the table starts again, so that a stream of strings that
    /// do not recur after all cannot grow it without bound; 0 keeps none (every string decoded).
    private let capacity: Int

    init(capacity: Int = 4_096) {
        self.capacity = capacity
    }

    /// How many distinct strings it holds now.
    var count: Int { known.count }

    mutating func string(_ bytes: amqp_bytes_t) -> String {
        guard bytes.len > 0, let pointer = bytes.bytes else { return "" }
        return string(UnsafeRawBufferPointer(start: pointer, count: bytes.len))
    }

    mutating func string(_ bytes: UnsafeRawBufferPointer) -> String {
        guard capacity > 0, bytes.count > 15 else { return String(decoding: bytes, as: UTF8.self) }
        var hasher = Hasher()
        hasher.combine(bytes: bytes)
        let key = hasher.finalize()
        if let found = known[key], Self.bytes(of: found, equal: bytes) { return found }
        let decoded = String(decoding: bytes, as: UTF8.self)
        if known.count >= capacity { known.removeAll(keepingCapacity: true) }
        known[key] = decoded
        return decoded
    }

    /// Over the string's own contiguous bytes (a native string always has them): walking its
    /// `UTF8View` generically was the connection thread's largest cost of our own in a profile.
    private static func bytes(of string: String, equal bytes: UnsafeRawBufferPointer) -> Bool {
        string.utf8.count == bytes.count
            && string.utf8.withContiguousStorageIfAvailable { UnsafeRawBufferPointer($0).elementsEqual(bytes) } ?? string.utf8.elementsEqual(bytes)
    }
}
