import Foundation
import TearsheetSyncCore
import PostgresClient

/// Rows into a (campaign, candidate) table: one autocommit INSERT per row, 500 rows per
/// `INSERT … SELECT unnest(…)`, and COPY, through the project's PostgreSQL layer, next to the
/// same three shapes in plain C (Benchmarks/baseline/pg_limit.c).
struct PostgresBenchmark {
    let options: BenchmarkOptions

    private var singleRows: Int { max(options.rows / 50, 1000) }

    func run(into report: inout BenchmarkReport) async throws {
        let baseline = try baselineFigures()
        let connection = try await PostgresConnection.connect(options.databaseURL)
        let table = "tearsheet_bench_\(ProcessInfo.processInfo.processIdentifier)"
        try await connection.executeScript(
            unsafeSQL: "CREATE TABLE \(table) (campaign_id bigint, candidate_id bigint, source text, PRIMARY KEY (campaign_id, candidate_id))")

        var start = ContinuousClock.now
        for index in 0..<singleRows {
            try await connection.query(
                "INSERT INTO \(unescaped: table) VALUES (\(Int64(index % 7)), \(Int64(index)), \("TEARSHEETS")) ON CONFLICT DO NOTHING")
        }
        report.add("postgres 1 row per statement", ours: Double(singleRows) / (ContinuousClock.now - start).timeInterval, baseline: baseline["single_rows_per_s"], unit: "rows/s")
        try await connection.executeScript(unsafeSQL: "TRUNCATE \(table)")

        start = ContinuousClock.now
        var offset = 0
        while offset < options.rows {
            let range = offset..<min(offset + 500, options.rows)
            let campaigns = range.map { Int64($0 % 7) }
            let candidates = range.map { Int64($0) }
            let sources = Array(repeating: "TEARSHEETS", count: range.count)
            try await connection.query(
                "INSERT INTO \(unescaped: table) SELECT * FROM unnest(\(campaigns)::bigint[], \(candidates)::bigint[], \(sources)::text[]) ON CONFLICT DO NOTHING")
            offset = range.upperBound
        }
        report.add("postgres 500 rows per unnest statement", ours: Double(options.rows) / (ContinuousClock.now - start).timeInterval, baseline: baseline["batch_rows_per_s"], unit: "rows/s")
        try await connection.executeScript(unsafeSQL: "TRUNCATE \(table)")

        let copyRows = options.rows * 5 / 2
        start = ContinuousClock.now
        let rows: [[String?]] = (0..<copyRows).map { ["\($0 % 7)", "\($0)", "TEARSHEETS"] }
        try await connection.copyIn(unsafeSQL: "COPY \(table) FROM STDIN", rows: rows)
        report.add("postgres COPY", ours: Double(copyRows) / (ContinuousClock.now - start).timeInterval, baseline: baseline["copy_rows_per_s"], unit: "rows/s")

        try await connection.executeScript(unsafeSQL: "DROP TABLE \(table)")
        await connection.close()
    }

    private func baselineFigures() throws -> [String: Double] {
        let binary = try BaselineProcess.compile("pg_limit", flags: "$(pkg-config --cflags libpq)", libraries: "$(pkg-config --libs libpq)")
        defer { try? FileManager.default.removeItem(atPath: binary) }
        var figures: [String: Double] = [:]
        figures.merge(BaselineProcess.run(binary, [options.databaseURL, "single", "\(singleRows)"])) { $1 }
        figures.merge(BaselineProcess.run(binary, [options.databaseURL, "batch", "\(options.rows)", "500"])) { $1 }
        figures.merge(BaselineProcess.run(binary, [options.databaseURL, "copy", "\(options.rows * 5 / 2)"])) { $1 }
        return figures
    }
}
