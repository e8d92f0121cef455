import Foundation
import Synchronization

/// The simulated Bullhorn corporation: its records, its sessions, its fault schedule and the
/// counters tests read. Thread-safe; shared by the HTTP handlers and the test that drives it.
public final class BullhornWorld: Sendable {
    struct State {
        var users: [SimulatedUser] = []
        var candidates: [Int64: SimulatedCandidate] = [:]
        var jobOrderIDs: [Int64] = []
        var tearsheets: [Int64: SimulatedTearsheet] = [:]
        var submissions: [Int64: SimulatedJobSubmission] = [:]
        var nextSubmissionID: Int64 = 900_000
        var nextMemberID: Int64 = 5_000_000
        var nextTearsheetID: Int64 = 1
        var faults: SimulatorFaults
        var calls: [String: Int] = [:]
        var restCalls = 0
        var throttledRemaining = 0
        var logins = 0
        var clock: Int64?
        /// Changes a test makes at the moment a request arrives: the endpoint ("*": any), how
        /// many more such requests to let through first, and the change; each runs once.
        var requestHooks: [(endpoint: String, countdown: Int, change: @Sendable () -> Void)] = []
        /// Writes still to hold before applying them, and for how long.
        var lateWrites: (count: Int, delay: Duration) = (0, .zero)
        /// Candidates whose JobSubmissions Bullhorn refuses, and with which HTTP status.
        var refusedSubmissionCandidates: [Int64: Int] = [:]
        /// Faults served so far, by kind (see `faultsServed`).
        var faultsServed: [String: Int] = [:]
        /// When the REST calls of the last minute arrived, oldest first (from `minuteStart`),
        /// and the most that ever arrived within one minute.
        var lastMinute: [ContinuousClock.Instant] = []
        var minuteStart = 0
        var busiestMinute = 0
        var inFlight = 0
        var mostInFlight = 0
        /// The `where` of the latest query calls, in the order they arrived (see `queriesArrived`).
        var queries: [String] = []

        mutating func served(_ fault: String) {
            faultsServed[fault, default: 0] += 1
        }
    }

    let state: Mutex<State>
    /// OAuth and REST sessions.
    public let auth: SimulatedAuth

    public init(seed: SimulatorSeed = SimulatorSeed(), faults: SimulatorFaults = SimulatorFaults(), auth: SimulatedAuth = SimulatedAuth()) {
        var rng = SplitMix64(seed: seed.seed)
        var state = State(faults: faults)
        state.users = (0..<8).map { SimulatedUser(id: Int64(10 + $0), firstName: SeededData.firstNames[$0], lastName: SeededData.lastNames[$0]) }
        for candidate in SeededData.candidates(seed, owners: state.users, rng: &rng) { state.candidates[candidate.id] = candidate }
        state.jobOrderIDs = (0..<Int64(seed.jobOrders)).map { 7_000 + $0 }
        state.clock = nil
        self.state = Mutex(state)
        self.auth = auth
        let candidateIDs = state.candidates.keys.sorted()
        for spec in seed.tearsheets {
            let members = Array(candidateIDs.shuffled(using: &rng).prefix(spec.members))
            let jobs = Array(state.jobOrderIDs.shuffled(using: &rng).prefix(spec.jobs))
            addTearsheet(members: members, jobOrders: jobs, isPrivate: spec.isPrivate, isDeleted: spec.isDeleted, at: seed.epochMillis)
        }
    }

    // MARK: - Time

    /// Epoch milliseconds; pinned with `setClock` for deterministic tests.
    public var nowMillis: Int64 {
        state.withLock { $0.clock } ?? Int64(Date().timeIntervalSince1970 * 1000)
    }

    public func setClock(_ millis: Int64?) {
        state.withLock { $0.clock = millis }
    }

    // MARK: - Mutations (what recruiters do in Bullhorn)

