/// A parsed `fields=` parameter: `id,name,owner(id,firstName),candidates`.
struct FieldSelection: Sendable {
    let fields: [(name: String, subfields: [String])]

    struct Invalid: Error {
        let message: String
    }

    init(_ text: String?) throws {
        guard let text, !text.isEmpty else {
            fields = [("id", [])]  // Bullhorn answers with just the id when fields is missing
            return
        }
        if text.trimmingCharacters(in: .whitespaces) == "*" {
            throw Invalid(message: "fields=* is not allowed; list the fields you need")
        }
        var result: [(String, [String])] = []
        var current = ""
        var depth = 0
        for character in text + "," {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                let item = current.trimmingCharacters(in: .whitespaces)
                current = ""
                guard !item.isEmpty else { continue }
                if let open = item.firstIndex(of: "("), item.hasSuffix(")") {
                    let name = String(item[..<open])
                    let inner = item[item.index(after: open)..<item.index(before: item.endIndex)]
                    result.append((name, inner.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }))
                } else {
                    result.append((item, []))
                }
            } else {
                current.append(character)
            }
        }
        fields = result
    }

    /// Keeps the selected fields of `all`; a to-one field with subfields keeps those, a to-many
    /// one (`{"total": N, "data": [...]}`, already truncated) keeps them in each record.
    func render(_ all: [String: Any]) throws -> [String: Any] {
        var output: [String: Any] = [:]
        for (name, subfields) in fields {
            guard let value = all[name] else {
                throw Invalid(message: "unknown field \(name)")
            }
            if !subfields.isEmpty, let toMany = value as? [String: Any], let records = toMany["data"] as? [[String: Any]] {
                output[name] = [
                    "total": toMany["total"] ?? records.count,
                    "data": records.map { record in Dictionary(uniqueKeysWithValues: subfields.map { ($0, record[$0] ?? NSNull()) }) },
                ]
            } else if !subfields.isEmpty, let nested = value as? [String: Any] {
                var kept: [String: Any] = [:]
                for subfield in subfields { kept[subfield] = nested[subfield] ?? NSNull() }
                output[name] = kept
            } else {
                output[name] = value
            }
        }
        return output
    }
}

import Foundation
