/// Decodes the one shape of body the publisher writes (a flat object of the six fields, with
/// integers and plain strings) without Foundation's JSONDecoder, which costs more than the rest
/// of a pair's path through a worker. Anything else, or anything doubtful (an escape, a number
/// that is not a plain positive integer, an unknown, missing or repeated key), returns nil, and
/// the caller decodes with JSONDecoder: the answer and the error are then JSONDecoder's.
/// `PairMessageFuzzTests` holds the two to the same answers.
enum PairMessageFastDecoder {
    private enum Key: CaseIterable {
        case integrationId, campaignId, atsCandidateId, atsJobId, tearsheetId, source

        /// By length first (the six names have six lengths), then byte by byte over two buffers: a
        /// generic walk of a `String.UTF8View` for each candidate name was the decoder's largest
        /// cost in a profile of the dedup path.
        init?(_ bytes: UnsafeBufferPointer<UInt8>) {
            for key in Self.allCases where key.name.utf8CodeUnitCount == bytes.count {
                if key.name.withUTF8Buffer({ $0.elementsEqual(bytes) }) {
                    self = key
                    return
                }
            }
            return nil
        }

        var name: StaticString {
            switch self {
            case .integrationId: "integrationId"
            case .campaignId: "campaignId"
            case .atsCandidateId: "atsCandidateId"
            case .atsJobId: "atsJobId"
            case .tearsheetId: "tearsheetId"
            case .source: "source"
            }
        }
    }

    static func decode(_ body: [UInt8]) -> PairMessage? {
        body.withUnsafeBufferPointer { bytes in
            var reader = Reader(bytes: bytes)
            return reader.message()
        }
    }

    private struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        mutating func message() -> PairMessage? {
            var integrationId: String?
            var source: String?
            var campaign: Int64?
            var candidate: Int64?
            var job: Int64?
            var tearsheet: Int64?
            skipSpace()
            guard take(UInt8(ascii: "{")) else { return nil }
            skipSpace()
            if !take(UInt8(ascii: "}")) {
                repeat {
                    skipSpace()
                    guard let keyBytes = plainString(), let key = Key(keyBytes) else { return nil }
                    skipSpace()
                    guard take(UInt8(ascii: ":")) else { return nil }
                    skipSpace()
                    let read: Bool
                    switch key {
                    case .integrationId: read = text(into: &integrationId)
                    case .source: read = text(into: &source)
                    case .campaignId: read = integer(into: &campaign)
                    case .atsCandidateId: read = integer(into: &candidate)
                    case .atsJobId: read = integer(into: &job)
                    case .tearsheetId: read = integer(into: &tearsheet)
                    }
                    guard read else { return nil }
                    skipSpace()
                } while take(UInt8(ascii: ","))
                guard take(UInt8(ascii: "}")) else { return nil }
            }
            skipSpace()
            guard index == bytes.count, let integrationId, let source, let campaign, let candidate, let job, let tearsheet else { return nil }
            return PairMessage(
                integrationId: integrationId, campaignId: campaign, atsCandidateId: candidate, atsJobId: job, tearsheetId: tearsheet, source: source)
        }

        /// Reads a plain string into a field not yet read (a repeated key is JSONDecoder's to judge).
        mutating func text(into field: inout String?) -> Bool {
            guard field == nil, let value = plainString(), let text = String(validating: value, as: UTF8.self) else { return false }
            field = text
            return true
        }

        mutating func integer(into field: inout Int64?) -> Bool {
            guard field == nil, let value = integer() else { return false }
            field = value
            return true
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// A string's bytes when it has no escape and no control character.
        mutating func plainString() -> UnsafeBufferPointer<UInt8>? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return UnsafeBufferPointer(rebasing: bytes[start..<index - 1])
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
                index += 1
            }
            return nil
        }

        /// A non-negative integer without sign, fraction, exponent or leading zero, that fits.
        mutating func integer() -> Int64? {
            let start = index
            var value: Int64 = 0
            while index < bytes.count, bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") {
                let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflowB) = times.addingReportingOverflow(Int64(bytes[index] - UInt8(ascii: "0")))
                guard !overflowA, !overflowB else { return nil }
                value = sum
                index += 1
            }
            let digits = index - start
            guard digits > 0, digits == 1 || bytes[start] != UInt8(ascii: "0") else { return nil }
            // What follows must end the value: a fraction or exponent is JSONDecoder's to judge.
            if index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return nil
                default: break
                }
            }
            return value
        }
    }
}
