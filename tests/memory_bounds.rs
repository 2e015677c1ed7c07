//! Every per-caller store is bounded in bytes and no caller can starve another: the database
//! answer, the idempotency store, held inputs and federated sessions are each driven past
//! their bound against the real binary, and the gateway's resident memory (VmRSS of the child
//! process) is printed and checked against a stated, generous ceiling.

mod common;

use common::*;
use serde_json::{json, Value};

/// The RSS ceiling every test states: a debug build idles at a few tens of MiB; without the
/// bounds these floods hold hundreds of MiB (300 rows of 1 MB blobs alone are a 400 MB answer).
const RSS_CEILING_KIB: u64 = 300 * 1024;

/// The gateway's resident set size in KiB, from `/proc/<pid>/status`.
fn rss_kib(gw: &Gateway) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("VmRSS line")
}

fn check_rss(gw: &Gateway, what: &str) {
    let rss = rss_kib(gw);
    println!(
        "{what}: gateway VmRSS {} KiB ({:.1} MiB), ceiling {} MiB",
        rss,
        rss as f64 / 1024.0,
        RSS_CEILING_KIB / 1024
    );
    assert!(rss < RSS_CEILING_KIB, "{what}: RSS {rss} KiB over the ceiling");
}

fn post(gw: &Gateway, path: &str, token: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str()), ("content-type", "application/json")];
    headers.extend_from_slice(extra);
    http("POST", &gw.url(path), &headers, body.to_string().as_bytes())
}

fn query(gw: &Gateway, token: &str, sql: &str, key: Option<&str>) -> Resp {
    let extra: Vec<(&str, &str)> = key.map(|k| vec![("idempotency-key", k)]).unwrap_or_default();
    post(gw, "/tools/database:executeQuery/invoke", token, &json!({"query": sql}), &extra)
}

fn audit_results(gw: &Gateway) -> Vec<String> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(gw.audit_dir()).expect("audit dir").flatten() {
        for l in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            let v: Value = serde_json::from_str(l).expect("record");
            out.push(v["decision"]["result"].as_str().unwrap_or_default().to_string());
        }
    }
    out
}

const GENEROUS_LIMITS: &str =
    "rate_limit: {default_rps: 10000, burst: 10000, plumbing_rps: 10000, plumbing_burst: 10000}\n";

#[test]
fn database_answers_are_bounded_in_bytes_with_the_default_limit() {
    let gw = Gateway::builder("mem-db").config(GENEROUS_LIMITS).start();
    let analyst = gw.mint("ana", "acme", "data-analyst");
    // 300 rows of 1 MB blobs: 400 MB of base64 without a byte cap.
    let sql = "SELECT x, randomblob(1000000) FROM \
               (WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300) SELECT x FROM n)";
    for round in 0..5 {
        let r = query(&gw, &analyst, sql, None);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body[..r.body.len().min(500)]));
        assert!(r.body.len() < (4 << 20) + 4096, "round {round}: a {} byte answer", r.body.len());
        let v = r.json();
        assert_eq!(v["result"]["truncated"], true);
        let rows = v["result"]["row_count"].as_u64().expect("row_count");
        assert!((1..300).contains(&rows), "{rows} rows");
        println!("round {round}: {rows} rows, {} bytes", r.body.len());
    }
    check_rss(&gw, "database");
}

