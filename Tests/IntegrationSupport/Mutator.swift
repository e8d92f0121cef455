/// Seeded mutations of valid inputs, for fuzz tests that run briefly in CI: bit flips, bytes
/// dropped, duplicated and inserted, truncations, splices of the input with itself, and
/// tokens that decoders trip on (huge numbers, wrong types, NUL, invalid UTF-8, deep nesting).
/// The seed is printed by the caller, so that a failure can be replayed.
public struct Mutator {
    private var state: UInt64

    public init(seed: UInt64) {
        state = seed == 0 ? 0x2545_f491_4f6c_dd1d : seed
    }

    static let tokens: [[UInt8]] = [
        "0", "-1", "1e999", "99999999999999999999999", "null", "true", "\"\"", "[]", "{}", "\"\\u0000\"", "\"\\ud800\"",
        String(repeating: "[", count: 600), "\"" + String(repeating: "x", count: 70_000) + "\"", "NaN", ",", ":", "\"",
    ].map { Array($0.utf8) } + [[0xFF, 0xFE], [0xC3], [0x00], [0xED, 0xA0, 0x80]]

    public mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_f491_4f6c_dd1d
    }

    private mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(next() % UInt64(bound)) }

    /// One to four mutations of `input`.
    public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...below(4) {
            let at = below(bytes.count + 1)
            switch below(7) {
            case 0 where !bytes.isEmpty:
                let index = min(at, bytes.count - 1)
                bytes[index] ^= UInt8(1 << below(8))
            case 1 where !bytes.isEmpty:
                bytes.removeSubrange(min(at, bytes.count - 1)..<min(at + 1 + below(8), bytes.count))
            case 2:
                bytes = Array(bytes.prefix(at))
            case 3:
                bytes.insert(contentsOf: Self.tokens[below(Self.tokens.count)], at: at)
            case 4 where !bytes.isEmpty:
                let start = below(bytes.count)
                bytes.insert(contentsOf: bytes[start..<min(bytes.count, start + 1 + below(32))], at: at)
            case 5:
                bytes.insert(UInt8(truncatingIfNeeded: next()), at: at)
            default:
                let other = input.suffix(below(input.count + 1))
                bytes = Array(bytes.prefix(at)) + other
            }
        }
        return bytes
    }
}
