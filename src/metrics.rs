//! Prometheus metrics (`fastmcp_` prefix, unit suffixes), in one registry served on the admin
//! listener. Labels carry no secrets and only bounded values (routes, configured servers,
//! fixed reason strings). Besides the `fastmcp_*` families: the client library's standard
//! `process_*` collector (CPU seconds, resident and virtual memory, open and max fds, start
//! time, threads; read from `/proc/self` at scrape time) and `fastmcp_build_info`.

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub mcp_requests: IntCounterVec,
    pub policy_eval: HistogramVec,
    pub jwt_failures: IntCounterVec,
    pub jwks_refreshes: IntCounterVec,
    pub upstream_duration: HistogramVec,
    pub audit_records: IntCounterVec,
    pub holds_pending: IntGauge,
    pub policy_reloads: IntCounterVec,
    /// Shadow evaluations by (live, shadow) answer: `allow` or `deny`.
    pub policy_shadow_decisions: IntCounterVec,
    /// Shadow evaluations dropped because the shadow's queue was full.
    pub policy_shadow_dropped: IntCounter,
    /// Calls a Redis-backed kind of state served from this instance's memory (fail_open).
    pub state_fallback: IntCounterVec,
    /// 1 while the Redis backend answers (0 when it does not, or none is configured).
    pub state_backend_up: IntGauge,
    /// 1 while audit records are written and synced; 0 while the trail fails closed.
    pub audit_healthy: IntGauge,
    /// Audit write (`kind=write`) and fsync (`kind=sync`) failures.
    pub audit_failures: IntCounterVec,
    /// Times the audit trail came back after a failure (without a restart).
    pub audit_recoveries: IntCounter,
    /// Read-only calls let through unrecorded (`audit.on_error: continue`).
    pub audit_unrecorded: IntCounter,
    /// Records per audit fsync (group commit batch sizes).
    pub audit_fsync_batch: Histogram,
    /// Records a full sink queue dropped (the sink refills them from the files).
    pub audit_sink_dropped: IntCounterVec,
    /// Sink write failures by sink.
    pub audit_sink_errors: IntCounterVec,
    /// Signed checkpoints written.
    pub audit_checkpoints: IntCounter,
    /// Torn tails moved to quarantine at startup.
    pub audit_quarantined: IntCounter,
    /// Live audit streams dropped for falling behind.
    pub audit_stream_dropped: IntCounter,
    /// Finished spans by result (exported, failed, dropped).
    pub otel_spans: IntCounterVec,
    pub audit_durable_wait: prometheus::Histogram,
    /// Calls of tools whose definition is not the pinned one, let through in `warn` mode.
    pub tool_pin_mismatch: IntCounterVec,
    /// Hold notifications (webhooks) by result: sent, failed, dropped (queue full).
    pub holds_notify: IntCounterVec,
}