    @discardableResult
    public func addTearsheet(members: [Int64], jobOrders: [Int64], isPrivate: Bool = false, isDeleted: Bool = false, at millis: Int64? = nil) -> Int64 {
        let when = millis ?? nowMillis
        return state.withLock { state in
            let id = state.nextTearsheetID
            state.nextTearsheetID += 1
            var tearsheet = SimulatedTearsheet(
                id: id, name: "Hotlist \(id)", isPrivate: isPrivate, isDeleted: isDeleted,
                ownerID: state.users[Int(id) % state.users.count].id, dateAdded: when, dateLastModified: when,
                members: [], jobOrderIDs: jobOrders)
            for candidate in members {
                tearsheet.members.append(SimulatedTearsheetMember(id: state.nextMemberID, candidateID: candidate, dateAdded: when))
                state.nextMemberID += 1
            }
            state.tearsheets[id] = tearsheet
            return id
        }
    }

    /// Adds candidates to a tearsheet now. Whether that bumps the tearsheet's
    /// dateLastModified follows `SimulatorFaults.memberAddBumpsTearsheet`.
    public func addMembers(_ candidates: [Int64], to tearsheetID: Int64, at millis: Int64? = nil) {
        let when = millis ?? nowMillis
        state.withLock { state in
            guard var tearsheet = state.tearsheets[tearsheetID] else { return }
            for candidate in candidates where !tearsheet.members.contains(where: { $0.candidateID == candidate }) {
                tearsheet.members.append(SimulatedTearsheetMember(id: state.nextMemberID, candidateID: candidate, dateAdded: when))
                state.nextMemberID += 1
            }
            if state.faults.memberAddBumpsTearsheet { tearsheet.dateLastModified = when }
            state.tearsheets[tearsheetID] = tearsheet
        }
    }

    public func updateTearsheet(_ id: Int64, at millis: Int64? = nil, _ change: (inout SimulatedTearsheet) -> Void) {
        let when = millis ?? nowMillis
        state.withLock { state in
            guard var tearsheet = state.tearsheets[id] else { return }
            change(&tearsheet)
            tearsheet.dateLastModified = when
            state.tearsheets[id] = tearsheet
        }
    }

    /// A recruiter edits a candidate (any field: hostile strings included).
    public func updateCandidate(_ id: Int64, at millis: Int64? = nil, _ change: (inout SimulatedCandidate) -> Void) {
        let when = millis ?? nowMillis
        state.withLock { state in
            guard var candidate = state.candidates[id] else { return }
            change(&candidate)
            candidate.dateLastModified = when
            state.candidates[id] = candidate
        }
    }

    /// Recruiters take candidates off a tearsheet.
    public func removeMembers(_ candidates: Set<Int64>, from tearsheetID: Int64, at millis: Int64? = nil) {
        updateTearsheet(tearsheetID, at: millis) { $0.members.removeAll { candidates.contains($0.candidateID) } }
    }

    public func setFaults(_ faults: SimulatorFaults) {
        state.withLock { $0.faults = faults }
    }

    // MARK: - Reading (for tests)

    public var tearsheets: [SimulatedTearsheet] {
        state.withLock { Array($0.tearsheets.values).sorted { $0.id < $1.id } }
    }

    public var candidateIDs: [Int64] {
        state.withLock { $0.candidates.keys.sorted() }
    }

    public var jobOrderIDs: [Int64] {
        state.withLock { $0.jobOrderIDs }
    }

    public func tearsheet(_ id: Int64) -> SimulatedTearsheet? {
        state.withLock { $0.tearsheets[id] }
    }

    /// Calls answered per endpoint, e.g. `GET query/Tearsheet`, including faulted ones.
    public var callCounts: [String: Int] {
        state.withLock { $0.calls }
    }

    public var totalCalls: Int {
        state.withLock { $0.calls.values.reduce(0, +) }
    }

    public func resetCounters() {
        state.withLock { $0.calls = [:] }
    }

    /// Live (not deleted) JobSubmissions for a candidate and job: more than one is the bug
    /// this whole project exists to prevent.
    public func jobSubmissionCount(candidate: Int64, jobOrder: Int64) -> Int {
        state.withLock { state in
            state.submissions.values.filter { $0.candidateID == candidate && $0.jobOrderID == jobOrder && !$0.isDeleted }.count
        }
    }

    public var jobSubmissions: [SimulatedJobSubmission] {
        state.withLock { Array($0.submissions.values).sorted { $0.id < $1.id } }
    }
}
