//! Acceptance: "Rate limit: burst + N rapid calls give N 429s (allowing for refill); denied
//! calls use no quota".
//!
//! The gateway runs with 1 call/s and a bucket of 5, so refill during a burst of rapid calls is
//! bounded by the wall time the burst took: allowed <= burst + ceil(elapsed_secs * rps).

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use common::*;
use serde_json::json;

const RPS: f64 = 1.0;
const BURST: usize = 5;
const N: usize = 5;

fn ok_response(s: &mut TcpStream) {
    let b = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#;
    let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
}

/// A gateway limiting at `RPS`/`BURST` in front of an upstream that counts the calls it gets.
fn setup(tag: &str) -> (Gateway, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let port = fake_upstream(move |_head, _body, s| {
        c.fetch_add(1, Ordering::SeqCst);
        ok_response(s);
    });
    let url = format!("http://127.0.0.1:{port}/mcp");
    let gw = Gateway::builder(tag)
        // Statuses from the error table (the operator's `http` mode), which this test checks.
        .env("FASTMCP__MCP__REFUSAL_STATUS", "http")
        .env("MCP_UP_DISCOVER", "false")
        .env("MCP_UP_URL", &url)
        .env("RATE_LIMIT_DEFAULT_RPS", &RPS.to_string())
        .env("RATE_BUCKET_BURST", &BURST.to_string())
        .config(&format!(
            "mcp:\n  servers:\n    up:\n      url: \"{url}\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: [], add: []}}\n"
        ))
        .start();
    (gw, count)
}

fn call(gw: &Gateway, token: &str, tool: &str) -> Resp {
    mcp_post(&gw.url("/mcp/up"), Some(token), &tools_call(1, tool, json!({"a": 1, "b": 2})), &[])
}

fn int_header(r: &Resp, name: &str) -> u64 {
    let v = r.header(name).unwrap_or_else(|| panic!("missing {name} on a {} response", r.status));
    v.parse().unwrap_or_else(|_| panic!("{name}: {v:?} is not a whole number"))
}

fn assert_allowed(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(int_header(r, "ratelimit-limit"), BURST as u64, "{what}");
    assert!(int_header(r, "ratelimit-remaining") < BURST as u64, "{what}");
    int_header(r, "ratelimit-reset");
}

fn assert_rate_limited(r: &Resp) {
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    assert!(int_header(r, "retry-after") >= 1, "Retry-After must be at least 1");
    assert_eq!(int_header(r, "ratelimit-limit"), BURST as u64);
    assert_eq!(int_header(r, "ratelimit-remaining"), 0);
    assert!(int_header(r, "ratelimit-reset") >= 1);
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0", "{body}");
    assert_eq!(body["id"], 1, "{body}");
    assert_eq!(body["error"]["data"]["code"], "RATE_LIMITED", "{body}");
    assert!(body["error"]["data"]["corr_id"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
}

#[test]
fn burst_plus_n_rapid_calls_give_n_429s_allowing_for_refill() {
    let (gw, upstream_calls) = setup("rl-burst");
    let token = gw.mint("alice", "acme", "mcp-admin");

    let start = Instant::now();
    let responses: Vec<Resp> = (0..BURST + N).map(|_| call(&gw, &token, "echo")).collect();
    let elapsed = start.elapsed().as_secs_f64();

    // The bucket starts full: the first BURST calls pass, the first one leaving BURST - 1.
    for (i, r) in responses.iter().take(BURST).enumerate() {
        assert_allowed(r, &format!("call {i} of the burst"));
    }
    assert_eq!(int_header(&responses[0], "ratelimit-remaining"), BURST as u64 - 1);

    let limited: Vec<&Resp> = responses.iter().filter(|r| r.status == 429).collect();
    let allowed: Vec<&Resp> = responses.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        limited.len() + allowed.len(),
        BURST + N,
        "every call is either allowed or rate limited: {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let refill = (elapsed * RPS).ceil() as usize;
    assert!(
        allowed.len() <= BURST + refill,
        "{} calls allowed in {elapsed:.3} s (burst {BURST}, refill at most {refill})",
        allowed.len()
    );
    assert!(
        limited.len() >= N.saturating_sub(refill),
        "{} of {N} excess calls limited in {elapsed:.3} s",
        limited.len()
    );
    for r in &limited {
        assert_rate_limited(r);
    }
    for r in &allowed {
        assert_allowed(r, "allowed call");
    }
    assert_eq!(upstream_calls.load(Ordering::SeqCst), allowed.len(), "rate-limited calls must not reach the upstream");
}

#[test]
fn denied_calls_use_no_quota() {
    let (gw, upstream_calls) = setup("rl-denied");
    // Same tenant + subject (so the same bucket for the same tool), different roles.
    let denied = gw.mint("bob", "acme", "agent");
    let allowed = gw.mint("bob", "acme", "mcp-admin");

    for i in 0..20 {
        let r = call(&gw, &denied, "echo");
        assert_eq!(r.status, 403, "denied call {i}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["error"]["data"]["code"], "FORBIDDEN");
    }
    assert_eq!(upstream_calls.load(Ordering::SeqCst), 0);

    // The bucket is untouched: a whole burst passes, and the first call finds it full.
    let responses: Vec<Resp> = (0..BURST).map(|_| call(&gw, &allowed, "echo")).collect();
    for (i, r) in responses.iter().enumerate() {
        assert_allowed(r, &format!("allowed call {i} after 20 denied ones"));
    }
    assert_eq!(
        int_header(&responses[0], "ratelimit-remaining"),
        BURST as u64 - 1,
        "denied calls took tokens from the bucket"
    );
    assert_eq!(upstream_calls.load(Ordering::SeqCst), BURST);
}

#[test]
fn each_tool_has_its_own_bucket() {
    let (gw, _) = setup("rl-tools");
    let token = gw.mint("carol", "acme", "mcp-admin");

    for i in 0..BURST {
        assert_allowed(&call(&gw, &token, "echo"), &format!("echo call {i}"));
    }
    // Keep calling echo until its bucket refuses (at 1 call/s, 20 rapid calls cannot all pass).
    let limited =
        (0..20).map(|_| call(&gw, &token, "echo")).find(|r| r.status != 200).expect("echo was never rate limited");
    assert_rate_limited(&limited);

    // Right after echo was refused, add still has a full bucket of its own.
    let r = call(&gw, &token, "add");
    assert_allowed(&r, "first add call");
    assert_eq!(int_header(&r, "ratelimit-remaining"), BURST as u64 - 1);

    // And another subject of the same tenant is not affected by carol's echo bucket.
    let other = gw.mint("dave", "acme", "mcp-admin");
    let r = call(&gw, &other, "echo");
    assert_allowed(&r, "dave's first echo call");
    assert_eq!(int_header(&r, "ratelimit-remaining"), BURST as u64 - 1);
}
