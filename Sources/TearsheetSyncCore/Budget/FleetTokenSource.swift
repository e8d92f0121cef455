import BullhornClient
import PostgresClient

/// The Bullhorn call budget of one corporation, shared by every process of the fleet through
/// `bullhorn_budgets`: one token bucket row per corporation, leased a few tokens at a time
/// in one statement under the row's lock. Bullhorn's limit is the corporation's, whoever
/// calls: a publisher pass, the workers, `trace`, on any machine, together never spend more
/// than the limit in any minute.
///
/// The limit is read at each lease: the smallest `calls_per_minute` of the corporation's
/// integrations, so that `integration add --calls-per-minute` takes effect fleet-wide at once.
/// Tokens leased and not spent (a process killed) are lost, never spent twice: the fleet errs
/// below the limit, never above.
public struct FleetTokenSource: BullhornTokenSource {
    let pool: PostgresPool
    /// The corporation: integrations with the same key share one budget.
    public let budgetKey: String

    public init(pool: PostgresPool, budgetKey: String) {
        self.pool = pool
        self.budgetKey = budgetKey
    }

    public func take(upTo wanted: Int) async throws -> TokenGrant {
        // The bucket's shape is `TokenBucketShape`'s, computed here from the live limit:
        // capacity = max(1, floor(limit / 60)), rate = (limit − capacity) / 60 per second.
        let rows = try await pool.query(
            """
            WITH lim AS (
                SELECT min(calls_per_minute)::float8 AS per_minute
                  FROM integrations WHERE coalesce(corporation, id) = \(budgetKey)
            ), shape AS (
                SELECT greatest(1, floor(per_minute / 60)) AS capacity,
                       greatest(per_minute - greatest(1, floor(per_minute / 60)), 1) / 60 AS rate
                  FROM lim WHERE per_minute IS NOT NULL
            ), seeded AS (
                INSERT INTO bullhorn_budgets (budget_key, tokens, refilled_at)
                SELECT \(budgetKey), capacity, clock_timestamp() FROM shape
                ON CONFLICT (budget_key) DO NOTHING
            ), now_available AS (
                SELECT b.budget_key, shape.rate,
                       least(shape.capacity, b.tokens + extract(epoch FROM clock_timestamp() - b.refilled_at)::float8 * shape.rate) AS available
                  FROM bullhorn_budgets b, shape
                 WHERE b.budget_key = \(budgetKey)
                   FOR UPDATE OF b
            )
            UPDATE bullhorn_budgets b
               SET tokens = a.available - least(floor(a.available), \(wanted)), refilled_at = clock_timestamp()
              FROM now_available a
             WHERE b.budget_key = a.budget_key
            RETURNING least(floor(a.available), \(wanted))::int AS granted, a.available, a.rate
            """
        ).rows
        guard let row = rows.first else {
            // A first lease: the row was seeded by this statement (a CTE's insert is not
            // visible to its siblings), or the corporation has no integration left.
            let known = try await pool.query(
                "SELECT count(*)::int FROM integrations WHERE coalesce(corporation, id) = \(budgetKey)"
            ).scalar(Int.self)
            guard known > 0 else { throw ConfigurationError(setting: "integrations", "no integration has Bullhorn budget \(budgetKey)") }
            return TokenGrant(granted: 0, retryAfter: .zero)
        }
        let granted = try row.decode("granted", as: Int.self)
        let left = try row.decode("available", as: Double.self) - Double(granted)
        let rate = try row.decode("rate", as: Double.self)
        return TokenGrant(granted: granted, retryAfter: granted > 0 ? .zero : .seconds(max(1 - left, 0.001) / rate))
    }
}
