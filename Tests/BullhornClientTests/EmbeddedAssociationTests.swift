import Foundation
import Testing

@testable import BullhornClient

/// A tearsheet's to-many fields, as Bullhorn embeds them: complete only when they say so.
@Suite struct EmbeddedAssociationTests {
    private func tearsheet(jobOrders: String, candidates: String) throws -> BullhornTearsheet {
        let json = #"{"id":1,"isPrivate":false,"isDeleted":false,"dateLastModified":1,"jobOrders":\#(jobOrders),"candidates":\#(candidates)}"#
        return try BullhornJSON.decode(Array(json.utf8), endpoint: "test", as: TearsheetRecord.self).model
    }

    @Test func allRecordsWithTheirTotalAreComplete() throws {
        let decoded = try tearsheet(jobOrders: #"{"total":2,"data":[{"id":7},{"id":8}]}"#, candidates: #"{"total":0,"data":[]}"#)
        #expect(decoded.jobOrders == .complete([7, 8]))
        #expect(decoded.candidates == .complete([]))
    }

    @Test func moreThanEmbeddedIsTruncatedWithItsTotal() throws {
        let five = (1...5).map { #"{"id":\#($0)}"# }.joined(separator: ",")
        let decoded = try tearsheet(jobOrders: #"{"total":6,"data":[\#(five)]}"#, candidates: #"{"total":812,"data":[\#(five)]}"#)
        #expect(decoded.jobOrders == .truncated(total: 6))
        #expect(decoded.candidates == .truncated(total: 812))
    }

    @Test func aTotalThatContradictsTheRecordsOrIsMissingIsNotTrusted() throws {
        // Bullhorn saying 3 with 2 records (or 1 with 2): read the association instead.
        let decoded = try tearsheet(jobOrders: #"{"total":3,"data":[{"id":7},{"id":8}]}"#, candidates: #"{"total":1,"data":[{"id":5},{"id":6}]}"#)
        #expect(decoded.jobOrders == .truncated(total: 3))
        #expect(decoded.candidates == .truncated(total: 1))
        let untotalled = try tearsheet(jobOrders: #"{"data":[{"id":7}]}"#, candidates: "null")
        #expect(untotalled.jobOrders == .unknown)
        #expect(untotalled.candidates == .unknown)
    }
}