#[test]
fn idempotency_answers_are_bounded_per_caller_and_a_replay_never_reruns() {
    let gw = Gateway::builder("mem-idem")
        .config(&format!(
            "{GENEROUS_LIMITS}rest: {{idempotency_max_bytes: 4194304, idempotency_max_bytes_per_subject: 1048576, \
             idempotency_max_answer_bytes: 262144}}\n"
        ))
        .start();
    let admin = gw.mint("dba", "acme", "data-admin");
    let bob = gw.mint("bob", "acme", "data-analyst");

    // An answer over the per-answer bound is not stored; its replay says so and does not
    // insert a second row.
    let insert = "INSERT INTO products (name, price) VALUES ('big', 1) RETURNING id, hex(randomblob(300000))";
    let r = query(&gw, &admin, insert, Some("big-1"));
    assert_eq!(r.status, 200);
    let again = query(&gw, &admin, insert, Some("big-1"));
    assert_eq!(again.status, 409, "{}", String::from_utf8_lossy(&again.body));
    let e = again.json();
    assert_eq!(e["error"]["code"], "CONFLICT");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not run again") && message.contains("idempotency_max_answer_bytes"), "{message}");
    let count = query(&gw, &admin, "SELECT count(*) FROM products WHERE name = 'big'", None).json();
    assert_eq!(count["result"]["rows"][0][0], 1, "the write ran once");

    // Another caller's answer, stored before the flood.
    let mine = query(&gw, &bob, "SELECT 'bob' AS who", Some("bob-1"));
    assert_eq!(mine.status, 200);

    // The flood: 200 answers of ~200 KB by one caller (40 MB without a bound).
    let big_select = "SELECT hex(randomblob(100000))";
    for i in 0..200 {
        let r = query(&gw, &admin, big_select, Some(&format!("flood-{i}")));
        assert_eq!(r.status, 200, "flood {i}: {}", String::from_utf8_lossy(&r.body[..r.body.len().min(300)]));
    }
    // Its oldest answers were dropped (a replay is refused, never re-run), the newest replay.
    let oldest = query(&gw, &admin, big_select, Some("flood-0"));
    assert_eq!(oldest.status, 409);
    assert!(oldest.json()["error"]["message"].as_str().unwrap_or_default().contains("memory bounds"));
    let newest = query(&gw, &admin, big_select, Some("flood-199"));
    assert_eq!(newest.status, 200);
    assert_eq!(newest.header("x-idempotent-replay"), Some("true"));
    // The other caller's answer is still there.
    let theirs = query(&gw, &bob, "SELECT 'bob' AS who", Some("bob-1"));
    assert_eq!(theirs.status, 200);
    assert_eq!(theirs.header("x-idempotent-replay"), Some("true"), "one caller cannot push out another's answers");
    assert!(audit_results(&gw).iter().filter(|r| *r == "conflict").count() >= 2, "the refusals are recorded");
    check_rss(&gw, "idempotency");
}

/// A gateway with `/mcp/demo` in front of an upstream that accepts anything; `echo` is an
/// untrusted server's tool, hence destructive and held.
fn holds_gateway() -> (Gateway, u16) {
    let upstream = json_ok_upstream();
    let gw = Gateway::builder("mem-holds")
        .config(&format!(
            "{GENEROUS_LIMITS}holds: {{max_input_bytes: 65536, max_bytes_per_subject: 262144}}\n\
             mcp:\n  servers:\n    demo:\n      url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n"
        ))
        .start();
    (gw, upstream)
}

