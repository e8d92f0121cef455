@testable import AMQPClient
import Testing

@Suite struct RecurringStringsTests {
    private func storage(_ string: String) -> UnsafeRawPointer? {
        var string = string
        return string.withUTF8 { UnsafeRawPointer($0.baseAddress) }
    }

    private func decode(_ text: String, with strings: inout RecurringStrings) -> String {
        Array(text.utf8).withUnsafeBytes { strings.string($0) }
    }

    @Test func aStringSeenBeforeIsTheSameStorageAndEqualToWhatWasRead() {
        var strings = RecurringStrings()
        let tag = "amq.ctag-9rHm0Bq1Yp3k2mFv2f5X1Q"
        let first = decode(tag, with: &strings)
        let second = decode(tag, with: &strings)
        let other = decode("amq.ctag-9rHm0Bq1Yp3k2mFv2f5X1R", with: &strings)
        #expect(first == tag && second == tag)
        #expect(storage(first) == storage(second), "one allocation for both")
        #expect(other == "amq.ctag-9rHm0Bq1Yp3k2mFv2f5X1R")
        #expect(storage(other) != storage(first))
        #expect(strings.count == 2)
    }

    @Test func shortStringsAreNotKeptAndTheTableStaysWithinItsCapacity() {
        var strings = RecurringStrings(capacity: 8)
        #expect(decode("tearsheet.pairs", with: &strings) == "tearsheet.pairs")
        #expect(strings.count == 0, "15 bytes live inside the String value")
        for index in 0..<20 {
            #expect(decode("integration-\(index)-0000000000", with: &strings) == "integration-\(index)-0000000000")
            #expect(strings.count <= 8)
        }
        var none = RecurringStrings(capacity: 0)
        #expect(decode("application/json", with: &none) == "application/json")
        #expect(none.count == 0)
    }
}
