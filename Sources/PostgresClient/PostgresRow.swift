/// One result row, decoded lazily from the server's text output.
public struct PostgresRow: Sendable {
    let columnNames: [String]
    let values: [String?]

    /// The value of `column`, decoded as `T` (use an Optional type for nullable columns).
    public func decode<T: PostgresDecodable>(_ column: String, as type: T.Type = T.self) throws -> T {
        guard let index = columnNames.firstIndex(of: column) else {
            throw PostgresError(.decoding, "no column \(column) in the result")
        }
        return try T.decode(postgresText: values[index], column: column)
    }

    /// The value at `index`, decoded as `T`.
    public func decode<T: PostgresDecodable>(at index: Int, as type: T.Type = T.self) throws -> T {
        guard values.indices.contains(index) else {
            throw PostgresError(.decoding, "no column at index \(index) in the result")
        }
        return try T.decode(postgresText: values[index], column: columnNames[index])
    }
}

/// The rows a statement returned, and how many rows it changed.
public struct PostgresResult: Sendable {
    public let rows: [PostgresRow]
    public let affectedRows: Int

    /// The first column of the first row, for `SELECT count(*)` and the like.
    public func scalar<T: PostgresDecodable>(_ type: T.Type = T.self) throws -> T {
        guard let row = rows.first else {
            throw PostgresError(.decoding, "the statement returned no row")
        }
        return try row.decode(at: 0, as: T.self)
    }
}
