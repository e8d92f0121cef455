import Foundation
import Metrics
import Synchronization

/// The fleet's metrics, through swift-metrics: no-ops until a process bootstraps a backend
/// (`--metrics-port` bootstraps Prometheus). Names and labels are fixed here, in one place,
/// by Prometheus' conventions: base units, `_total` counters, timestamps rather than ages,
/// rates left to PromQL, one label name for one thing in every process (`integration`,
/// `queue`), and every series of a session or an integration present, at zero, from the
/// moment the process first deals with it (so that `increase()` sees its first failure).
public enum FleetMetrics {
    // MARK: Workers

    static func pairsAdded(_ integration: String) -> Counter { counter("tsync_pairs_added_total", integration) }
    static func pairsSkipped(_ integration: String) -> Counter { counter("tsync_pairs_skipped_total", integration) }
    static func deadLettered(_ integration: String) -> Counter { counter("tsync_dead_lettered_total", integration) }
    static func submissionsCreated(_ integration: String) -> Counter { counter("tsync_job_submissions_created_total", integration) }
    /// Attempts that failed for a reason that may pass (throttling, an outage) and were retried in place.
    static func retries(_ integration: String) -> Counter { counter("tsync_retries_total", integration) }

    enum BatchOutcome: String {
        case settled, failed
    }

    /// From a batch's first delivery to its acknowledgement (settled) or to the failure that
    /// ended its session (failed).
    static func batchDuration(_ integration: String, _ outcome: BatchOutcome) -> Metrics.Timer {
        Metrics.Timer(label: "tsync_batch_duration_seconds", dimensions: [("integration", integration), ("outcome", outcome.rawValue)])
    }

    /// From the Bullhorn change that called for a pair (the tearsheet's `dateLastModified`, or
    /// the member's `dateAdded`) to its row: what the freshness SLO is written on.
    static func pairFreshness(_ integration: String) -> Recorder {
        Recorder(label: "tsync_pair_freshness_seconds", dimensions: [("integration", integration)], aggregate: true)
    }

    static func sessionsHeld(_ worker: String) -> Gauge { Gauge(label: "tsync_sessions_held", dimensions: [("worker", worker)]) }

    /// A session taken by a worker: its series exist from now on, at zero.
    static func sessionTaken(_ integration: String) {
        for counter in [pairsAdded, pairsSkipped, deadLettered, submissionsCreated, retries] { counter(integration).increment(by: 0) }
    }

    // MARK: The publisher

    static func pairsPublished(_ integration: String) -> Counter { counter("tsync_pairs_published_total", integration) }
    static func passes(_ integration: String) -> Counter { counter("tsync_publish_passes_total", integration) }
    static func passesFailed(_ integration: String) -> Counter { counter("tsync_publish_passes_failed_total", integration) }
    /// When the integration's last pass succeeded (Unix seconds): staleness is `time() - this`.
    static func lastSuccessfulPass(_ integration: String) -> Gauge { gauge("tsync_last_successful_pass_timestamp_seconds", integration) }
    /// The integration's watermark (Unix seconds): the newest Bullhorn change it has covered.
    static func watermark(_ integration: String) -> Gauge { gauge("tsync_watermark_timestamp_seconds", integration) }

    /// A pass about to start: its integration's series exist from now on, at zero.
    static func passStarting(_ integration: String) {
        for counter in [pairsPublished, passes, passesFailed] { counter(integration).increment(by: 0) }
    }

    // MARK: Bullhorn, from every process that calls it

    /// A REST call spent from the integration's budget, by HTTP status (`error`: no answer).
    static func bullhornCall(_ integration: String, status: Int?) {
        Counter(label: "tsync_bullhorn_calls_total", dimensions: [("integration", integration), ("status", status.map(String.init) ?? "error")])
            .increment()
    }

    /// A Bullhorn REST session this process opened for the fleet (a login, or a renewal after
    /// Bullhorn refused the one kept): few an hour when sessions are shared and live long.
    static func bullhornSessionsOpened(_ integration: String) -> Counter { counter("tsync_bullhorn_sessions_opened_total", integration) }

    /// A login this process made for the fleet that Bullhorn refused for good (the credentials,
    /// the corporation's sessions all taken): the integration does no work until it passes.
    static func bullhornLoginsRefused(_ integration: String) -> Counter { counter("tsync_bullhorn_logins_refused_total", integration) }

    /// The integration's budget, in calls a second (base units; the budget is set a minute):
    /// the line the calls are drawn against.
    static func bullhornBudget(_ integration: String) -> Gauge { gauge("tsync_bullhorn_budget_calls_per_second", integration) }

    // MARK: The queue monitor

    /// Queue depths, as `depth --watch --metrics-port` reports them, for the queues that exist
    /// (a missing one is not "empty"); the series of a queue gone since the last round go too.
    /// Publish and acknowledgement rates come from RabbitMQ's own `rabbitmq_prometheus`
    /// counters, through `rate()`.
    public static func record(_ depths: [QueueDepth]) {
        let present = depths.filter(\.exists)
        let gone = recordedQueues.withLock { recorded in
            defer { recorded = Dictionary(uniqueKeysWithValues: present.map { ($0.queue, $0.session) }) }
            return recorded.filter { queue, _ in !present.contains { $0.queue == queue } }
        }
        for (queue, session) in gone {
            for gauge in queueGauges(queue: queue, session: session) { gauge.destroy() }
        }
        for depth in present {
            let gauges = queueGauges(queue: depth.queue, session: depth.session)
            gauges[0].record(depth.ready)
            gauges[1].record(depth.unacked)
            gauges[2].record(depth.consumers)
        }
    }

    private static let recordedQueues = Mutex<[String: String?]>([:])

    private static func queueGauges(queue: String, session: String?) -> [Gauge] {
        var labels = [("queue", queue)]
        if let session { labels.append(("integration", session)) }
        return ["tsync_queue_messages_ready", "tsync_queue_messages_unacked", "tsync_queue_consumers"].map { Gauge(label: $0, dimensions: labels) }
    }

    /// A round of the queue monitor: its errors (the management API unreachable, in
    /// maintenance) are counted, and the time of its last good round kept.
    public static func monitorRound(succeeded: Bool) {
        let errors = Counter(label: "tsync_monitor_errors_total")
        errors.increment(by: 0)
        if succeeded {
            Gauge(label: "tsync_monitor_last_success_timestamp_seconds").record(Date().timeIntervalSince1970)
        } else {
            errors.increment()
        }
    }

    // MARK: -

    private static func counter(_ label: String, _ integration: String) -> Counter {
        Counter(label: label, dimensions: [("integration", integration)])
    }

    private static func gauge(_ label: String, _ integration: String) -> Gauge {
        Gauge(label: label, dimensions: [("integration", integration)])
    }
}
