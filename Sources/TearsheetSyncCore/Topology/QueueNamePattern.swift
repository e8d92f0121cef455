/// A policy's pattern, a regular expression as RabbitMQ reads it, matched against queue names.
///
/// A pattern that is plain text between optional anchors (as the shipped ones are:
/// `^tearsheet\.session\.`, `^tearsheet\.dead-letter$`) is matched as text; any other is
/// compiled as a Swift `Regex`. Why: compiling even one maps Swift's regular expression parser
/// into the process, about half a MiB of every worker's resident memory, for patterns that are
/// nearly always a literal prefix. Any pattern RabbitMQ accepts that uses more than escaped
/// punctuation and anchors goes to `Regex`, so the two can only differ where `Regex` itself
/// would.
struct QueueNamePattern: Sendable {
    private enum Form: Sendable {
        case literal(String, anchoredAtStart: Bool, anchoredAtEnd: Bool)
        /// Kept as text: `Regex` is not `Sendable`; compiled where it is used (tools, a few
        /// times a run).
        case regex(String)
    }

    private let form: Form

    /// Nil when the pattern is not a valid regular expression.
    init?(_ pattern: String) {
        if let literal = Self.literal(pattern) {
            form = literal
        } else {
            guard (try? Regex(pattern)) != nil else { return nil }
            form = .regex(pattern)
        }
    }

    /// Whether the pattern was read as plain text (no `Regex` compiled for it).
    var isLiteral: Bool {
        if case .literal = form { return true }
        return false
    }

    func matches(_ name: String) -> Bool {
        switch form {
        case .literal(let text, true, true): name == text
        case .literal(let text, true, false): name.hasPrefix(text)
        case .literal(let text, false, true): name.hasSuffix(text)
        case .literal(let text, false, false): name.contains(text)
        case .regex(let pattern): (try? Regex(pattern)).map { name.contains($0) } ?? false
        }
    }

    /// The text a pattern stands for when it has no metacharacter but a leading `^`, a trailing
    /// unescaped `$`, and punctuation escaped with `\`; nil for any other pattern.
    private static func literal(_ pattern: String) -> Form? {
        var characters = Array(pattern)
        let anchoredAtStart = characters.first == "^"
        if anchoredAtStart { characters.removeFirst() }
        var anchoredAtEnd = false
        if characters.last == "$" {
            let backslashes = characters.dropLast().reversed().prefix { $0 == "\\" }.count
            if backslashes.isMultiple(of: 2) {
                anchoredAtEnd = true
                characters.removeLast()
            }
        }
        var text = ""
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "\\" {
                // `\.` is a dot; `\d`, `\w`, `\b` and the like are classes or assertions.
                guard index + 1 < characters.count, characters[index + 1].isASCII, characters[index + 1].isPunctuation || characters[index + 1].isSymbol
                else { return nil }
                text.append(characters[index + 1])
                index += 2
            } else {
                guard !".^$*+?()[]{}|".contains(character) else { return nil }
                text.append(character)
                index += 1
            }
        }
        return .literal(text, anchoredAtStart: anchoredAtStart, anchoredAtEnd: anchoredAtEnd)
    }
}