fn int_counter(reg: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    reg.register(Box::new(c.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn gauge(reg: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    reg.register(Box::new(g.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    g
}

const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

fn counter(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    reg.register(Box::new(c.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    c
}

fn histogram(reg: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()), labels)
        .unwrap_or_else(|e| panic!("metric {name}: {e}"));
    reg.register(Box::new(h.clone())).unwrap_or_else(|e| panic!("metric {name}: {e}"));
    h
}

/// The process-wide metrics. Built on first use; construction cannot fail at runtime because
/// names and labels are constants (a bad one panics in the first unit test).
pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let holds_pending = IntGauge::new("fastmcp_holds_pending", "Confirmation holds waiting for a confirm")
        .unwrap_or_else(|e| panic!("{e}"));
    registry.register(Box::new(holds_pending.clone())).unwrap_or_else(|e| panic!("{e}"));
    let state_backend_up = IntGauge::new("fastmcp_state_backend_up", "1 while the Redis state backend answers")
        .unwrap_or_else(|e| panic!("{e}"));
    registry.register(Box::new(state_backend_up.clone())).unwrap_or_else(|e| panic!("{e}"));
    register_process_and_build_info(&registry);
    Metrics {
        requests: counter(
            &registry,
            "fastmcp_requests_total",
            "Requests by route, decision and status",
            &["route", "decision", "status"],
        ),
        request_duration: histogram(
            &registry,
            "fastmcp_request_duration_seconds",
            "Request duration, gateway in to response out",
            &["route"],
        ),
        mcp_requests: counter(
            &registry,
            "fastmcp_mcp_requests_total",
            "MCP requests by server, method and decision",
            &["server", "method", "decision"],
        ),
        policy_eval: histogram(
            &registry,
            "fastmcp_policy_eval_duration_seconds",
            "Policy decision evaluation time",
            &["action"],
        ),
        jwt_failures: counter(&registry, "fastmcp_jwt_failures_total", "Refused bearer tokens by reason", &["reason"]),
        jwks_refreshes: counter(
            &registry,
            "fastmcp_jwks_refreshes_total",
            "Background JWKS reloads by result (changed, unchanged, error)",
            &["result"],
        ),
        upstream_duration: histogram(
            &registry,
            "fastmcp_upstream_duration_seconds",
            "Upstream time to response headers",
            &["provider"],
        ),
        audit_records: counter(
            &registry,
            "fastmcp_audit_records_total",
            "Audit records written (result=ok) or lost to a write error",
            &["result"],
        ),
        policy_reloads: counter(&registry, "fastmcp_policy_reloads_total", "Policy reloads by result", &["result"]),
        policy_shadow_decisions: counter(
            &registry,
            "fastmcp_policy_shadow_decisions_total",
            "Decisions also evaluated on the shadow candidate, by the live and the shadow answer",
            &["live", "shadow"],
        ),
        policy_shadow_dropped: int_counter(
            &registry,
            "fastmcp_policy_shadow_dropped_total",
            "Shadow evaluations dropped because the shadow queue was full",
        ),
        state_fallback: counter(
            &registry,
            "fastmcp_state_fallback_total",
            "Calls served from per-instance memory because Redis did not answer (fail_open), by kind",
            &["kind"],
        ),
        state_backend_up,
        tool_pin_mismatch: counter(
            &registry,
            "fastmcp_tool_pin_mismatch_total",
            "Calls of tools whose definition is not the pinned one (pinning: warn), by server",
            &["server"],
        ),
        audit_healthy: gauge(
            &registry,
            "fastmcp_audit_healthy",
            "1 while audit records are written and synced, 0 while failed closed",
        ),
        audit_failures: counter(&registry, "fastmcp_audit_failures_total", "Audit write and fsync failures", &["kind"]),
        audit_recoveries: int_counter(
            &registry,
            "fastmcp_audit_recoveries_total",
            "Audit trail recoveries after a failure",
        ),
        audit_unrecorded: int_counter(
            &registry,
            "fastmcp_audit_unrecorded_total",
            "Read-only calls let through without a record (audit.on_error: continue)",
        ),
        audit_fsync_batch: {
            let opts = HistogramOpts::new("fastmcp_audit_fsync_batch_records", "Records made durable per audit fsync")
                .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0]);
            let h = Histogram::with_opts(opts).unwrap_or_else(|e| panic!("{e}"));
            registry.register(Box::new(h.clone())).unwrap_or_else(|e| panic!("{e}"));
            h
        },
        audit_sink_dropped: counter(
            &registry,
            "fastmcp_audit_sink_dropped_total",
            "Audit records a full sink queue dropped (refilled from the files)",
            &["sink"],
        ),
        audit_sink_errors: counter(
            &registry,
            "fastmcp_audit_sink_errors_total",
            "Audit sink write failures",
            &["sink"],
        ),
        audit_checkpoints: int_counter(
            &registry,
            "fastmcp_audit_checkpoints_total",
            "Signed audit checkpoints written",
        ),
        audit_quarantined: int_counter(
            &registry,
            "fastmcp_audit_quarantined_total",
            "Torn audit tails moved to quarantine",
        ),
        audit_stream_dropped: int_counter(
            &registry,
            "fastmcp_audit_stream_dropped_total",
            "Live audit streams dropped for falling behind",
        ),
        holds_notify: counter(
            &registry,
            "fastmcp_holds_notify_total",
            "Hold webhook notifications by result: sent, failed (refused or unreachable), dropped (queue full)",
            &["result"],
        ),
        otel_spans: counter(
            &registry,
            "fastmcp_otel_spans_total",
            "Finished spans by result: exported, failed (the collector refused or was unreachable), dropped (export queue full)",
            &["result"],
        ),
        audit_durable_wait: {
            let h = prometheus::Histogram::with_opts(
                HistogramOpts::new(
                    "fastmcp_audit_durable_wait_seconds",
                    "Time an admitted write-class call waited for its decision record's fsync before answering",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            registry.register(Box::new(h.clone())).unwrap_or_else(|e| panic!("{e}"));
            h
        },
        holds_pending,
        registry,
    }
});

/// The git revision this binary was built from (build.rs; "unknown" without git).
pub const REVISION: &str = env!("FASTMCP_REVISION");

/// `process_*` (Linux; other systems have no collector) and `fastmcp_build_info{version,
/// revision} 1`, the conventional constant-1 info gauge to join other series against.
fn register_process_and_build_info(registry: &Registry) {
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
        .unwrap_or_else(|e| panic!("process collector: {e}"));
    let info = IntGaugeVec::new(
        Opts::new("fastmcp_build_info", "Build of this gateway: version and git revision (always 1)"),
        &["version", "revision"],
    )
    .unwrap_or_else(|e| panic!("fastmcp_build_info: {e}"));
    info.with_label_values(&[env!("CARGO_PKG_VERSION"), REVISION]).set(1);
    registry.register(Box::new(info)).unwrap_or_else(|e| panic!("fastmcp_build_info: {e}"));
}

/// Counts audit records written (on every append: the label lookup is done once).
pub fn audit_records(n: u64, ok: bool) {
    static COUNTERS: LazyLock<[IntCounter; 2]> = LazyLock::new(|| {
        [METRICS.audit_records.with_label_values(&["ok"]), METRICS.audit_records.with_label_values(&["error"])]
    });
    COUNTERS[usize::from(!ok)].inc_by(n);
}

/// The registry in Prometheus text format.
pub fn render() -> Vec<u8> {
    let mut buf = Vec::new();
    let families = METRICS.registry.gather();
    if let Err(e) = TextEncoder::new().encode(&families, &mut buf) {
        tracing::error!(error = %e, "metrics encoding failed");
    }
    buf
}

#[cfg(test)]
mod tests {
    #[test]
    fn metrics_register_and_render() {
        super::METRICS.requests.with_label_values(&["/mcp/x", "allow", "200"]).inc();
        let text = String::from_utf8(super::render()).unwrap();
        assert!(text.contains("fastmcp_requests_total{decision=\"allow\",route=\"/mcp/x\",status=\"200\"} 1"));
        assert!(text.contains("# TYPE fastmcp_holds_pending gauge"));
        let info = format!(
            "fastmcp_build_info{{revision=\"{}\",version=\"{}\"}} 1",
            super::REVISION,
            env!("CARGO_PKG_VERSION")
        );
        assert!(text.contains(&info), "{text}");
        assert!(text.contains("# TYPE process_resident_memory_bytes gauge"), "{text}");
    }
}
