import Foundation

/// Entities as Bullhorn serialises them (`full`), and as flat paths for `where` (`flat`).
enum EntityRendering {
    static func flat(_ tearsheet: SimulatedTearsheet) -> [String: JPQLWhere.Value] {
        [
            "id": .int(tearsheet.id), "name": .string(tearsheet.name), "isPrivate": .bool(tearsheet.isPrivate),
            "isDeleted": .bool(tearsheet.isDeleted), "dateLastModified": .int(tearsheet.dateLastModified),
            "dateAdded": .int(tearsheet.dateAdded), "owner.id": .int(tearsheet.ownerID),
        ]
    }

    static func full(_ tearsheet: SimulatedTearsheet, world: BullhornWorld) -> [String: Any] {
        // To-many fields come truncated to 5, with the real total: clients must page instead.
        let owner = world.user(tearsheet.ownerID)
        return [
            "id": tearsheet.id, "name": tearsheet.name, "description": NSNull(), "isPrivate": tearsheet.isPrivate,
            "isDeleted": tearsheet.isDeleted, "isUserTearsheet": false,
            "owner": ["id": tearsheet.ownerID, "firstName": owner?.firstName ?? "", "lastName": owner?.lastName ?? ""],
            "dateAdded": tearsheet.dateAdded, "dateLastModified": tearsheet.dateLastModified,
            "candidates": ["total": tearsheet.members.count, "data": tearsheet.members.prefix(5).map { ["id": $0.candidateID] }],
            "jobOrders": ["total": tearsheet.jobOrderIDs.count, "data": tearsheet.jobOrderIDs.prefix(5).map { ["id": $0] }],
            "clientContacts": ["total": 0, "data": [Any]()], "recipients": ["total": 0, "data": [Any]()],
        ]
    }

    static func flat(_ member: SimulatedTearsheetMember, tearsheetID: Int64) -> [String: JPQLWhere.Value] {
        ["id": .int(member.id), "dateAdded": .int(member.dateAdded), "tearsheet.id": .int(tearsheetID), "person.id": .int(member.candidateID)]
    }

    static func full(_ member: SimulatedTearsheetMember, tearsheetID: Int64) -> [String: Any] {
        ["id": member.id, "dateAdded": member.dateAdded, "person": ["id": member.candidateID, "_subtype": "Candidate"], "tearsheet": ["id": tearsheetID]]
    }

    static func flat(_ submission: SimulatedJobSubmission) -> [String: JPQLWhere.Value] {
        [
            "id": .int(submission.id), "candidate.id": .int(submission.candidateID), "jobOrder.id": .int(submission.jobOrderID),
            "isDeleted": .bool(submission.isDeleted), "status": .string(submission.status), "dateAdded": .int(submission.dateAdded),
        ]
    }

    static func full(_ submission: SimulatedJobSubmission) -> [String: Any] {
        [
            "id": submission.id, "candidate": ["id": submission.candidateID], "jobOrder": ["id": submission.jobOrderID],
            "status": submission.status, "source": submission.source, "dateAdded": submission.dateAdded, "isDeleted": submission.isDeleted,
        ]
    }

    static func full(_ candidate: SimulatedCandidate, world: BullhornWorld) -> [String: Any] {
        let owner = world.user(candidate.ownerID)
        return [
            "id": candidate.id, "firstName": candidate.firstName, "lastName": candidate.lastName,
            "name": "\(candidate.firstName) \(candidate.lastName)", "email": candidate.email, "phone": candidate.phone,
            "mobile": candidate.mobile,
            "address": ["address1": "1 Main St", "address2": NSNull(), "city": candidate.city, "state": candidate.state, "zip": candidate.zip, "countryID": candidate.countryID],
            "occupation": candidate.occupation, "companyName": candidate.companyName, "status": candidate.status,
            "owner": ["id": candidate.ownerID, "firstName": owner?.firstName ?? "", "lastName": owner?.lastName ?? ""],
            "dateLastModified": candidate.dateLastModified, "isDeleted": candidate.isDeleted, "salary": candidate.salary,
            "hourlyRateLow": NSNull(), "dateAvailable": NSNull(), "employmentPreference": "Permanent",
        ]
    }
}

extension BullhornWorld {
    func user(_ id: Int64) -> SimulatedUser? {
        state.withLock { $0.users.first { $0.id == id } }
    }

    func candidates(_ ids: [Int64]) -> [SimulatedCandidate] {
        state.withLock { state in ids.compactMap { state.candidates[$0] } }
    }

    var tearsheetMembers: [(member: SimulatedTearsheetMember, tearsheetID: Int64)] {
        state.withLock { state in
            state.tearsheets.values.flatMap { tearsheet in tearsheet.members.map { ($0, tearsheet.id) } }
        }
    }

    /// Bullhorn accepts duplicates silently: so does the simulator.
    func createJobSubmission(candidate: Int64, jobOrder: Int64, status: String, source: String) -> Int64? {
        let now = nowMillis
        return state.withLock { state in
            guard state.candidates[candidate] != nil, state.jobOrderIDs.contains(jobOrder) else { return nil }
            let id = state.nextSubmissionID
            state.nextSubmissionID += 1
            state.submissions[id] = SimulatedJobSubmission(
                id: id, candidateID: candidate, jobOrderID: jobOrder, status: status, source: source, dateAdded: now, isDeleted: false)
            return id
        }
    }
}
