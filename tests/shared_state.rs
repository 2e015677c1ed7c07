//! Acceptance (issue 12): several gateway instances on one Redis — here a real 3-master Redis
//! Cluster on loopback — share rate limits, holds and idempotency records, exactly under
//! races. The upstream counts what actually ran.

mod common;

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::redis::RedisCluster;
use common::*;
use serde_json::{json, Value};

/// What the fake upstream saw: MCP `tools/call`s by tool, and Pipedrive deals created.
#[derive(Default)]
struct Counts {
    calls: Mutex<HashMap<String, usize>>,
    deals: AtomicUsize,
    /// While set, a deal request waits here for the test to let it go.
    gate: Mutex<Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>>,
}

impl Counts {
    fn calls(&self, tool: &str) -> usize {
        self.calls.lock().unwrap().get(tool).copied().unwrap_or(0)
    }
}

fn reply(s: &mut TcpStream, status: &str, body: &Value) {
    use std::io::Write;
    let b = body.to_string();
    let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
}

/// One upstream for both: an MCP server at `/mcp` and Pipedrive at `/api/v1`.
fn upstream() -> (u16, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    let port = fake_upstream(move |head, body, s| {
        if head.starts_with("POST /api/v1/deals") {
            let gate = c.gate.lock().unwrap().take();
            if let Some((arrived, release)) = gate {
                let _ = arrived.send(());
                let _ = release.recv();
            }
            let n = c.deals.fetch_add(1, Ordering::SeqCst) + 1;
            return reply(s, "201 Created", &json!({"success": true, "data": {"id": n, "title": "deal"}}));
        }
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if msg["method"] == "tools/call" {
            let tool = msg["params"]["name"].as_str().unwrap_or("").to_string();
            *c.calls.lock().unwrap().entry(tool).or_default() += 1;
        }
        reply(
            s,
            "200 OK",
            &json!({"jsonrpc": "2.0", "id": msg["id"], "result": {"content": [{"type": "text", "text": "ok"}]}}),
        );
    });
    (port, counts)
}

const RPS: f64 = 0.01;
const BURST: usize = 100;

/// `n` gateways sharing `redis_yaml`'s Redis, one data dir (so one dev signing key: a token
/// minted on one verifies on all) and the upstream on `port`.
fn gateways(tag: &str, n: usize, port: u16, redis_yaml: &str, redis_url: &str) -> Vec<Gateway> {
    let shared = temp_dir(&format!("{tag}-data"));
    let yaml = format!(
        "mcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: [], wipe: [destructive], pay: [financial]}}\n\
providers:\n  http:\n    pipedrive_base_url: \"http://127.0.0.1:{port}/api/v1\"\n  credentials:\n    pipedrive: {{kind: static, secret: \"pd\"}}\n{redis_yaml}"
    );
    (0..n)
        .map(|i| {
            Gateway::builder(&format!("{tag}-{i}"))
                .env("FASTMCP_DATA_DIR", &shared.display().to_string())
                .env("FASTMCP__MCP__REFUSAL_STATUS", "http")
                .env("RATE_LIMIT_DEFAULT_RPS", &RPS.to_string())
                .env("RATE_BUCKET_BURST", &BURST.to_string())
                .env("REDIS_URL", redis_url)
                .config(&yaml)
                .start()
        })
        .collect()
}

fn call(gw: &Gateway, token: &str, tool: &str, action_token: Option<&str>) -> Resp {
    let mut body = tools_call(1, tool, json!({"text": "hi"}));
    if let Some(t) = action_token {
        body["params"]["_meta"] = json!({"fastmcp/action_token": t});
    }
    mcp_post(&gw.url("/mcp/up"), Some(token), &body, &[])
}

fn post(gw: &Gateway, path: &str, token: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str()), ("content-type", "application/json")];
    headers.extend_from_slice(extra);
    http("POST", &gw.url(path), &headers, body.to_string().as_bytes())
}

