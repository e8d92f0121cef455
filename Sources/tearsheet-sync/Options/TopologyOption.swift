import ArgumentParser
import TearsheetSyncCore

/// `--topology`, for the commands that need the RabbitMQ definitions file.
struct TopologyOption: ParsableArguments {
    @Option(name: .customLong("topology"), help: "RabbitMQ definitions file (TSYNC_TOPOLOGY).")
    var path: String?

    /// The file named by the flag, the setting, or the default; read for its errors at start.
    func load(_ settings: Settings) throws -> Topology {
        try Topology.load(path: path ?? settings.topologyPath())
    }
}
