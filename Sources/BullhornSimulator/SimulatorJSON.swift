import Foundation

/// The simulator's answers written as JSON directly from their `[String: Any]` trees.
///
/// `JSONSerialization` bridges every dictionary and array to `NSDictionary`/`NSArray` and
/// casts each value back: in `tearsheet-bench publisher` that made the simulator, serving a
/// 10,000-member tearsheet's pages, the largest CPU user beside RabbitMQ (14 % of the two
/// cores by `perf record -a`, 70 % of it in that bridging), taking from the broker what the
/// benchmark means to measure. Keys keep the dictionary's order, as `JSONSerialization`'s do.
enum SimulatorJSON {
    /// The JSON text of `object`, or nil when it holds a value this writer does not know (the
    /// caller falls back to `JSONSerialization`).
    static func encode(_ object: Any) -> [UInt8]? {
        var writer = Writer()
        guard writer.write(object) else { return nil }
        return writer.bytes
    }

    private struct Writer {
        var bytes: [UInt8] = []

        init() { bytes.reserveCapacity(4096) }

        /// Appends `value`; false for a value JSON cannot hold or this writer does not know.
        /// `Bool` is tried before the integers so that `true` is never written as 1.
        mutating func write(_ value: Any) -> Bool {
            switch value {
            case let string as String: write(string: string)
            case let bool as Bool: bytes.append(contentsOf: bool ? Array("true".utf8) : Array("false".utf8))
            case let int as Int64: append(int.description)
            case let int as Int: append(int.description)
            case let dictionary as [String: Any]:
                bytes.append(UInt8(ascii: "{"))
                var first = true
                for (key, element) in dictionary {
                    if !first { bytes.append(UInt8(ascii: ",")) }
                    first = false
                    write(string: key)
                    bytes.append(UInt8(ascii: ":"))
                    guard write(element) else { return false }
                }
                bytes.append(UInt8(ascii: "}"))
            case let records as [[String: Any]]: return write(array: records)
            case let ids as [Int64]: return write(array: ids)
            case let array as [Any]: return write(array: array)
            case is NSNull: append("null")
            case let double as Double:
                guard double.isFinite else { return false }
                append(double.description)
            case let integer as any BinaryInteger: append("\(integer)")
            default: return false
            }
            return true
        }

        private mutating func write<Element>(array: [Element]) -> Bool {
            bytes.append(UInt8(ascii: "["))
            for (index, element) in array.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                guard write(element) else { return false }
            }
            bytes.append(UInt8(ascii: "]"))
            return true
        }

        private mutating func append(_ text: String) { bytes.append(contentsOf: text.utf8) }

        /// A JSON string: the quote, the backslash and control characters escaped.
        private mutating func write(string: String) {
            bytes.append(UInt8(ascii: "\""))
            for byte in string.utf8 {
                switch byte {
                case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: Array("\\u00".utf8))
                    bytes.append(hex[Int(byte >> 4)])
                    bytes.append(hex[Int(byte & 0xF)])
                default: bytes.append(byte)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }
}
