import BullhornClient
import Foundation
import PostgresClient

/// The `candidates` table: which candidates need (re)indexing, and the batch upsert.
public struct CandidateIndex: Sendable {
    let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    /// Of `candidateIDs`, those missing from the index or indexed before `staleBefore`.
    public func needingIndex(integrationID: String, candidateIDs: [Int64], staleBefore: Date) async throws -> [Int64] {
        guard !candidateIDs.isEmpty else { return [] }
        let fresh = try await pool.query(
            """
            SELECT ats_candidate_id FROM candidates
             WHERE integration_id = \(integrationID) AND ats_candidate_id = ANY(\(candidateIDs)) AND indexed_at >= \(staleBefore)
            """
        ).rows.map { try $0.decode(at: 0, as: Int64.self) }
        let freshSet = Set(fresh)
        return Array(Set(candidateIDs).subtracting(freshSet)).sorted()
    }

    /// Bullhorn's text as PostgreSQL `text` can hold it: JSON may carry NUL (`\u0000`), which
    /// `text` refuses, and one such name would fail the statement, and with it the batch of
    /// every candidate indexed together. It becomes U+FFFD, as invalid UTF-8 already has.
    static func storable(_ text: String) -> String {
        text.contains("\u{0}") ? text.replacingOccurrences(of: "\u{0}", with: "\u{FFFD}") : text
    }

    /// Upserts Bullhorn's candidates in one statement.
    public func upsert(integrationID: String, _ candidates: [BullhornCandidate], at now: Date = Date()) async throws {
        guard !candidates.isEmpty else { return }
        try await pool.query(Self.upsertStatement(integrationID: integrationID, candidates, at: now))
    }

    /// Built outside the async function: an async function's frame holds every temporary of its
    /// body while it waits, and nineteen interpolated arrays made `upsert`'s 8 KiB, held by
    /// each session waiting on the database (1.5 MiB of a 200-session worker's peak).
    private static func upsertStatement(integrationID: String, _ candidates: [BullhornCandidate], at now: Date) -> PostgresQuery {
        func text(_ value: (BullhornCandidate) -> String?) -> PostgresNullableArray<String> {
            PostgresNullableArray(candidates.map { value($0).map(Self.storable) })
        }
        return """
            INSERT INTO candidates (integration_id, ats_candidate_id, first_name, last_name, name, email, phone, mobile,
                                    city, state, zip, occupation, company_name, status, owner_id, owner_name,
                                    is_deleted, ats_date_last_modified, indexed_at)
            SELECT \(integrationID), c.*, \(now)
              FROM unnest(\(candidates.map(\.id))::bigint[], \(text(\.firstName))::text[], \(text(\.lastName))::text[],
                          \(text(\.name))::text[], \(text(\.email))::text[], \(text(\.phone))::text[], \(text(\.mobile))::text[],
                          \(text(\.city))::text[], \(text(\.state))::text[], \(text(\.zip))::text[], \(text(\.occupation))::text[],
                          \(text(\.companyName))::text[], \(text(\.status))::text[],
                          \(PostgresNullableArray(candidates.map(\.ownerID)))::bigint[], \(text(\.ownerName))::text[],
                          \(candidates.map(\.isDeleted))::boolean[], \(PostgresNullableArray(candidates.map(\.dateLastModified)))::timestamptz[]) AS c
            ON CONFLICT (integration_id, ats_candidate_id) DO UPDATE SET
                first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name, name = EXCLUDED.name, email = EXCLUDED.email,
                phone = EXCLUDED.phone, mobile = EXCLUDED.mobile, city = EXCLUDED.city, state = EXCLUDED.state, zip = EXCLUDED.zip,
                occupation = EXCLUDED.occupation, company_name = EXCLUDED.company_name, status = EXCLUDED.status,
                owner_id = EXCLUDED.owner_id, owner_name = EXCLUDED.owner_name, is_deleted = EXCLUDED.is_deleted,
                ats_date_last_modified = EXCLUDED.ats_date_last_modified, indexed_at = EXCLUDED.indexed_at
            """
    }
}
