//! Audit append cost and group-commit throughput:
//! `cargo run --example audit_bench [DIR]` (DIR on the disk to measure; default /tmp).
//!
//! 1. The hot path: one caller appending records that need no fsync (what a read-only call
//!    pays), in µs per record.
//! 2. Durable throughput: C concurrent callers each appending a record and waiting for its
//!    fsync (what a write-class call pays in durable mode), for several C and group-commit
//!    windows; records/s and the records per fsync (batch size).
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastmcp::audit::{AuditEvent, AuditLog, Options};
use fastmcp::metrics::METRICS;

fn event() -> AuditEvent {
    AuditEvent {
        corr_id: "0f8e2c1a-5d4b-4e9a-9c3f-2b1a0d9e8f7c".into(),
        action: "tools.invoke".into(),
        phase: "decision",
        tenant: "acme".into(),
        sub: "alice".into(),
        tool_id: Some("mcp:bench:echo".into()),
        request_hash: Some("9".repeat(64)),
        ..Default::default()
    }
}

fn fresh(base: &str, tag: &str) -> std::path::PathBuf {
    let d = std::path::Path::new(base).join(format!("fastmcp-audit-bench-{tag}"));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn main() {
    let base = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async {
        let log = AuditLog::open(&fresh(&base, "hot"), "bench".into()).expect("open");
        let ev = event();
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            log.append(&ev, false).await.expect("append");
        }
        println!("hot path, append (written, not synced): {:.2} us/record", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    });
    for window_us in [0u64, 2000] {
        for callers in [64usize, 256, 1024] {
            let total = 40_000usize;
            let (secs, fsyncs, synced) = rt.block_on(durable(&base, window_us, callers, total));
            println!(
                "durable, group_commit_us={window_us:>4}, {callers:>4} callers: {:>7.0} records/s, {fsyncs} fsyncs, {:.1} records per fsync",
                total as f64 / secs,
                synced / fsyncs.max(1) as f64
            );
        }
    }
}

/// `callers` tasks append `total` records in all, each waiting for its fsync.
async fn durable(base: &str, window_us: u64, callers: usize, total: usize) -> (f64, u64, f64) {
    let dir = fresh(base, &format!("d{window_us}-{callers}"));
    let opts = Options { window: Duration::from_micros(window_us), ..Options::new("bench") };
    let log = Arc::new(AuditLog::open_with(&dir, opts).expect("open"));
    let (c0, s0) = (METRICS.audit_fsync_batch.get_sample_count(), METRICS.audit_fsync_batch.get_sample_sum());
    let t = Instant::now();
    let per = total / callers;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let log = log.clone();
            tokio::spawn(async move {
                let ev = event();
                for _ in 0..per {
                    log.append_written(&ev).await.expect("append").wait().await.expect("fsync");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let secs = t.elapsed().as_secs_f64();
    let fsyncs = METRICS.audit_fsync_batch.get_sample_count() - c0;
    (secs, fsyncs, METRICS.audit_fsync_batch.get_sample_sum() - s0)
}