fn header(r: &Resp, name: &str) -> u64 {
    r.header(name).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} missing on {}", r.status))
}

/// 1000 racing calls over three instances: exactly the bucket (plus the refill the elapsed
/// time allows) run, the rest are 429 with their headers.
fn shared_limit(gws: &[Gateway], counts: &Counts) {
    let token = gws[0].mint("racer", "acme", "mcp-admin");
    let statuses: Mutex<Vec<Resp>> = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for t in 0..40 {
            let (token, statuses) = (&token, &statuses);
            s.spawn(move || {
                for i in 0..25 {
                    let r = call(&gws[(t + i) % gws.len()], token, "echo", None);
                    statuses.lock().unwrap().push(r);
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let all = statuses.into_inner().unwrap();
    assert_eq!(all.len(), 1000);
    let allowed = all.iter().filter(|r| r.status == 200).count();
    let refused: Vec<&Resp> = all.iter().filter(|r| r.status == 429).collect();
    let most = BURST + (elapsed * RPS).ceil() as usize;
    println!(
        "shared limit: {allowed} allowed of 1000 over {} instances in {elapsed:.2} s (bucket {BURST}, {RPS}/s: {BURST}..={most} allowed)",
        gws.len()
    );
    assert!((BURST..=most).contains(&allowed), "allowed {allowed}, expected {BURST}..={most}");
    assert_eq!(allowed + refused.len(), 1000, "every other call is a 429");
    for r in refused {
        assert!(header(r, "retry-after") >= 1);
        assert_eq!(header(r, "ratelimit-limit"), BURST as u64);
        assert_eq!(header(r, "ratelimit-remaining"), 0);
        assert_eq!(r.json()["error"]["data"]["code"], "RATE_LIMITED");
    }
    assert_eq!(counts.calls("echo"), allowed, "the upstream ran exactly the allowed calls");
}

/// The hold's action token from a held call's answer (and its hold id).
fn held(r: &Resp) -> (String, String) {
    let v = r.json();
    let data = &v["error"]["data"];
    assert_eq!(data["code"], "CONFIRMATION_REQUIRED", "{v}");
    (data["action_token"].as_str().expect("token").into(), data["hold_id"].as_str().unwrap_or_default().into())
}

/// A hold issued on A, 20 racing confirms over A and B: one execution, 19 conflicts. Then a
/// hold of approver mode: approved on B, confirmed on A.
fn shared_holds(gws: &[Gateway], counts: &Counts) {
    let token = gws[0].mint("holder", "acme", "mcp-admin");
    let (action, _) = held(&call(&gws[0], &token, "wipe", None));
    let listed = gws[1].admin("GET", "/admin/holds");
    assert_eq!(listed.status, 200);
    assert!(
        listed.body.windows(6).any(|w| w == b"holder"),
        "B lists A's hold: {}",
        String::from_utf8_lossy(&listed.body)
    );
    let results: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for i in 0..20 {
            let (token, action, results) = (&token, &action, &results);
            s.spawn(move || {
                let r = call(&gws[i % 2], token, "wipe", Some(action));
                results.lock().unwrap().push(r.status);
            });
        }
    });
    let results = results.into_inner().unwrap();
    let ok = results.iter().filter(|s| **s == 200).count();
    let conflict = results.iter().filter(|s| **s == 409).count();
    println!("20 racing confirms over 2 instances: {ok} ran, {conflict} got 409");
    assert_eq!((ok, conflict), (1, 19), "{results:?}");
    assert_eq!(counts.calls("wipe"), 1, "exactly one execution upstream");
}

/// Approver mode across instances: held on A, approved on B through the admin API, confirmed
/// on A.
fn approve_elsewhere(gws: &[Gateway], counts: &Counts) {
    let token = gws[0].mint("payer", "acme", "mcp-admin");
    let before = counts.calls("pay");
    let r = call(&gws[0], &token, "pay", None);
    let (action, hold_id) = held(&r);
    assert!(r.json()["error"]["data"]["approval_required"] == true, "{}", r.json());
    let own = call(&gws[0], &token, "pay", Some(&action));
    assert_eq!(own.status, 403, "not approved yet: {}", String::from_utf8_lossy(&own.body));
    let approved = gws[1].admin("POST", &format!("/admin/holds/{hold_id}/approve"));
    assert_eq!(approved.status, 200, "{}", String::from_utf8_lossy(&approved.body));
    let ran = call(&gws[0], &token, "pay", Some(&action));
    assert_eq!(ran.status, 200, "{}", String::from_utf8_lossy(&ran.body));
    assert_eq!(counts.calls("pay"), before + 1);
}

/// The same Idempotency-Key on A then B: one execution and an identical replay; another
/// payload 422; a duplicate while the first is in flight on the other instance 409.
fn shared_idempotency(gws: &[Gateway], counts: &Counts) {
    let sales = gws[0].mint("seller", "acme", "sales-write");
    let deal = json!({"title": "Big deal", "value": 100});
    let path = "/tools/pipedrive:createDeal/invoke";
    let first = post(&gws[0], path, &sales, &deal, &[("idempotency-key", "k-1")]);
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    let again = post(&gws[1], path, &sales, &deal, &[("idempotency-key", "k-1")]);
    assert_eq!(again.status, 200, "{}", String::from_utf8_lossy(&again.body));
    assert_eq!(again.header("x-idempotent-replay"), Some("true"));
    assert_eq!(again.body, first.body, "the replay is identical");
    assert_eq!(counts.deals.load(Ordering::SeqCst), 1, "one execution");
    let changed = post(&gws[1], path, &sales, &json!({"title": "Other"}), &[("idempotency-key", "k-1")]);
    assert_eq!(changed.status, 422, "{}", String::from_utf8_lossy(&changed.body));

    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    *counts.gate.lock().unwrap() = Some((arrived_tx, release_rx));
    let first = std::thread::scope(|s| {
        let first = s.spawn(|| post(&gws[0], path, &sales, &deal, &[("idempotency-key", "k-2")]));
        arrived_rx.recv().expect("the first call reached Pipedrive");
        let dup = post(&gws[1], path, &sales, &deal, &[("idempotency-key", "k-2")]);
        assert_eq!(dup.status, 409, "{}", String::from_utf8_lossy(&dup.body));
        assert_eq!(dup.json()["error"]["code"], "CONFLICT");
        release_tx.send(()).expect("release");
        first.join().expect("first")
    });
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(counts.deals.load(Ordering::SeqCst), 2);
}

#[test]
fn three_instances_on_a_redis_cluster_share_limits_holds_and_idempotency() {
    let dir = temp_dir("cluster");
    let cluster = RedisCluster::start(&dir);
    let (port, counts) = upstream();
    let redis_yaml = format!(
        "state:\n  redis:\n    cluster: true\n    nodes: {}\n    timeout_ms: 2000\nrest:\n  approver_roles: [approver]\n  approval_tags: [financial]\n",
        cluster.seeds_yaml()
    );
    let mut gws = gateways("cluster", 3, port, &redis_yaml, &cluster.url());
    for g in &gws {
        let ready = g.admin("GET", "/ready");
        assert_eq!(ready.json()["state"], "redis", "{}", String::from_utf8_lossy(&ready.body));
    }
    shared_limit(&gws, &counts);
    shared_holds(&gws, &counts);
    approve_elsewhere(&gws, &counts);
    shared_idempotency(&gws, &counts);
    let spread = cluster.key_counts();
    println!("keys per cluster node: {spread:?}");
    assert!(spread.iter().filter(|n| **n > 0).count() >= 2, "keys spread over the nodes: {spread:?}");
    for g in &mut gws {
        g.stop();
    }
}
