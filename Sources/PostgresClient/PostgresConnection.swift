import Blocking
import CLibPQ
import Foundation

/// One libpq connection, confined to its own thread.
///
/// Every libpq call is blocking, so each connection owns a `DedicatedThread` and every call
/// hops onto it: the cooperative pool never waits on the network. Statements on one
/// connection run one at a time, in order.
public final class PostgresConnection: @unchecked Sendable {
    // `handle` is touched only on `thread`, which is what makes the @unchecked Sendable sound.
    private let thread: DedicatedThread
    private var handle: OpaquePointer?
    private let deadline: AnswerDeadline?
    let prepared = PreparedStatements()

    private init(thread: DedicatedThread, handle: OpaquePointer, answerDeadline: Duration?) {
        self.thread = thread
        self.handle = handle
        self.deadline = answerDeadline.map(AnswerDeadline.init)
    }

    /// TCP keepalives on both ends of every connection, so that a peer that vanished (a host
    /// powered off, a route dropped) is noticed within about 40 s instead of the kernel's two
    /// hours: above all by the server, which otherwise keeps a dead worker's advisory locks,
    /// and with them its sessions, that long. `tcp_user_timeout` bounds unacknowledged sends.
    /// The caller's connection string may set the client side otherwise.
    static let clientKeepalives: KeyValuePairs = [
        "keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5", "keepalives_count": "3",
        "tcp_user_timeout": "40000",
    ]
    static let serverKeepalives = [
        "SET tcp_keepalives_idle = 10", "SET tcp_keepalives_interval = 5", "SET tcp_keepalives_count = 3",
        "SET tcp_user_timeout = 40000",
    ]

    /// Opens a connection from a libpq URI (`postgresql://…`) or conninfo (`host=… dbname=…`);
    /// `sslmode` and every other libpq setting in it are honoured. The session runs in UTC with
    /// ISO dates, which is what the row decoder expects.
    ///
    /// With `answerDeadline`, a call that gets no answer in that time breaks the connection
    /// and fails (see `AnswerDeadline`): for connections whose holder must notice a silent
    /// server within seconds, like a worker's lease session. The server also ends its own
    /// statements at that limit (`statement_timeout`).
    public static func connect(
        _ connectionString: String, applicationName: String = "tearsheet-sync", answerDeadline: Duration? = nil
    ) async throws -> PostgresConnection {
        let thread = DedicatedThread(name: "libpq")  // not "postgres": the server's processes are, in `top` and perf
        do {
            let handle = try await thread.run { () throws -> UncheckedHandle in
                UncheckedHandle(try openHandle(connectionString, applicationName: applicationName))
            }
            let connection = PostgresConnection(thread: thread, handle: handle.pointer, answerDeadline: answerDeadline)
            var settings = ["SET TimeZone = 'UTC'", "SET DateStyle = 'ISO, YMD'"] + serverKeepalives
            if let answerDeadline {
                settings.append("SET statement_timeout = \(answerDeadline.milliseconds)")
            }
            try await connection.executeScript(unsafeSQL: settings.joined(separator: "; "))
            return connection
        } catch {
            thread.stop()
            throw error
        }
    }

    /// Runs one statement with bound parameters and returns its rows.
    @discardableResult
    public func query(_ query: PostgresQuery) async throws -> PostgresResult {
        try await run { [prepared] handle in try Self.execute(handle, query, prepared: prepared) }
    }

    /// Runs several statements separated by `;` with no parameters (migrations, DDL).
    public func executeScript(unsafeSQL sql: String) async throws {
        try await run { handle in
            guard let result = PQexec(handle, sql) else {
                throw Self.connectionError(handle)
            }
            defer { PQclear(result) }
            try Self.check(result, handle)
        }
    }

