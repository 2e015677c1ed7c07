//! Acceptance (issue 12): honest under faults. Redis killed mid-run: `fail_open` keeps
//! answering (limits per instance, counted), `fail_closed` answers 503 with the error shape
//! and forwards nothing; Redis restarted: shared again without restarting the gateways; a
//! Redis that stops answering (SIGSTOP) costs a request the timeout, not a hang.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::audit::metric;
use common::redis::RedisServer;
use common::*;
use serde_json::json;

const BURST: usize = 5;

fn counting_upstream() -> (u16, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    let port = fake_upstream(move |_, body, s| {
        if String::from_utf8_lossy(&body).contains("tools/call") {
            c.fetch_add(1, Ordering::SeqCst);
        }
        let b = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#;
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
    });
    (port, n)
}

fn gateways(tag: &str, n: usize, port: u16, redis: &RedisServer, redis_yaml: &str) -> Vec<Gateway> {
    let shared = temp_dir(&format!("{tag}-data"));
    let yaml = format!(
        "mcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: []}}\n{redis_yaml}"
    );
    (0..n)
        .map(|i| {
            Gateway::builder(&format!("{tag}-{i}"))
                .env("FASTMCP_DATA_DIR", &shared.display().to_string())
                .env("FASTMCP__MCP__REFUSAL_STATUS", "http")
                .env("RATE_LIMIT_DEFAULT_RPS", "0.01")
                .env("RATE_BUCKET_BURST", &BURST.to_string())
                .env("REDIS_URL", &redis.url())
                .config(&yaml)
                .start()
        })
        .collect()
}

fn call(gw: &Gateway, token: &str) -> Resp {
    mcp_post(&gw.url("/mcp/up"), Some(token), &tools_call(1, "echo", json!({"text": "hi"})), &[])
}

/// `n` calls alternating over `gws`: their statuses.
fn burst(gws: &[&Gateway], token: &str, n: usize) -> Vec<u16> {
    (0..n).map(|i| call(gws[i % gws.len()], token).status).collect()
}

fn allowed(statuses: &[u16]) -> usize {
    statuses.iter().filter(|s| **s == 200).count()
}

