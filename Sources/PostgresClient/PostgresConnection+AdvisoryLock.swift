import StableHashing

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

    /// The (single 64-bit) advisory-lock keys any session of this database holds now: whose
    /// lease is taken. `pg_locks` covers the whole server, so other databases' locks (another
    /// deployment, parallel tests) are left out.
    public func heldAdvisoryLocks() async throws -> Set<Int64> {
        let rows = try await query(
            """
            SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
             WHERE locktype = 'advisory' AND objsubid = 1 AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        ).rows
        return Set(try rows.map { try $0.decode(at: 0, as: Int64.self) })
    }

    /// Ends every other session of this database that holds `key`, waiting up to 5 s for each
    /// to go; returns how many ended. For a lock only one's own earlier session can hold (a
    /// connection that went silent, which the server still thinks alive).
    @discardableResult
    public func terminateOtherHolders(of key: Int64) async throws -> Int {
        try await query(
            """
            SELECT count(*) FROM (
              SELECT pg_terminate_backend(pid, 5000) AS ended FROM pg_locks
               WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid <> pg_backend_pid()
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND ((classid::bigint << 32) | objid::bigint) = \(key)
            ) AS holders WHERE ended
            """
        ).scalar(Int.self)
    }

    /// Takes a lock that the current transaction releases when it ends.
    public func advisoryTransactionLock(_ key: Int64) async throws {
        try await query("SELECT pg_advisory_xact_lock(\(key))")
    }
}

/// Stable 64-bit keys for advisory locks, the same on every machine and Swift version:
/// FNV-1a over `namespace`, a NUL separator, and `name`.
public enum AdvisoryLockKey {
    public static func key(_ namespace: String, _ name: String) -> Int64 {
        Int64(bitPattern: FNV1a.hash(namespace.utf8 + [0] + name.utf8))
    }
}
