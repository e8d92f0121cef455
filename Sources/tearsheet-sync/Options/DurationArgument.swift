import ArgumentParser
import TearsheetSyncCore

/// A duration flag as operators write it (`90s`, `5m`, `1h30m`), parsed once by the argument
/// parser, so that a command never parses (or force-unwraps) its flags again.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let duration: Duration

    init?(argument: String) {
        guard let duration = DurationParser.parse(argument) else { return nil }
        self.duration = duration
    }

    var defaultValueDescription: String { "\(duration.components.seconds)s" }
}
