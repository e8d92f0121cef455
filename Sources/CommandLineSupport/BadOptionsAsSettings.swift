import ArgumentParser
import Foundation

extension AsyncParsableCommand {
    /// As argument-parser's own `main()`, except that a bad option is a bad setting like any
    /// other: one line naming it and exit code 2, not the usage text and 64 (a supervisor's
    /// log would show the usage and bury the line).
    public static func mainTreatingBadOptionsAsSettings() async {
        do {
            var command = try await asyncParseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data("\(configuration.commandName ?? "error"): \(oneLine(message(for: error)))\n".utf8))
            exit(withError: ExitCode(2))
        }
    }

    /// argument-parser lists a value's choices one per line ("- amqp"): one line, comma-separated.
    static func oneLine(_ message: String) -> String {
        let lines = message.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard let first = lines.first, lines.count > 1 else { return message }
        let rest = lines.dropFirst().map { $0.hasPrefix("- ") ? String($0.dropFirst(2)) : $0 }
        return "\(first) \(rest.joined(separator: ", "))"
    }
}
