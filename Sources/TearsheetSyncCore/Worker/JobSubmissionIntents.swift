import Foundation
import PostgresClient

/// A (candidate, job) whose Bullhorn JobSubmission a worker is about to find or create.
struct CandidateJob: Hashable, Sendable {
    let candidateID: Int64
    let jobID: Int64
}

/// The `job_submission_intents` rows of one integration: written before any JobSubmission is
/// created, completed with its id afterwards. A pending intent means "a JobSubmission may
/// exist in Bullhorn already: search before creating".
struct JobSubmissionIntents: Sendable {
    let pool: PostgresPool
    let integrationID: String

    /// Records an intent for each key (keeping existing ones); returns the application ids
    /// already known, by job the candidates whose intent is still pending, and those pending
    /// whose last creation had an unknown outcome, with when.
    func open(_ keys: [CandidateJob]) async throws -> (known: [CandidateJob: Int64], pendingByJob: [Int64: [Int64]], uncertainSince: [CandidateJob: Date]) {
        let candidates = keys.map(\.candidateID)
        let jobs = keys.map(\.jobID)
        try await pool.query(
            """
            INSERT INTO job_submission_intents (integration_id, ats_candidate_id, ats_job_id)
            SELECT \(integrationID), * FROM unnest(\(candidates)::bigint[], \(jobs)::bigint[])
            ON CONFLICT DO NOTHING
            """)
        var known: [CandidateJob: Int64] = [:]
        var pendingByJob: [Int64: [Int64]] = [:]
        var uncertainSince: [CandidateJob: Date] = [:]
        for row in try await pool.query(
            """
            SELECT i.ats_candidate_id, i.ats_job_id, i.ats_application_id, i.uncertain_since
              FROM job_submission_intents i
              JOIN unnest(\(candidates)::bigint[], \(jobs)::bigint[]) AS k(c, j) ON i.ats_candidate_id = k.c AND i.ats_job_id = k.j
             WHERE i.integration_id = \(integrationID)
            """
        ).rows {
            let key = CandidateJob(candidateID: try row.decode(at: 0), jobID: try row.decode(at: 1))
            if let application = try row.decode(at: 2, as: Int64?.self) {
                known[key] = application
            } else {
                pendingByJob[key.jobID, default: []].append(key.candidateID)
                uncertainSince[key] = try row.decode(at: 3, as: Date?.self)
            }
        }
        return (known, pendingByJob, uncertainSince)
    }

    /// Records that these creations' outcome is unknown (Bullhorn may still apply them).
    func markUncertain(_ keys: [CandidateJob]) async throws {
        guard !keys.isEmpty else { return }
        try await pool.query(
            """
            UPDATE job_submission_intents i SET uncertain_since = now()
              FROM unnest(\(keys.map(\.candidateID))::bigint[], \(keys.map(\.jobID))::bigint[]) AS u(c, j)
             WHERE i.integration_id = \(integrationID) AND i.ats_candidate_id = u.c AND i.ats_job_id = u.j
            """)
    }

    /// Completes intents with the JobSubmission ids found or created, in one statement.
    func complete(_ applications: [CandidateJob: Int64]) async throws {
        guard !applications.isEmpty else { return }
        let entries = Array(applications)
        try await pool.query(
            """
            UPDATE job_submission_intents i SET ats_application_id = u.app, completed_at = now()
              FROM unnest(\(entries.map(\.key.candidateID))::bigint[], \(entries.map(\.key.jobID))::bigint[],
                          \(entries.map(\.value))::bigint[]) AS u(c, j, app)
             WHERE i.integration_id = \(integrationID) AND i.ats_candidate_id = u.c AND i.ats_job_id = u.j
            """)
    }
}