/// Polls `/ready` until its `redis_up` is `up` (bounded).
fn wait_redis(gw: &Gateway, up: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = gw.admin("GET", "/ready");
        if r.json()["redis_up"] == up {
            return;
        }
        assert!(Instant::now() < deadline, "redis_up never became {up}: {}", String::from_utf8_lossy(&r.body));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Commands Redis ran since `config resetstat`, by name, without the health pings and the
/// test's own `info`/`config`.
fn commands_besides_health(redis: &RedisServer) -> Vec<(String, u64)> {
    redis
        .cli(&["info", "commandstats"])
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.strip_prefix("calls=")?.split(',').next()?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .filter(|(n, _)| !matches!(n.as_str(), "ping" | "info" | "config|resetstat" | "config"))
        .collect()
}

#[test]
fn fail_open_serves_from_memory_per_instance_and_shares_again_after_a_restart() {
    let dir = temp_dir("faults-open");
    let mut redis = RedisServer::start(&dir);
    let (port, upstream) = counting_upstream();
    let gws = gateways("faults-open", 2, port, &redis, "state:\n  redis:\n    on_error: fail_open\n");
    let (a, b) = (&gws[0], &gws[1]);
    let token = a.mint("alice", "acme", "mcp-admin");

    let shared = burst(&[a, b], &token, 2 * BURST);
    assert_eq!(allowed(&shared), BURST, "one shared bucket over both instances: {shared:?}");

    redis.kill();
    let on_a = burst(&[a], &token, 2 * BURST);
    let on_b = burst(&[b], &token, 2 * BURST);
    println!("redis down, fail_open: A {on_a:?}, B {on_b:?}");
    assert!(on_a.iter().chain(&on_b).all(|s| *s == 200 || *s == 429), "no 5xx");
    assert_eq!(allowed(&on_a), BURST, "A limits on its own");
    assert_eq!(allowed(&on_b), BURST, "B limits on its own");
    let fallbacks = metric(a, "fastmcp_state_fallback_total{kind=\"limits\"}") as u64;
    assert!(fallbacks >= (2 * BURST) as u64, "every call served from memory is counted: {fallbacks}");
    assert!(a.log().contains("redis unreachable"), "the transition is logged");
    assert_eq!(a.admin("GET", "/ready").status, 200, "fail_open: ready without Redis");

    redis.restart();
    wait_redis(a, true);
    wait_redis(b, true);
    let again = burst(&[a, b], &token, 2 * BURST);
    assert_eq!(allowed(&again), BURST, "shared again (a new bucket in the restarted Redis): {again:?}");
    assert!(a.log().contains("redis reachable again"));
    assert_eq!(upstream.load(Ordering::SeqCst), 4 * BURST, "the upstream ran exactly the allowed calls");
}

#[test]
fn fail_closed_refuses_with_503_and_forwards_nothing_then_recovers() {
    let dir = temp_dir("faults-closed");
    let mut redis = RedisServer::start(&dir);
    let (port, upstream) = counting_upstream();
    // The audit trail's Redis Stream sink (its own thread, off the request path) is off here:
    // the count below is of the requests' own commands.
    let gws = gateways(
        "faults-closed",
        1,
        port,
        &redis,
        "state:\n  redis:\n    timeout_ms: 300\naudit:\n  redis:\n    enabled: false\n",
    );
    let gw = &gws[0];
    let token = gw.mint("alice", "acme", "mcp-admin");
    assert_eq!(call(gw, &token).status, 200);
    assert_eq!(gw.admin("GET", "/ready").status, 200);

    // The hot path: an allowed tools/call with no hold costs one Redis command (the limit
    // script), nothing else.
    redis.cli(&["config", "resetstat"]);
    for _ in 0..4 {
        assert_eq!(call(gw, &token).status, 200);
    }
    let mut commands = commands_besides_health(&redis);
    commands.sort();
    println!("Redis commands for 4 allowed calls: {commands:?}");
    // One EVALSHA per call; TIME, GET and SET are that script's own (Redis counts them too).
    let expected: Vec<(String, u64)> = ["evalsha", "get", "set", "time"].iter().map(|c| (c.to_string(), 4)).collect();
    assert_eq!(commands, expected, "one round trip per call");

    redis.kill();
    let r = call(gw, &token);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["error"]["data"]["code"], "UNAVAILABLE", "{body}");
    assert!(body["error"]["data"]["corr_id"].as_str().is_some_and(|c| !c.is_empty()), "{body}");
    assert!(!body.to_string().contains("redis://"), "no connection details in the answer: {body}");
    assert_eq!(upstream.load(Ordering::SeqCst), 5, "nothing forwarded");
    wait_redis(gw, false);
    assert_eq!(gw.admin("GET", "/ready").status, 503, "fail_closed: not ready without Redis");

    redis.restart();
    wait_redis(gw, true);
    assert_eq!(gw.admin("GET", "/ready").status, 200);
    assert_eq!(call(gw, &token).status, 200, "served again without a restart");
    assert_eq!(upstream.load(Ordering::SeqCst), 6);

    // A Redis that stops answering: each request waits the timeout (300 ms), then 503.
    redis.pause();
    let started = Instant::now();
    let statuses: Vec<u16> = (0..3).map(|_| call(gw, &token).status).collect();
    let took = started.elapsed();
    redis.resume();
    println!("SIGSTOPped Redis: {statuses:?} in {took:?} for 3 calls (timeout 300 ms)");
    assert_eq!(statuses, [503, 503, 503]);
    assert!(took < Duration::from_secs(20), "bounded by the timeout, not hanging: {took:?}");
    assert_eq!(upstream.load(Ordering::SeqCst), 6, "nothing forwarded while Redis was stopped");
    wait_redis(gw, true);
    assert_eq!(call(gw, &token).status, 200);
}
