import WaitingLine

/// A small pool of connections to one database.
///
/// Connections open lazily up to `maxConnections`; callers beyond that wait in line. A
/// connection that broke while leased is dropped and its slot passed on, never handed out again.
/// A caller whose task is cancelled while it waits leaves the line.
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
    private let line: WaitingLine<State, Grant>

    public init(connectionString: String, maxConnections: Int = 4, applicationName: String = "tearsheet-sync") {
        precondition(maxConnections > 0, "a pool needs at least one connection")
        self.connectionString = connectionString
        self.maxConnections = maxConnections
        self.applicationName = applicationName
        self.line = WaitingLine(State(maxConnections: maxConnections))
    }

    /// Leases a connection for the duration of `body`.
    @discardableResult
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
    @discardableResult
    public func withTransaction<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in try await connection.withTransaction(body) }
    }

    /// Runs one statement on any connection.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresResult {
        try await withConnection { try await $0.query(query) }
    }

    /// Opens connections until `count` (at most `maxConnections`) are open, all at once, and
    /// leaves them idle: a command whose first statements run side by side does not open their
    /// connections one handshake after another (about 6 ms each with TLS, on this machine).
    /// Throws the first failure; the connections that did open stay in the pool.
    public func warm(_ count: Int) async throws {
        let results = await withTaskGroup(of: Result<PostgresConnection, any Error>.self) { group in
            for _ in 0..<min(count, maxConnections) {
                group.addTask {
                    do { return .success(try await self.lease()) } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        // Given back only once every one is open: given back earlier, one would be leased
        // again by the next task instead of a new one opening.
        for case .success(let connection) in results { await giveBack(connection) }
        for case .failure(let error) in results { throw error }
    }

    /// Closes idle connections and refuses new leases; leased ones close when given back.
    public func close() async {
        let (idle, waiters) = line.withLock { state, waiters in
            state.closed = true
            defer {
                state.open -= state.idle.count
                state.idle = []
            }
            return (state.idle, waiters.all())
        }
        waiters.forEach { $0.resume(.closed) }
        for connection in idle { await connection.close() }
    }

    private func lease() async throws -> PostgresConnection {
        switch try await line.take({ $0.grant() }) {
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
        let (waiter, closeIt) = line.withLock { state, waiters -> (WaitingLine<State, Grant>.Waiter?, Bool) in
            if state.closed {
                state.open -= 1
                return (nil, true)
            }
            if let next = waiters.next() { return (next, false) }
            state.idle.append(connection)
            return (nil, false)
        }
        if closeIt { await connection.close() }
        waiter?.resume(.connection(connection))
    }

    /// Frees the slot of a connection that is gone; the first waiter, if any, may open anew.
    private func releaseSlot() {
        let waiter = line.withLock { state, waiters -> WaitingLine<State, Grant>.Waiter? in
            if !state.closed, let next = waiters.next() { return next }
            state.open -= 1
            return nil
        }
        waiter?.resume(.openSlot)
    }
}
