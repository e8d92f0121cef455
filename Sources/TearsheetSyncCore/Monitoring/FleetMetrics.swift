import Foundation
import Metrics

/// The fleet's metrics, through swift-metrics: no-ops until a process bootstraps a backend
/// (`--metrics-port` bootstraps Prometheus). Names and labels are fixed here, in one place.
public enum FleetMetrics {
    static func pairsAdded(_ integration: String) -> Counter { Counter(label: "tsync_pairs_added_total", dimensions: [("integration", integration)]) }
    static func pairsSkipped(_ integration: String) -> Counter { Counter(label: "tsync_pairs_skipped_total", dimensions: [("integration", integration)]) }
    static func deadLettered(_ integration: String) -> Counter { Counter(label: "tsync_dead_lettered_total", dimensions: [("integration", integration)]) }
    static func submissionsCreated(_ integration: String) -> Counter {
        Counter(label: "tsync_job_submissions_created_total", dimensions: [("integration", integration)])
    }
    /// Attempts that failed for a reason that may pass (throttling, an outage) and were retried in place.
    static func retries(_ integration: String) -> Counter { Counter(label: "tsync_retries_total", dimensions: [("integration", integration)]) }
    static func batchDuration(_ integration: String) -> Metrics.Timer {
        Metrics.Timer(label: "tsync_batch_duration_seconds", dimensions: [("integration", integration)])
    }
    static func sessionsHeld(_ worker: String) -> Gauge { Gauge(label: "tsync_sessions_held", dimensions: [("worker", worker)]) }

    static func pairsPublished(_ integration: String) -> Counter { Counter(label: "tsync_pairs_published_total", dimensions: [("integration", integration)]) }
    static func passesFailed(_ integration: String) -> Counter { Counter(label: "tsync_publish_passes_failed_total", dimensions: [("integration", integration)]) }
    static func watermarkAge(_ integration: String) -> Gauge { Gauge(label: "tsync_watermark_age_seconds", dimensions: [("integration", integration)]) }

    /// Queue depth, as `depth --watch --metrics-port` reports it.
    public static func record(_ depth: QueueDepth) {
        let queue = [("queue", depth.queue)]
        Gauge(label: "tsync_queue_ready", dimensions: queue).record(depth.ready)
        Gauge(label: "tsync_queue_unacked", dimensions: queue).record(depth.unacked)
        Gauge(label: "tsync_queue_consumers", dimensions: queue).record(depth.consumers)
        Gauge(label: "tsync_queue_publish_rate", dimensions: queue).record(depth.publishRate)
        Gauge(label: "tsync_queue_ack_rate", dimensions: queue).record(depth.ackRate)
    }
}
