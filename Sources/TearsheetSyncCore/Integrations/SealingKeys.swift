/// The keys of what the fleet seals at rest (Bullhorn secrets, Bullhorn sessions):
/// `TSYNC_SECRET_KEY` seals and opens; `TSYNC_PREVIOUS_SECRET_KEY`, set only while a rotation
/// is under way, still opens what it sealed, so that the fleet works on while
/// `integration rekey` seals everything again under the new key.
public struct SealingKeys: Sendable, Equatable {
    public let current: [UInt8]
    public let previous: [UInt8]?

    public init(current: [UInt8], previous: [UInt8]? = nil) {
        self.current = current
        self.previous = previous
    }

    /// The keys to try when opening, the current first.
    var opening: [[UInt8]] { [current] + (previous.map { [$0] } ?? []) }
}
