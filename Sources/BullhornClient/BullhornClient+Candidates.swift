extension BullhornClient {
    /// The candidates with these ids, in as few multi-gets as the URL limit allows. Ids that
    /// do not exist are simply absent from the result (Bullhorn drops them silently).
    public func candidates(ids: [Int64]) async throws -> [BullhornCandidate] {
        try await multiGet(entity: "Candidate", ids: ids, fields: CandidateRecord.fields) { (record: CandidateRecord) in record.model }
    }
}
