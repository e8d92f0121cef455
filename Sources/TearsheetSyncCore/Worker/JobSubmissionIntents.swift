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
    /// already known, and by job the candidates whose intent is still pending.
    func open(_ keys: [CandidateJob]) async throws -> (known: [CandidateJob: Int64], pendingByJob: [Int64: [Int64]]) {
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
        for row in try await pool.query(
            """
            SELECT i.ats_candidate_id, i.ats_job_id, i.ats_application_id
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
            }
        }
        return (known, pendingByJob)
    }

    /// Claims the right to create these JobSubmissions now, and returns the keys claimed.
    ///
    /// A claim stamps `uncertain_since` before the PUT is sent: until the creation is known to
    /// have failed (`release`) or to have succeeded (`complete`), its outcome is unknown, also
    /// to a worker that takes the pair over after a crash or while the first one is still
    /// waiting on Bullhorn. A key whose stamp is younger than `grace` is not claimed again,
    /// and the row lock makes two claimers take turns: one creation per intent at a time.
    func claim(_ keys: [CandidateJob], grace: Duration) async throws -> Set<CandidateJob> {
        guard !keys.isEmpty else { return [] }
        let rows = try await pool.query(
            """
            UPDATE job_submission_intents i SET uncertain_since = now()
              FROM unnest(\(keys.map(\.candidateID))::bigint[], \(keys.map(\.jobID))::bigint[]) AS u(c, j)
             WHERE i.integration_id = \(integrationID) AND i.ats_candidate_id = u.c AND i.ats_job_id = u.j
               AND i.ats_application_id IS NULL
               AND (i.uncertain_since IS NULL OR i.uncertain_since < now() - make_interval(secs => \(grace.timeInterval)))
            RETURNING i.ats_candidate_id, i.ats_job_id
            """
        ).rows
        return Set(try rows.map { CandidateJob(candidateID: try $0.decode(at: 0), jobID: try $0.decode(at: 1)) })
    }

    /// Gives claims back whose creation certainly did not happen (refused, throttled before
    /// any work, never connected): the next attempt need not wait.
    func release(_ keys: [CandidateJob]) async throws {
        guard !keys.isEmpty else { return }
        try await pool.query(
            """
            UPDATE job_submission_intents i SET uncertain_since = NULL
              FROM unnest(\(keys.map(\.candidateID))::bigint[], \(keys.map(\.jobID))::bigint[]) AS u(c, j)
             WHERE i.integration_id = \(integrationID) AND i.ats_candidate_id = u.c AND i.ats_job_id = u.j
               AND i.ats_application_id IS NULL
            """)
    }

    /// Restarts the grace of creations whose answer was lost (a timeout, a cut connection):
    /// Bullhorn may apply them for a while yet.
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
