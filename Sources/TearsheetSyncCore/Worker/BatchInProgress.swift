import Foundation

/// What the settlement of one batch knows between its attempts: the pairs still waiting and
/// where their deliveries are in the batch, each pair's failed attempts, the dead letters so far
/// and what was added or skipped.
///
/// Kept apart from `BatchSettler.settleEveryPair`, and synchronous, for memory: an async
/// function's frame holds room for every temporary of its body while it waits, and this
/// bookkeeping written inline made that frame 6 KiB, held by every session of a worker while
/// its batch waits on Bullhorn (1.1 MiB of a 200-session worker's peak, by heaptrack).
struct BatchInProgress {
    let batch: [HeldDelivery]
    let integrationID: String
    private var waiting: [PairKey: PlacesInBatch] = [:]
    private var attempts: [PairKey: Int] = [:]
    private var onlyDeferredSince: ContinuousClock.Instant?
    /// Deliveries to dead-letter, each with its reason.
    private(set) var deadLetters: [(HeldDelivery, String)] = []
    /// What every attempt so far added, skipped and created.
    private(set) var outcomes = PairBatchOutcome()

    /// Sorts the batch: messages that are not pairs of this session are dead letters at once;
    /// the others wait, each pair once however many of its deliveries the batch holds.
    init(_ batch: [HeldDelivery], integrationID: String) {
        self.batch = batch
        self.integrationID = integrationID
        for (place, delivery) in batch.enumerated() {
            switch delivery.content {
            case .malformed(_, let reason):
                deadLetters.append((delivery, reason))
            case .pair(let pair, _, _) where pair.integrationId != integrationID:
                deadLetters.append((delivery, "pair of integration \(pair.integrationId) in the session of \(integrationID)"))
            case .pair(let pair, _, _):
                if waiting[pair.pair] == nil { waiting[pair.pair] = PlacesInBatch(place) } else { waiting[pair.pair]!.append(place) }
            }
        }
    }

    /// Every pair is added, skipped or dead-lettered (or sent to the back of the queue).
    var isSettled: Bool { waiting.isEmpty }
    var waitingPairs: [PairKey] { Array(waiting.keys) }
    var waitingCount: Int { waiting.count }

    /// A failure no attempt can pass: every pair still waiting is dead-lettered with it.
    mutating func deadLetterEveryWaitingPair(reason: String) {
        deadLetters += takeWaiting().map { ($0, reason) }
    }

    /// Takes in one attempt's outcome: pairs added or already there are settled (the added
    /// ones' freshness recorded), those refused are dead letters, and a pair whose own step
    /// failed `pairAttempts` times is given up with its last error. Deferred pairs wait on.
    mutating func absorb(_ outcome: PairBatchOutcome, pairAttempts: Int, at now: Date) {
        for pair in outcome.added {
            if let changed = waiting[pair]?.all.compactMap({ batch[$0].changedAt }).max() {
                FleetMetrics.pairFreshness(integrationID).record(max(0, now.timeIntervalSince(changed)))
            }
        }
        for pair in outcome.added + outcome.alreadyOnCampaign { waiting[pair] = nil }
        for (pair, reason) in outcome.deadLetters {
            deadLetters += removeWaiting(pair).map { ($0, reason) }
        }
        for (pair, error) in outcome.retry {
            attempts[pair, default: 0] += 1
            if attempts[pair]! >= pairAttempts {
                deadLetters += removeWaiting(pair).map { ($0, "gave up after \(pairAttempts) attempts: \(error)") }
            }
        }
        outcomes.added += outcome.added
        outcomes.alreadyOnCampaign += outcome.alreadyOnCampaign
        outcomes.submissionsCreated += outcome.submissionsCreated
        onlyDeferredSince = outcome.retry.isEmpty && !waiting.isEmpty ? (onlyDeferredSince ?? .now) : nil
    }

    /// Whether the pairs still waiting have been only deferred ones for at least `grace`.
    func onlyDeferred(for grace: Duration) -> Bool {
        guard let since = onlyDeferredSince else { return false }
        return ContinuousClock.now - since >= grace
    }

    /// Every delivery still waiting, taken out of the batch's settlement (sent to the back of
    /// its session queue).
    mutating func takeWaiting() -> [HeldDelivery] {
        defer { waiting = [:] }
        return waiting.values.flatMap { $0.all.map { batch[$0] } }
    }

    /// The deliveries of a pair that leaves `waiting` unsettled (dead-lettered).
    private mutating func removeWaiting(_ pair: PairKey) -> [HeldDelivery] {
        waiting.removeValue(forKey: pair)?.all.map { batch[$0] } ?? []
    }
}

/// Where one pair's deliveries are in its batch: nearly always one place, held inline, so that
/// a batch of 200 pairs is not 200 arrays of one delivery (8,000 deliveries in hand kept 1.5 MiB
/// of them, and the pairs already on their campaigns paid an allocation each).
private struct PlacesInBatch {
    private let first: Int
    private var more: [Int] = []

    init(_ place: Int) {
        first = place
    }

    mutating func append(_ place: Int) {
        more.append(place)
    }

    var all: [Int] { [first] + more }
}
