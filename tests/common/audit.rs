//! Helpers of the audit trail's black-box tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{fake_upstream, repo, Gateway, GatewayBuilder};

/// An MCP upstream that answers `tools/call` and `tools/list` and counts every `tools/call`
/// it receives (the forwarding that must not happen when the trail fails).
pub fn counting_upstream() -> (u16, Arc<AtomicU64>) {
    let calls = Arc::new(AtomicU64::new(0));
    let seen = calls.clone();
    let port = fake_upstream(move |_head, body, s| {
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let result = if v["method"] == "tools/list" {
            serde_json::json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]})
        } else {
            seen.fetch_add(1, Ordering::SeqCst);
            serde_json::json!({"content": [{"type": "text", "text": "ok"}]})
        };
        let b = serde_json::json!({"jsonrpc": "2.0", "id": v["id"], "result": result}).to_string();
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
    });
    (port, calls)
}

/// A gateway with server `demo` at `port`, the test policy, generous limits, statuses from
/// the error table, and the audit trail in `audit` (data in `data`) as instance `instance`.
pub fn builder(tag: &str, port: u16, audit: &Path, data: &Path, instance: &str) -> GatewayBuilder {
    Gateway::builder(tag)
        .env("FASTMCP__MCP__REFUSAL_STATUS", "http")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("RATE_BUCKET_BURST", "1000000")
        .env("RATE_LIMIT_DEFAULT_RPS", "1000000")
        .env("AUDIT_WORM_DIR", &audit.display().to_string())
        .env("FASTMCP_DATA_DIR", &data.display().to_string())
        .env("FASTMCP__AUDIT__INSTANCE", instance)
        .config(&format!(
            "mcp:\n  servers:\n    demo:\n      url: \"http://127.0.0.1:{port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: []}}\n"
        ))
}

/// A `tools/call` of `echo` with correlation id `corr`; `None` when no whole answer came
/// (the gateway died). Never panics.
pub fn try_call(gw_port: u16, token: &str, corr: &str, id: u64) -> Option<(u16, Vec<u8>)> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"corr": corr}}})
    .to_string();
    try_post(gw_port, "/mcp/demo", token, corr, &body)
}

/// A POST of `body` to `path`; `None` when no whole answer came.
pub fn try_post(gw_port: u16, path: &str, token: &str, corr: &str, body: &str) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", gw_port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{gw_port}\r\nconnection: close\r\ncontent-type: application/json\r\naccept: application/json, text/event-stream\r\nauthorization: Bearer {token}\r\nx-correlation-id: {corr}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = None;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end().to_ascii_lowercase();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("content-length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut out = vec![0; len?];
    r.read_exact(&mut out).ok()?;
    Some((status, out))
}

/// Every record of every chain file in `dir` (plain files), parsed.
pub fn records(dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for f in chain_files(dir) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
    }
    out
}

/// The chain files (`audit-*.jsonl`) of `dir`, sorted.
pub fn chain_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    v.retain(|p| {
        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
    });
    v.sort();
    v
}

/// A Prometheus sample's value on `gw`'s `/metrics` (0 when absent).
pub fn metric(gw: &Gateway, sample: &str) -> f64 {
    let text = String::from_utf8_lossy(&gw.admin("GET", "/metrics").body).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|r| r.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// `fastmcp audit verify` with `args` (exit code, stdout).
pub fn verify(gw: &Gateway, args: &[&str]) -> (i32, String) {
    let mut a = vec!["audit", "verify"];
    a.extend_from_slice(args);
    let out = gw.cli(&a);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).to_string())
}
