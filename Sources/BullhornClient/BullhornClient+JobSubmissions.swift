import Foundation

extension BullhornClient {
    public static let submissionStatus = "New Lead"
    public static let submissionSource = "TEARSHEETS"

    /// Live JobSubmissions of `jobOrderID` for these candidates, as candidate id → submission
    /// id (the lowest, should Bullhorn hold duplicates). One query per few hundred candidates.
    public func findJobSubmissions(jobOrderID: Int64, candidateIDs: [Int64]) async throws -> [Int64: Int64] {
        var found: [Int64: Int64] = [:]
        for chunk in Self.chunks(of: candidateIDs, maxCharacters: 5_000) {
            let conditions = ["jobOrder.id = \(jobOrderID)", "candidate.id IN (\(chunk.map(String.init).joined(separator: ",")))", "isDeleted = false"]
            let pages = keysetQuery(entity: "JobSubmission", conditions: conditions, fields: "id,candidate(id)") { (record: SubmissionRecord) in
                (record.id, record)
            }
            for try await submission in pages where found[submission.candidate.id] == nil {
                found[submission.candidate.id] = submission.id
            }
        }
        return found
    }

    /// Creates a JobSubmission ("New Lead", source TEARSHEETS) and returns its id. Bullhorn
    /// accepts duplicates silently: call `findJobSubmissions` first. A `.ambiguousWrite`
    /// error means it may exist now: look again before creating again.
    public func createJobSubmission(candidateID: Int64, jobOrderID: Int64, at date: Date = Date()) async throws -> Int64 {
        let body = JobSubmissionCreation(
            candidate: .init(id: candidateID), jobOrder: .init(id: jobOrderID), status: Self.submissionStatus,
            source: Self.submissionSource, dateWebResponse: date.bullhornMillis)
        let json = try JSONEncoder().encode(body)
        let result: ChangeResult = try await put("entity/JobSubmission", json: Array(json), endpoint: "PUT entity/JobSubmission")
        return result.changedEntityId
    }
}

/// The body of a JobSubmission creation. Encoded by `JSONEncoder`, not `JSONSerialization`:
/// the latter sorts keys with an ICU collator, which brought ICU's collation code and data
/// (about 1 MiB resident) into every worker that creates one (found with `perf record -e
/// page-faults`).
struct JobSubmissionCreation: Encodable {
    struct Reference: Encodable { let id: Int64 }
    let candidate: Reference
    let jobOrder: Reference
    let status: String
    let source: String
    let dateWebResponse: Int64
}
