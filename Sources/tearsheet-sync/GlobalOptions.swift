import ArgumentParser
import Foundation
import Metrics
import Prometheus
import TearsheetSyncCore

/// Flags every command accepts; each overrides its environment variable.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("amqp-url"), help: "Broker URL (TSYNC_AMQP_URL).")
    var amqpURL: String?

    @Option(name: .customLong("database-url"), help: "PostgreSQL URI or conninfo (TSYNC_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("log-format"), help: "text or json (TSYNC_LOG_FORMAT).")
    var logFormat: String?

    @Option(name: .customLong("log-level"), help: "trace … critical (TSYNC_LOG_LEVEL).")
    var logLevel: String?

    var settings: Settings {
        Settings(overrides: [
            Settings.amqpURLVariable: amqpURL,
            Settings.databaseURLVariable: databaseURL,
            Settings.logFormatVariable: logFormat,
            Settings.logLevelVariable: logLevel,
        ])
    }
}

/// Runs a command body with the process conventions: logging bootstrapped from the settings,
/// a configuration problem printed as one line naming the setting with exit code 2, any other
/// failure as one line with exit code 1. Never a stack trace, never a secret.
func runCommand(_ options: GlobalOptions, _ body: (Settings) async throws -> Void) async throws {
    let settings = options.settings
    do {
        LogSetup.bootstrap(format: try settings.logFormat(), level: try settings.logLevel())
        try await body(settings)
    } catch let error as ConfigurationError {
        printError("\(error)")
        throw ExitCode(2)
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("\(error)")
        throw ExitCode(1)
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data("tearsheet-sync: \(line)\n".utf8))
}

/// `--metrics-port` and `--metrics-address`, for long-running commands.
struct MetricsOptions: ParsableArguments {
    @Option(name: .customLong("metrics-port"), help: "Serve /metrics, /healthz/live and /healthz/ready on this port.")
    var metricsPort: Int?

    @Option(name: .customLong("metrics-address"), help: "Address for --metrics-port.")
    var metricsAddress = "0.0.0.0"

    func validate() throws {
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0 to 65535") }
    }

    /// The metrics server, when asked for; swift-metrics reports to its registry from now on
    /// (before the command creates its first metric).
    func server(isReady: @escaping @Sendable () -> Bool = { true }) -> MetricsServer? {
        guard let metricsPort else { return nil }
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // A batch waits on Bullhorn (throttled, retried in place) for up to minutes; a pair's
        // freshness is written against a 10-minute objective.
        factory.defaultDurationHistogramBuckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600].map { .milliseconds(Int($0 * 1000)) }
        factory.valueHistogramBuckets["tsync_pair_freshness_seconds"] = [5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200]
        MetricsSystem.bootstrap(factory)
        return MetricsServer(address: metricsAddress, port: metricsPort, registry: registry, isReady: isReady)
    }
}
