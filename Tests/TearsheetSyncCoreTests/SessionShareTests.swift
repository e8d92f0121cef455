import Testing

@testable import TearsheetSyncCore

@Suite struct SessionShareTests {
    private let start = ContinuousClock.now

    private func held(_ ids: String...) -> [String: ContinuousClock.Instant] {
        Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, start + .seconds($0)) })
    }

    @Test func aSessionWhoseDrainIsRecordedDoesNotPushAnotherOverTheShare() {
        // "a" has drained (the fleet's count, hence the share, no longer has it) but its
        // consumer has not ended yet: nothing is given back.
        #expect(SessionWorker.overShare(held("a", "b", "c"), withWork: ["b", "c"], share: 2).isEmpty)
    }

    @Test func overTheShareTheSessionsHeldLongestGoBack() {
        #expect(SessionWorker.overShare(held("a", "b", "c", "d"), withWork: ["a", "b", "c", "d"], share: 2) == ["a", "b"])
        #expect(SessionWorker.overShare(held("a", "b", "c", "d"), withWork: ["b", "c", "d"], share: 2) == ["b"])
        #expect(SessionWorker.overShare(held("a", "b"), withWork: ["a", "b"], share: 2).isEmpty)
    }
}
