import Foundation
import Logging

/// What one integration's publisher pass did, for the one-line summary and the tests.
public struct PassSummary: Sendable, CustomStringConvertible {
    public enum Outcome: Sendable, Equatable {
        case succeeded
        /// Another publisher holds this integration's lock: it is doing the work.
        case skippedLocked
        case failed(String)
    }

    public let integrationID: String
    public var outcome: Outcome = .succeeded
    public var tearsheetsScanned = 0
    /// Re-read inside the overlap window with nothing new since the last pass.
    public var tearsheetsUnchanged = 0
    /// Private or deleted tearsheets reached through member additions.
    public var tearsheetsIgnored = 0
    public var tearsheetsWithoutCampaigns = 0
    public var pairsFound = 0
    public var pairsAlreadyOnCampaign = 0
    public var pairsPublished = 0
    public var newestChange: Date?
    public var watermarkAdvancedTo: Date?
    public var elapsed: Duration = .zero

    public init(integrationID: String) {
        self.integrationID = integrationID
    }

    public var isFailure: Bool {
        if case .failed = outcome { return true }
        return false
    }

    public var description: String {
        let seconds = String(format: "%.1fs", elapsed.timeInterval)
        switch outcome {
        case .skippedLocked:
            return "\(integrationID): skipped, another publisher is running this integration"
        case .failed(let reason):
            return "\(integrationID): FAILED after \(seconds), watermark unchanged: \(reason)"
        case .succeeded:
            let watermark = watermarkAdvancedTo.map { "watermark \($0.formatted(.iso8601))" } ?? "watermark unchanged (no changes)"
            return "\(integrationID): \(tearsheetsScanned) tearsheets, \(pairsFound) pairs, \(pairsAlreadyOnCampaign) already on campaign, \(pairsPublished) published in \(seconds); \(watermark)"
        }
    }

    /// The summary as log metadata, for JSON logs: one field a figure.
    public var metadata: Logger.Metadata {
        var fields: Logger.Metadata = [
            "integration": .string(integrationID), "elapsed_seconds": .stringConvertible(elapsed.timeInterval),
            "tearsheets_scanned": .stringConvertible(tearsheetsScanned), "pairs_found": .stringConvertible(pairsFound),
            "pairs_already_on_campaign": .stringConvertible(pairsAlreadyOnCampaign), "pairs_published": .stringConvertible(pairsPublished),
        ]
        switch outcome {
        case .succeeded: fields["outcome"] = "succeeded"
        case .skippedLocked: fields["outcome"] = "skipped_locked"
        case .failed(let reason):
            fields["outcome"] = "failed"
            fields["error"] = .string(reason)
        }
        if let watermarkAdvancedTo { fields["watermark"] = .string(watermarkAdvancedTo.formatted(.iso8601)) }
        return fields
    }
}
