/// Session-level advisory locks: held by this connection until released or until the
/// connection ends (so a crashed process never leaves one behind).
extension PostgresConnection {
    /// Takes the lock if it is free; false when another session holds it.
    public func tryAdvisoryLock(_ key: Int64) async throws -> Bool {
        try await query("SELECT pg_try_advisory_lock(\(key))").scalar(Bool.self)
    }

    /// Waits until the lock is free, then takes it.
    public func advisoryLock(_ key: Int64) async throws {
        try await query("SELECT pg_advisory_lock(\(key))")
    }

    /// Releases a lock this session holds; false when it did not hold it.
    @discardableResult
    public func advisoryUnlock(_ key: Int64) async throws -> Bool {
        try await query("SELECT pg_advisory_unlock(\(key))").scalar(Bool.self)
    }

    /// Takes a lock that the current transaction releases when it ends.
    public func advisoryTransactionLock(_ key: Int64) async throws {
        try await query("SELECT pg_advisory_xact_lock(\(key))")
    }
}

/// Stable 64-bit keys for advisory locks, the same on every machine and Swift version
/// (FNV-1a over UTF-8; `hashValue` is seeded per process and would not do).
public enum AdvisoryLockKey {
    public static func key(_ namespace: String, _ name: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in namespace.utf8 + [0] + name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return Int64(bitPattern: hash)
    }
}
