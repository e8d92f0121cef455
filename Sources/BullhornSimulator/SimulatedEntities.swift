/// The records the simulated Bullhorn holds. Dates are epoch milliseconds, as on the wire.
public struct SimulatedCandidate: Sendable, Equatable {
    public var id: Int64
    public var firstName: String
    public var lastName: String
    public var email: String
    public var phone: String
    public var mobile: String
    public var city: String
    public var state: String
    public var zip: String
    public var countryID: Int
    public var occupation: String
    public var companyName: String
    public var status: String
    public var ownerID: Int64
    public var dateLastModified: Int64
    public var isDeleted: Bool
    public var salary: Double
}

public struct SimulatedTearsheetMember: Sendable, Equatable {
    public var id: Int64
    public var candidateID: Int64
    public var dateAdded: Int64
}

public struct SimulatedTearsheet: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var isPrivate: Bool
    public var isDeleted: Bool
    public var ownerID: Int64
    public var dateAdded: Int64
    public var dateLastModified: Int64
    public var members: [SimulatedTearsheetMember]
    public var jobOrderIDs: [Int64]
}

public struct SimulatedJobSubmission: Sendable, Equatable {
    public var id: Int64
    public var candidateID: Int64
    public var jobOrderID: Int64
    public var status: String
    public var source: String
    public var dateAdded: Int64
    public var isDeleted: Bool
}

/// Owners (CorporateUser) of candidates and tearsheets.
public struct SimulatedUser: Sendable, Equatable {
    public var id: Int64
    public var firstName: String
    public var lastName: String
}
