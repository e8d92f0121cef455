import Foundation

/// A tearsheet as the publisher needs it. Members and jobs are paged separately.
public struct BullhornTearsheet: Sendable, Equatable {
    public let id: Int64
    public let name: String
    public let isPrivate: Bool
    public let isDeleted: Bool
    public let dateLastModified: Date
    /// Its job orders and candidates as embedded in the tearsheet: complete (no association
    /// call needed) when `total` is within what Bullhorn embeds (5), else just the count.
    public var jobOrders: Embedded = .unknown
    public var candidates: Embedded = .unknown

    public init(id: Int64, name: String, isPrivate: Bool, isDeleted: Bool, dateLastModified: Date) {
        self.id = id
        self.name = name
        self.isPrivate = isPrivate
        self.isDeleted = isDeleted
        self.dateLastModified = dateLastModified
    }

    /// A to-many field as the entity carries it.
    public enum Embedded: Sendable, Equatable {
        /// Every id: `total` says nothing was left out.
        case complete([Int64])
        /// Truncated: this many in all, to be paged through the association.
        case truncated(total: Int)
        /// Not in the answer, or without its total.
        case unknown
    }
}

/// A candidate added to a tearsheet at `dateAdded`.
public struct BullhornMemberAddition: Sendable, Equatable {
    public let memberID: Int64
    public let tearsheetID: Int64
    /// The person added; nil when it is not a candidate (a client contact).
    public let candidateID: Int64?
    public let dateAdded: Date
}

/// The candidate fields the index keeps.
public struct BullhornCandidate: Sendable, Equatable {
    public let id: Int64
    public let firstName: String?
    public let lastName: String?
    public let name: String?
    public let email: String?
    public let phone: String?
    public let mobile: String?
    public let city: String?
    public let state: String?
    public let zip: String?
    public let countryID: Int?
    public let occupation: String?
    public let companyName: String?
    public let status: String?
    public let ownerID: Int64?
    public let ownerName: String?
    public let dateLastModified: Date?
    public let isDeleted: Bool
}

extension Date {
    /// Bullhorn dates are epoch milliseconds.
    init(bullhornMillis millis: Int64) {
        self.init(timeIntervalSince1970: Double(millis) / 1000)
    }

    var bullhornMillis: Int64 {
        Int64((timeIntervalSince1970 * 1000).rounded(.down))
    }
}

struct TearsheetRecord: Decodable {
    let id: Int64
    let name: String?
    let isPrivate: Bool
    let isDeleted: Bool
    let dateLastModified: Int64
    let jobOrders: ToMany?
    let candidates: ToMany?

    /// `{"total": N, "data": [{"id": …}, …]}`: at most five records, and how many there are.
    struct ToMany: Decodable {
        let total: Int?
        let data: [IDRef]

        var embedded: BullhornTearsheet.Embedded {
            guard let total else { return .unknown }
            // Complete only when every record came; a total below the records is Bullhorn
            // contradicting itself: read the association rather than trust either.
            return data.count == total ? .complete(data.map(\.id)) : .truncated(total: total)
        }
    }

    var model: BullhornTearsheet {
        var tearsheet = BullhornTearsheet(
            id: id, name: name ?? "", isPrivate: isPrivate, isDeleted: isDeleted, dateLastModified: Date(bullhornMillis: dateLastModified))
        tearsheet.jobOrders = jobOrders?.embedded ?? .unknown
        tearsheet.candidates = candidates?.embedded ?? .unknown
        return tearsheet
    }

    /// The job orders and candidates come embedded: a tearsheet with at most five of each
    /// needs no association call at all.
    static let fields = "id,name,isPrivate,isDeleted,dateLastModified,jobOrders(id),candidates(id)"
}

struct MemberRecord: Decodable {
    struct Person: Decodable {
        let id: Int64
        let _subtype: String?
    }

    static let fields = "id,dateAdded,tearsheet(id),person(id,_subtype)"

    let id: Int64
    let dateAdded: Int64
    let tearsheet: IDRef
    let person: Person?

    /// The member's candidate id; nil for a person who is not a candidate.
    var candidateID: Int64? {
        person.flatMap { ($0._subtype ?? "Candidate") == "Candidate" ? $0.id : nil }
    }
}

struct CandidateRecord: Decodable {
    struct Address: Decodable {
        let city: String?
        let state: String?
        let zip: String?
        let countryID: Int?
    }

    struct Owner: Decodable {
        let id: Int64?
        let firstName: String?
        let lastName: String?
    }

    let id: Int64
    let firstName: String?
    let lastName: String?
    let name: String?
    let email: String?
    let phone: String?
    let mobile: String?
    let address: Address?
    let occupation: String?
    let companyName: String?
    let status: String?
    let owner: Owner?
    let dateLastModified: Int64?
    let isDeleted: Bool?

    static let fields =
        "id,firstName,lastName,name,email,phone,mobile,address(city,state,zip,countryID),occupation,companyName,status,owner(id,firstName,lastName),dateLastModified,isDeleted"

    var model: BullhornCandidate {
        let ownerName = [owner?.firstName, owner?.lastName].compactMap { $0 }.joined(separator: " ")
        return BullhornCandidate(
            id: id, firstName: firstName, lastName: lastName, name: name, email: email, phone: phone, mobile: mobile,
            city: address?.city, state: address?.state, zip: address?.zip, countryID: address?.countryID,
            occupation: occupation, companyName: companyName, status: status, ownerID: owner?.id,
            ownerName: ownerName.isEmpty ? nil : ownerName, dateLastModified: dateLastModified.map(Date.init(bullhornMillis:)),
            isDeleted: isDeleted ?? false)
    }
}

struct SubmissionRecord: Decodable {
    let id: Int64
    let candidate: IDRef
}

struct ChangeResult: Decodable {
    let changedEntityId: Int64
    let changeType: String?
}