#[test]
fn held_inputs_are_bounded_per_hold_and_per_subject() {
    let (gw, _upstream) = holds_gateway();
    let url = gw.url("/mcp/demo");
    let alice = gw.mint("alice", "acme", "mcp-admin");
    let bob = gw.mint("bob", "acme", "mcp-admin");
    let call = |n: usize| tools_call(1, "echo", json!({"text": "x".repeat(n)}));

    // One input over the per-hold bound: 413 at hold time, nothing held, recorded.
    let r = mcp_post(&url, Some(&alice), &call(70_000), &[]);
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let data = &r.json()["error"]["data"];
    assert_eq!(data["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(data["details"]["limit_bytes"], 65536);
    assert!(data["message"].as_str().unwrap_or_default().contains("nothing was held"), "{data}");
    assert!(audit_results(&gw).contains(&"too_large".to_string()));

    // Holds of 60 KB until the caller's share is full, then 413 for every further one.
    let mut held = 0;
    let mut refused = 0;
    for _ in 0..200 {
        let r = mcp_post(&url, Some(&alice), &call(60_000), &[]);
        match r.status {
            200 => {
                assert_eq!(r.json()["error"]["code"], -32010, "a hold");
                assert_eq!(refused, 0, "no hold after the share was full");
                held += 1;
            }
            413 => {
                let message = r.json()["error"]["data"]["message"].as_str().unwrap_or_default().to_string();
                assert!(message.contains("max_bytes_per_subject"), "{message}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.body)),
        }
    }
    assert_eq!(held, 4, "262144 bytes hold four 60 KB inputs");
    assert_eq!(refused, 196);
    // Another caller still holds.
    let r = mcp_post(&url, Some(&bob), &call(60_000), &[]);
    assert_eq!((r.status, r.json()["error"]["code"].clone()), (200, json!(-32010)));
    let metrics = String::from_utf8_lossy(&http("GET", &gw.admin_url("/metrics"), &[], b"").body).to_string();
    assert!(metrics.lines().any(|l| l == "fastmcp_holds_pending 5"), "five holds pending");
    check_rss(&gw, "holds");
}

fn initialize(gw: &Gateway, token: &str) -> Resp {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    mcp_post(&gw.url("/mcp"), Some(token), &init, &[])
}

fn ping(gw: &Gateway, token: &str, session: &str) -> u16 {
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    mcp_post(
        &gw.url("/mcp"),
        Some(token),
        &ping,
        &[("mcp-session-id", session), ("mcp-protocol-version", "2025-11-25")],
    )
    .status
}

#[test]
fn federated_sessions_are_bounded_per_principal_and_in_total() {
    let upstream = json_ok_upstream();
    let gw = Gateway::builder("mem-sessions")
        .config(&format!(
            "{GENEROUS_LIMITS}mcp:\n  max_sessions_per_principal: 3\n  max_sessions: 5\n  servers:\n    demo:\n      \
             url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n"
        ))
        .start();
    let token = |sub: &str| gw.mint(sub, "acme", "mcp-admin");
    let (alice, bob, carol, dave) = (token("alice"), token("bob"), token("carol"), token("dave"));
    let session = |r: &Resp| r.header("mcp-session-id").map(str::to_string);

    // Alice fills her quota and goes past it: her least recently used session ends.
    let mut alices = Vec::new();
    for _ in 0..4 {
        let r = initialize(&gw, &alice);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        alices.push(session(&r).expect("a session id"));
    }
    assert_eq!(ping(&gw, &alice, &alices[0]), 404, "her oldest session was ended");
    for s in &alices[1..] {
        assert_eq!(ping(&gw, &alice, s), 200);
    }
    // Another principal is not affected by her quota.
    let r = initialize(&gw, &bob);
    assert_eq!(r.status, 200, "bob initializes while alice is at her quota");
    let bobs = session(&r).expect("bob's session");
    assert_eq!(initialize(&gw, &carol).status, 200);
    // The table is full (3 + 1 + 1): a new principal is refused with the error shape...
    let r = initialize(&gw, &dave);
    assert_eq!(r.status, 503);
    let data = &r.json()["error"]["data"];
    assert_eq!(data["code"], "UNAVAILABLE");
    assert!(data["corr_id"].as_str().is_some());
    // ...while a principal at its quota still gets one, at the expense of its own oldest.
    for _ in 0..300 {
        assert_eq!(initialize(&gw, &alice).status, 200);
    }
    assert_eq!(ping(&gw, &bob, &bobs), 200, "alice never ends bob's session");
    let records = audit_results(&gw);
    assert!(records.contains(&"unavailable".to_string()), "the refusal is recorded");
    assert!(records.iter().filter(|r| *r == "allow").count() >= 300, "every initialize is decided and recorded");
    check_rss(&gw, "sessions");
}
