import Testing

@testable import TearsheetSyncCore

@Suite struct WriteSharesTests {
    @Test func theWritesAreSplitOverTheSessionsCreatingAndEachKeepsAtLeastOne() {
        let shares = WriteShares(total: 128)
        shares.join()
        #expect(shares.share(atMost: 16) == 16, "alone, a session is held to its own limit")
        #expect(shares.share(atMost: 500) == 128)
        for _ in 1..<20 { shares.join() }
        #expect(shares.share(atMost: 16) == 6)
        for _ in 20..<200 { shares.join() }
        #expect(shares.share(atMost: 16) == 1, "however many sessions create, each may have one")
        for _ in 1..<200 { shares.leave() }
        #expect(shares.share(atMost: 16) == 16, "a session that leaves gives its share back")
    }
}
