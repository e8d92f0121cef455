/// Deterministic activity over time, for the demo and soak runs: recruiters adding candidates
/// to hotlists and, now and then, deleting one.
extension BullhornWorld {
    public struct MutationSummary: Sendable, Equatable {
        public var membersAdded = 0
        public var tearsheetsDeleted: [Int64] = []
    }

    /// Applies step `step` of the seeded mutation schedule: the same seed and step always make
    /// the same change.
    @discardableResult
    public func mutate(step: Int, seed: UInt64 = 42, at millis: Int64? = nil) -> MutationSummary {
        var rng = SplitMix64(seed: seed &+ UInt64(step) &* 0x9e37_79b9)
        let live = tearsheets.filter { !$0.isDeleted && !$0.isPrivate }
        let candidates = candidateIDs
        var summary = MutationSummary()
        guard !live.isEmpty, !candidates.isEmpty else { return summary }
        for _ in 0..<3 {
            let tearsheet = live.randomElement(using: &rng)!
            let additions = (0..<Int.random(in: 1...25, using: &rng)).map { _ in candidates.randomElement(using: &rng)! }
            let before = self.tearsheet(tearsheet.id)?.members.count ?? 0
            addMembers(additions, to: tearsheet.id, at: millis)
            summary.membersAdded += (self.tearsheet(tearsheet.id)?.members.count ?? 0) - before
        }
        if step % 10 == 9, live.count > 1 {
            let doomed = live.randomElement(using: &rng)!
            updateTearsheet(doomed.id, at: millis) { $0.isDeleted = true }
            summary.tearsheetsDeleted.append(doomed.id)
        }
        return summary
    }
}

extension BullhornWorld {
    /// From now on, creating a JobSubmission for any of these candidates fails and creates
    /// nothing: 400 with a validation error, as Bullhorn answers a record that breaks one of the
    /// agency's field rules (a required custom field, a blocked candidate status); or another
    /// status (a 500 that one record's trigger keeps raising).
    public func refuseJobSubmissions(forCandidates candidates: Set<Int64>, status: Int = 400) {
        state.withLock { state in
            for candidate in candidates { state.refusedSubmissionCandidates[candidate] = status }
        }
    }

    /// The next `count` writes (PUTs) are held for `delay` and then applied: with a delay past
    /// the client's timeout, the client never learns that they landed.
    public func delayNextWrites(count: Int, by delay: Duration) {
        state.withLock { $0.lateWrites = (count, delay) }
    }

    func takeLateWrite() -> Duration? {
        state.withLock { state in
            guard state.lateWrites.count > 0 else { return nil }
            state.lateWrites.count -= 1
            state.served("late write")
            return state.lateWrites.delay
        }
    }

    func jobSubmissionRefusal(forCandidate candidate: Int64) -> Int? {
        state.withLock { state in
            let status = state.refusedSubmissionCandidates[candidate]
            if status != nil { state.served("refused JobSubmission") }
            return status
        }
    }
}