    /// Runs `body` inside BEGIN … COMMIT; any error rolls back and is rethrown.
    @discardableResult
    public func withTransaction<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await query("BEGIN")
        let value: T
        do {
            value = try await body(self)
        } catch {
            _ = try? await query("ROLLBACK")
            throw error
        }
        try await query("COMMIT")
        return value
    }

    /// Streams rows into `COPY table (columns) FROM STDIN` in text format. `rows` holds one
    /// array of column values per row (nil is NULL). The fastest way in for plain inserts.
    @discardableResult
    public func copyIn(unsafeSQL copyStatement: String, rows: [[String?]]) async throws -> Int {
        try await run { handle in
            guard let start = PQexec(handle, copyStatement) else { throw Self.connectionError(handle) }
            let status = PQresultStatus(start)
            if status != PGRES_COPY_IN {
                defer { PQclear(start) }
                try Self.check(start, handle)
                throw PostgresError(.server, "COPY did not enter COPY IN mode")
            }
            PQclear(start)
            var chunk = [UInt8]()
            chunk.reserveCapacity(1 << 16)
            var failure: PostgresError?
            func flush() {
                guard failure == nil, !chunk.isEmpty else { return }
                let sent = chunk.withUnsafeBufferPointer { buffer in
                    buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
                        PQputCopyData(handle, $0, Int32(buffer.count))
                    }
                }
                if sent != 1 { failure = Self.connectionError(handle) }
                chunk.removeAll(keepingCapacity: true)
            }
            for row in rows {
                CopyTextFormat.append(row: row, to: &chunk)
                if chunk.count >= 1 << 16 { flush() }
            }
            flush()
            if PQputCopyEnd(handle, failure == nil ? nil : "client error") != 1 {
                throw Self.connectionError(handle)
            }
            var affected = 0
            while let result = PQgetResult(handle) {
                defer { PQclear(result) }
                try Self.check(result, handle)
                affected += Int(String(cString: PQcmdTuples(result))) ?? 0
            }
            if let failure { throw failure }
            return affected
        }
    }

    /// True when libpq reports the connection as broken; the pool then drops it.
    public var isBroken: Bool {
        get async {
            (try? await run { handle in PQstatus(handle) != CONNECTION_OK }) ?? true
        }
    }

    /// Closes the connection and ends its thread.
    public func close() async {
        _ = try? await thread.run { [self] in
            if let handle { PQfinish(handle) }
            handle = nil
        }
        thread.stop()
    }

    deinit {
        // A connection dropped without close(): finish it on its own thread.
        if let handle {
            let unchecked = UncheckedHandle(handle)
            thread.submit { PQfinish(unchecked.pointer) }
        }
        thread.stop()
    }

    // MARK: - On the connection's thread

    /// Runs `body` on the connection's thread, under the answer deadline if there is one;
    /// `extra` is time the call waits on purpose (for notifications).
    func run<T: Sendable>(extra: Duration = .zero, _ body: @escaping @Sendable (OpaquePointer) throws -> T) async throws -> T {
        try await thread.run { [self] in
            guard let handle else { throw PostgresError(.closed, "the connection is closed") }
            guard let deadline else { return try body(handle) }
            return try deadline.watch(socket: PQsocket(handle), extra: extra) { try body(handle) }
        }
    }

    private static func openHandle(_ connectionString: String, applicationName: String) throws -> OpaquePointer {
        // Keywords are applied in order: our connect_timeout comes first so that the caller's
        // string may override it; fallback_application_name never overrides theirs.
        let keywords = ["connect_timeout"] + clientKeepalives.map(\.key) + ["dbname", "fallback_application_name"]
        let values = ["10"] + clientKeepalives.map(\.value) + [connectionString, applicationName]
        let handle = withCStringArray(keywords) { keywordPointers in
            withCStringArray(values) { valuePointers in
                PQconnectdbParams(keywordPointers, valuePointers, 1)
            }
        }
        guard let handle else { throw PostgresError(.connection, "out of memory opening a connection") }
        if PQstatus(handle) != CONNECTION_OK {
            let error = connectionError(handle)
            PQfinish(handle)
            throw error
        }
        // libpq prints server notices ("relation already exists, skipping") to stderr by
        // default; they are not errors and would break the one-line output of commands.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        return handle
    }

    static func execute(_ handle: OpaquePointer, _ query: PostgresQuery, prepared: PreparedStatements) throws -> PostgresResult {
        let binds = query.binds
        let count = binds.count
        var types = [UInt32](repeating: 0, count: count)
        var lengths = [Int32](repeating: 0, count: count)
        let formats = [Int32](repeating: 1, count: count)
        // One contiguous buffer for every parameter, so that the pointers stay valid together.
        var storage = [UInt8]()
        var offsets = [Int?](repeating: nil, count: count)
        for (index, bind) in binds.enumerated() {
            types[index] = bind.typeOID
            guard let bytes = bind.bytes else { continue }
            offsets[index] = storage.count
            lengths[index] = Int32(bytes.count)
            storage.append(contentsOf: bytes)
        }
        storage.append(0)  // never empty, so baseAddress is never nil
        let key = PreparedStatements.Key(sql: query.sql, types: types)
        var name = prepared.name(for: key)
        if name == nil, prepared.shouldPrepare(key) {
            // Its own round trip, once; a text the server refuses fails here as it would below.
            let next = prepared.nextName
            guard let preparation = PQprepare(handle, next, query.sql, Int32(count), types) else { throw connectionError(handle) }
            defer { PQclear(preparation) }
            try check(preparation, handle)
            prepared.prepared(key, as: next)
            name = next
        }
        let result = storage.withUnsafeBufferPointer { buffer -> OpaquePointer? in
            let base = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            let values: [UnsafePointer<CChar>?] = offsets.map { offset in offset.map { base + $0 } }
            if let name { return PQexecPrepared(handle, name, Int32(count), values, lengths, formats, 0) }
            return PQexecParams(handle, query.sql, Int32(count), types, values, lengths, formats, 0)
        }
        guard let result else { throw connectionError(handle) }
        defer { PQclear(result) }
        do {
            try check(result, handle)
        } catch let error as PostgresError where error.sqlState == Self.noSuchPreparedStatement && name != nil {
            // The session lost its prepared statements (a `DISCARD ALL`): each text is
            // prepared again when next seen twice. Outside a transaction nothing was spoilt,
            // so this one runs again, unprepared; inside one, the transaction has failed.
            prepared.forgetAll()
            guard PQtransactionStatus(handle) == PQTRANS_IDLE else { throw error }
            return try execute(handle, query, prepared: prepared)
        }
        return readRows(result)
    }

    /// SQLSTATE 26000, invalid_sql_statement_name: the session lost its prepared statements.
    static let noSuchPreparedStatement = "26000"

    private static func readRows(_ result: OpaquePointer) -> PostgresResult {
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        let names = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        var rows = [PostgresRow]()
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values = [String?]()
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(PostgresRow(columnNames: names, values: values))
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresResult(rows: rows, affectedRows: affected)
    }

    private static func check(_ result: OpaquePointer, _ handle: OpaquePointer) throws {
        let status = PQresultStatus(result)
        if status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY {
            return
        }
        if PQstatus(handle) != CONNECTION_OK { throw connectionError(handle) }
        let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
        throw PostgresError(.server, primary ?? "statement failed", sqlState: sqlState)
    }

    static func connectionError(_ handle: OpaquePointer) -> PostgresError {
        let raw = PQerrorMessage(handle).map { String(cString: $0) } ?? "unknown error"
        let oneLine = raw.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: " ")
        return PostgresError(.connection, oneLine.isEmpty ? "connection failed" : oneLine)
    }
}

/// Carries a C handle across the hop onto its own thread.
struct UncheckedHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

private func withCStringArray<R>(_ strings: [String], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let duplicates = strings.map { strdup($0) }
    defer { duplicates.forEach { free($0) } }
    return body(duplicates.map { UnsafePointer($0) } + [nil])
}
