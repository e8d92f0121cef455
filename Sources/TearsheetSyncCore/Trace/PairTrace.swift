import Foundation

/// Why a candidate is, or is not, on an integration's campaigns: what `trace` reports, from
/// what the fleet knows (its database, its queues) and what Bullhorn says now.
public struct PairTrace: Sendable, Codable {
    public let integrationID: String
    public let candidateID: Int64
    public let integration: IntegrationStore.Standing
    /// The candidate's tearsheets as Bullhorn reports them now.
    public let tearsheets: [Tearsheet]
    public let campaigns: [Campaign]
    public let session: Session?
    /// False when the dead-letter queue held more than `trace` reads: a dead letter of the
    /// candidate's may be among the rest.
    public let deadLettersReadInFull: Bool

    public struct Tearsheet: Sendable, Codable, Equatable {
        public let id: Int64
        public let name: String
        public let isPrivate: Bool
        public let isDeleted: Bool
        public let jobOrderIDs: [Int64]
        public let dateLastModified: Date
        public let memberAddedAt: Date
        /// The later of the two: the change that calls for the candidate's pairs.
        public var changedAt: Date { max(dateLastModified, memberAddedAt) }
    }

    public struct Campaign: Sendable, Codable {
        public let id: Int64
        public let jobID: Int64
        public let active: Bool
        public let row: CampaignStore.Row?
        public let deadLetter: DeadLetter?
        public let verdict: Verdict
        public let explanation: String
    }

    public struct DeadLetter: Sendable, Codable, Equatable {
        public let reason: String
        public let deadLetteredAt: Date?
    }

    /// The integration's session queue now, and the worker that holds it.
    public struct Session: Sendable, Codable, Equatable {
        public let queue: String
        public let ready: Int
        public let consumers: Int
        public let heldBy: String?
    }

    public enum Verdict: String, Sendable, Codable {
        case onCampaign = "on_campaign"
        case campaignInactive = "campaign_inactive"
        case integrationInactive = "integration_inactive"
        case notOnATearsheetOfTheJob = "not_on_a_tearsheet_of_the_job"
        case onlyPrivateOrDeletedTearsheets = "only_private_or_deleted_tearsheets"
        case deadLettered = "dead_lettered"
        case awaitingPublishPass = "awaiting_publish_pass"
        case queued
        /// Covered by the watermark, yet neither on the campaign nor waiting in its session: the
        /// campaign came (or came back) after the pass, or the message was lost.
        case coveredNotAdded = "covered_not_added"
    }
}
