import Testing

@testable import TearsheetSyncCore

/// A policy's pattern matched as text must say what the regular expression says.
@Suite struct QueueNamePatternTests {
    static let patterns = [
        #"^tearsheet\.session\."#, #"^tearsheet\.dead-letter$"#, "session", #"\.p03$"#, #"^tearsheet\.session\.acme-1$"#,
        #"^tearsheet\.session\.\d+$"#, #"session\.[a-z0-9-]+$|^nothing$"#, "tearsheet[.]sess", "^tearsheet.session", #"^a\$$"#,
        #"^tearsheet\.session\.\$"#, "^$", "dead-letter", #"\w+\.pairs"#,
    ]
    static let names = [
        "tearsheet.session.acme-1", "tearsheet.session.42", "tearsheet.dead-letter", "tearsheet.dead-letter.old", "tearsheet.pairs.p03",
        "tearsheetXsession.acme", "a$", "tearsheet.session.$", "", "other",
    ]

    @Test(arguments: patterns)
    func agreesWithTheRegularExpressionOnEveryName(_ pattern: String) throws {
        let compiled = try Regex(pattern)
        let read = try #require(QueueNamePattern(pattern))
        for name in Self.names {
            #expect(read.matches(name) == name.contains(compiled), "\(pattern) on \(name)")
        }
    }

    @Test func plainTextBetweenAnchorsIsReadAsTextAndAnythingElseAsARegularExpression() {
        for literal in [#"^tearsheet\.session\."#, #"^tearsheet\.dead-letter$"#, "session", #"^a\$$"#, "^$"] {
            #expect(QueueNamePattern(literal)?.isLiteral == true, "\(literal)")
        }
        for regex in [#"^tearsheet\.session\.\d+$"#, "tearsheet[.]sess", "^tearsheet.session", "a|b", "x+", #"\bword"#] {
            #expect(QueueNamePattern(regex)?.isLiteral == false, "\(regex)")
        }
    }

    @Test func anInvalidPatternIsRefused() {
        #expect(QueueNamePattern(#"^tearsheet\.session\.("#) == nil)
        #expect(QueueNamePattern("[unclosed") == nil)
        #expect(QueueNamePattern(#"trailing\"#) == nil)
    }
}
