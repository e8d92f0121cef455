/// What to generate. Everything derives from `seed`: the same seed gives the same world.
public struct SimulatorSeed: Sendable {
    public struct TearsheetSpec: Sendable {
        public var members: Int
        public var jobs: Int
        public var isPrivate: Bool
        public var isDeleted: Bool

        public init(members: Int, jobs: Int = 1, isPrivate: Bool = false, isDeleted: Bool = false) {
            self.members = members
            self.jobs = jobs
            self.isPrivate = isPrivate
            self.isDeleted = isDeleted
        }
    }

    public var seed: UInt64
    public var candidates: Int
    public var jobOrders: Int
    public var tearsheets: [TearsheetSpec]
    /// The time the generated records were last modified, epoch milliseconds.
    public var epochMillis: Int64

    public init(seed: UInt64 = 42, candidates: Int = 1_000, jobOrders: Int = 20, tearsheets: [TearsheetSpec] = [], epochMillis: Int64 = 1_764_000_000_000) {
        self.seed = seed
        self.candidates = candidates
        self.jobOrders = jobOrders
        self.tearsheets = tearsheets
        self.epochMillis = epochMillis
    }

    /// A mixed world for the demo: small, large, private and deleted tearsheets.
    public static func demo(seed: UInt64 = 42) -> SimulatorSeed {
        var specs: [TearsheetSpec] = (0..<24).map { index in TearsheetSpec(members: [0, 3, 17, 40, 120, 260, 501, 900][index % 8], jobs: 1 + index % 3) }
        specs.append(TearsheetSpec(members: 2_500, jobs: 2))
        specs.append(TearsheetSpec(members: 50, jobs: 1, isPrivate: true))
        specs.append(TearsheetSpec(members: 50, jobs: 1, isDeleted: true))
        return SimulatorSeed(seed: seed, candidates: 12_000, jobOrders: 40, tearsheets: specs)
    }
}

/// SplitMix64: small, fast and the same on every platform (unlike `SystemRandomNumberGenerator`).
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

enum SeededData {
    static let firstNames = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim", "Margaret", "Linus", "Sophie", "Niklaus", "Hedy", "Dennis"]
    static let lastNames = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Perlman", "Berners-Lee", "Hamilton", "Torvalds", "Wilson", "Wirth", "Lamarr", "Ritchie"]
    static let cities = [("Boston", "MA", "02110"), ("Austin", "TX", "73301"), ("Denver", "CO", "80202"), ("Seattle", "WA", "98101"), ("Chicago", "IL", "60601"), ("Atlanta", "GA", "30301")]
    static let occupations = ["Nurse", "Welder", "Software Engineer", "Accountant", "Forklift Operator", "Project Manager", "Electrician", "Data Analyst"]
    static let companies = ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Logistics"]
    static let statuses = ["Active", "Available", "Placed", "New Lead", "Passive"]

    static func candidates(_ seed: SimulatorSeed, owners: [SimulatedUser], rng: inout SplitMix64) -> [SimulatedCandidate] {
        (0..<seed.candidates).map { index in
            let first = firstNames.randomElement(using: &rng)!
            let last = lastNames.randomElement(using: &rng)!
            let city = cities.randomElement(using: &rng)!
            let id = Int64(100_000 + index)
            return SimulatedCandidate(
                id: id, firstName: first, lastName: last,
                email: "\(first.lowercased()).\(last.lowercased()).\(id)@example.com",
                phone: "555-\(String(format: "%04d", Int.random(in: 0...9999, using: &rng)))",
                mobile: "555-\(String(format: "%04d", Int.random(in: 0...9999, using: &rng)))",
                city: city.0, state: city.1, zip: city.2, countryID: 1,
                occupation: occupations.randomElement(using: &rng)!, companyName: companies.randomElement(using: &rng)!,
                status: statuses.randomElement(using: &rng)!, ownerID: owners.randomElement(using: &rng)!.id,
                dateLastModified: seed.epochMillis - Int64.random(in: 0...86_400_000, using: &rng),
                isDeleted: false, salary: Double(Int.random(in: 30...180, using: &rng) * 1000))
        }
    }
}
