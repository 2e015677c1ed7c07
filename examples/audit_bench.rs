//! Audit append cost: `cargo run --release --example audit_bench [DIR]`.
use std::time::Instant;

use fastmcp::audit::{AuditEvent, AuditLog};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp/fastmcp-audit-bench".into());
    let _ = std::fs::remove_dir_all(&dir);
    let log = AuditLog::open(std::path::Path::new(&dir), "bench".into()).expect("open");
    let ev = AuditEvent {
        corr_id: "c".into(),
        action: "tools.invoke".into(),
        phase: "decision",
        tool_id: Some("mcp:bench:echo".into()),
        ..Default::default()
    };
    let n = 20000;
    let t = Instant::now();
    for _ in 0..n {
        log.append(&ev, false).await.expect("append");
    }
    println!("append (written): {:.2} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    for _ in 0..n {
        let _ = serde_json::to_value(&ev).expect("v");
    }
    println!("to_value only: {:.2} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let t = Instant::now();
    for _ in 0..2000 {
        log.append(&ev, true).await.expect("append");
    }
    println!("append (durable, serial): {:.1} us", t.elapsed().as_secs_f64() * 1e6 / 2000.0);
}
