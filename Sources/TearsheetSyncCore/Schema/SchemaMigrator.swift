import PostgresClient

/// Applies `SchemaMigrations` in order, each exactly once.
///
/// Safe when several processes migrate at once (every replica running `migrate` on deploy):
/// one transaction holds a transaction-level advisory lock for the whole run, so a second
/// migrator waits, then finds the work done. A failed migration rolls back entirely.
public struct SchemaMigrator: Sendable {
    public static let lockKey = AdvisoryLockKey.key("tearsheet-sync", "schema-migrations")
    private let migrations: [SchemaMigrations.Migration]

    public init(migrations: [SchemaMigrations.Migration] = SchemaMigrations.all) {
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    /// Returns the versions this call applied (empty when the schema was already current).
    @discardableResult
    public func migrate(_ connection: PostgresConnection) async throws -> [Int] {
        try await connection.withTransaction { tx in
            try await tx.advisoryTransactionLock(Self.lockKey)
            try await tx.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = Set(try await tx.query("SELECT version FROM schema_migrations").rows.map { try $0.decode(at: 0, as: Int.self) })
            var newlyApplied: [Int] = []
            for migration in migrations where !applied.contains(migration.version) {
                try await tx.executeScript(unsafeSQL: migration.sql)
                try await tx.query("INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))")
                newlyApplied.append(migration.version)
            }
            return newlyApplied
        }
    }

    /// The schema version this build's code reads and writes: its last migration's.
    public static let requiredVersion = SchemaMigrations.all.map(\.version).max() ?? 0

    /// The highest applied version, or 0 on an empty database. One statement: every command's
    /// start reads it (`StartupConnections.check`); a missing table (42P01, undefined_table)
    /// is version 0. Not for use inside a transaction, which that error would abort.
    public func currentVersion(_ connection: PostgresConnection) async throws -> Int {
        do {
            return try await connection.query("SELECT coalesce(max(version), 0) FROM schema_migrations").scalar(Int.self)
        } catch let error as PostgresError where error.sqlState == "42P01" {
            return 0
        }
    }
}
