import Synchronization

/// A small pool of connections to one database.
///
/// Connections open lazily up to `maxConnections`; callers beyond that wait in line. A
/// connection that broke while leased is dropped and its slot passed on, never handed out again.
public final class PostgresPool: Sendable {
    /// What a caller gets from the pool: a connection, the right to open one, or a refusal.
    private enum Grant: Sendable {
        case connection(PostgresConnection)
        case openSlot
        case closed
    }

    private struct State {
        var idle: [PostgresConnection] = []
        var open = 0
        var waiters: [CheckedContinuation<Grant, Never>] = []
        var closed = false

        /// The grant for a new caller, or nil when it has to wait.
        mutating func grant() -> Grant? {
            if closed { return .closed }
            if let connection = idle.popLast() { return .connection(connection) }
            if open < maxConnections {
                open += 1
                return .openSlot
            }
            return nil
        }

        let maxConnections: Int
    }

    public let connectionString: String
    public let maxConnections: Int
    private let applicationName: String
    private let state: Mutex<State>

    public init(connectionString: String, maxConnections: Int = 4, applicationName: String = "tearsheet-sync") {
        precondition(maxConnections > 0, "a pool needs at least one connection")
        self.connectionString = connectionString
        self.maxConnections = maxConnections
        self.applicationName = applicationName
        self.state = Mutex(State(maxConnections: maxConnections))
    }

    /// Leases a connection for the duration of `body`.
    public func withConnection<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await lease()
        do {
            let value = try await body(connection)
            await giveBack(connection)
            return value
        } catch {
            await giveBack(connection)
            throw error
        }
    }

    /// Leases a connection and runs `body` in a transaction on it.
    public func withTransaction<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in try await connection.withTransaction(body) }
    }

    /// Runs one statement on any connection.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresResult {
        try await withConnection { try await $0.query(query) }
    }

    /// Closes idle connections and refuses new leases; leased ones close when given back.
    public func close() async {
        let (idle, waiters) = state.withLock { state in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
                state.waiters = []
            }
            return (state.idle, state.waiters)
        }
        waiters.forEach { $0.resume(returning: .closed) }
        for connection in idle { await connection.close() }
    }

    private func lease() async throws -> PostgresConnection {
        var grant = state.withLock { $0.grant() }
        if grant == nil {
            grant = await withCheckedContinuation { continuation in
                if let now = state.withLock({ state -> Grant? in
                    let now = state.grant()
                    if now == nil { state.waiters.append(continuation) }
                    return now
                }) {
                    continuation.resume(returning: now)
                }
            }
        }
        switch grant! {
        case .connection(let connection):
            return connection
        case .closed:
            throw PostgresError(.closed, "the connection pool is closed")
        case .openSlot:
            do {
                return try await PostgresConnection.connect(connectionString, applicationName: applicationName)
            } catch {
                releaseSlot()
                throw error
            }
        }
    }

    private func giveBack(_ connection: PostgresConnection) async {
        if await connection.isBroken {
            await connection.close()
            releaseSlot()
            return
        }
        let (waiter, closeIt) = state.withLock { state -> (CheckedContinuation<Grant, Never>?, Bool) in
            if state.closed {
                state.open -= 1
                return (nil, true)
            }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), false) }
            state.idle.append(connection)
            return (nil, false)
        }
        if closeIt { await connection.close() }
        waiter?.resume(returning: .connection(connection))
    }

    /// Frees the slot of a connection that is gone; the first waiter, if any, may open anew.
    private func releaseSlot() {
        let waiter = state.withLock { state -> CheckedContinuation<Grant, Never>? in
            if !state.closed, !state.waiters.isEmpty { return state.waiters.removeFirst() }
            state.open -= 1
            return nil
        }
        waiter?.resume(returning: .openSlot)
    }
}
