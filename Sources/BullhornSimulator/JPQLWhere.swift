/// The subset of Bullhorn's JPQL `where` clauses the simulator understands: conditions joined
/// by AND, each `path op value` with `=`, `<>`, `>`, `>=`, `<`, `<=` or `IN (…)`, over integers,
/// booleans and quoted strings. Anything else is rejected as Bullhorn rejects bad JPQL (400).
struct JPQLWhere: Sendable {
    enum Value: Sendable, Equatable {
        case int(Int64)
        case bool(Bool)
        case string(String)
    }

    struct Condition: Sendable {
        let path: String
        let op: String
        let values: [Value]
    }

    let conditions: [Condition]

    struct ParseError: Error {
        let message: String
    }

    init(_ text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            conditions = []
            return
        }
        conditions = try Self.splitOnAnd(trimmed).map(Self.condition)
    }

    /// Splits on AND outside parentheses and quotes.
    private static func splitOnAnd(_ text: String) throws -> [String] {
        var parts: [String] = []
        var current = ""
        var depth = 0
        var quoted = false
        let characters = Array(text)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "'" { quoted.toggle() }
            if !quoted {
                if character == "(" { depth += 1 }
                if character == ")" { depth -= 1 }
                if depth == 0, index + 5 <= characters.count,
                    String(characters[index..<index + 5]).uppercased() == " AND "
                {
                    parts.append(current)
                    current = ""
                    index += 5
                    continue
                }
            }
            current.append(character)
            index += 1
        }
        parts.append(current)
        if parts.contains(where: { $0.uppercased().contains(" OR ") }) {
            throw ParseError(message: "OR is not supported by this simulator")
        }
        return parts.map { $0.trimmingCharacters(in: .whitespaces) }
    }

    private static func condition(_ text: String) throws -> Condition {
        for op in [">=", "<=", "<>", "=", ">", "<"] {
            if let range = text.range(of: op) {
                let path = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                let value = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
                return Condition(path: try checkedPath(path), op: op, values: [try parseValue(value)])
            }
        }
        if let range = text.range(of: " IN ", options: .caseInsensitive) {
            let path = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
            var list = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
            guard list.hasPrefix("("), list.hasSuffix(")") else { throw ParseError(message: "IN needs a parenthesised list: \(text)") }
            list = String(list.dropFirst().dropLast())
            let values = try list.split(separator: ",").map { try parseValue($0.trimmingCharacters(in: .whitespaces)) }
            guard !values.isEmpty else { throw ParseError(message: "empty IN list") }
            return Condition(path: try checkedPath(path), op: "IN", values: values)
        }
        throw ParseError(message: "cannot parse condition: \(text)")
    }

    private static func checkedPath(_ path: String) throws -> String {
        guard !path.isEmpty, path.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }) else {
            throw ParseError(message: "bad field path: \(path)")
        }
        return path
    }

    private static func parseValue(_ text: String) throws -> Value {
        if let int = Int64(text) { return .int(int) }
        if text.lowercased() == "true" { return .bool(true) }
        if text.lowercased() == "false" { return .bool(false) }
        if text.count >= 2, text.hasPrefix("'"), text.hasSuffix("'") { return .string(String(text.dropFirst().dropLast())) }
        throw ParseError(message: "cannot parse value: \(text)")
    }

    /// True when `record` (flat paths such as `candidate.id`) meets every condition.
    /// A path the entity does not have is an error, as in Bullhorn.
    func matches(_ record: [String: Value]) throws -> Bool {
        for condition in conditions {
            guard let actual = record[condition.path] else {
                throw ParseError(message: "unknown field \(condition.path)")
            }
            let met: Bool
            switch condition.op {
            case "IN": met = condition.values.contains(actual)
            case "=": met = actual == condition.values[0]
            case "<>": met = actual != condition.values[0]
            default:
                guard case .int(let left) = actual, case .int(let right) = condition.values[0] else {
                    throw ParseError(message: "\(condition.op) needs numbers on \(condition.path)")
                }
                switch condition.op {
                case ">": met = left > right
                case ">=": met = left >= right
                case "<": met = left < right
                default: met = left <= right
                }
            }
            if !met { return false }
        }
        return true
    }
}

import Foundation
