//! Acceptance (issue 16, part 1): the approvals console. In a real headless Chromium
//! (tests/browser/approvals_console.py) an approver sees an agent's held call appear live,
//! approves it with a reason, the call runs exactly once upstream, and the page shows it
//! done; a self-approval is refused in the page and at the API. Without a browser: the live
//! hold stream, tenant approvers' scope, reasons in the audit trail, and signed webhooks.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A gateway in approver mode in front of a counting upstream whose `echo` is `financial`.
fn start(tag: &str, port: u16, extra_yaml: &str) -> Gateway {
    builder(tag, port, extra_yaml).start()
}

fn builder(tag: &str, port: u16, extra_yaml: &str) -> GatewayBuilder {
    Gateway::builder(tag)
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("FASTMCP__REST__APPROVER_ROLES", "[approver]")
        .env("FASTMCP__REST__APPROVAL_TAGS", "[financial]")
        .env("FASTMCP__ADMIN__APPROVER_ROLES", "[hold-approver]")
        .env("FASTMCP_TEST_HOOK_KEY", "hook-key-default-0123456789")
        .config(&format!(
            "mcp:\n  servers:\n    demo:\n      url: \"http://127.0.0.1:{port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: [financial]}}\n{extra_yaml}"
        ))
}

/// A held `tools/call` of `echo`: (hold id, action token).
fn hold(gw: &Gateway, token: &str, args: Value) -> (String, String) {
    let r = mcp_post(&gw.url("/mcp/demo"), Some(token), &tools_call(7, "echo", args), &[]);
    let v = r.json();
    let data = &v["error"]["data"];
    assert_eq!(data["approval_required"], true, "{v}");
    (data["hold_id"].as_str().expect("hold id").into(), data["action_token"].as_str().expect("token").into())
}

fn admin_post(gw: &Gateway, bearer: &str, path: &str, body: &Value) -> Resp {
    let auth = format!("Bearer {bearer}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    http("POST", &gw.admin_url(path), &headers, body.to_string().as_bytes())
}

/// Every audit record so far.
fn records(gw: &Gateway) -> Vec<Value> {
    let mut out = vec![];
    for e in std::fs::read_dir(gw.audit_dir()).expect("audit dir").flatten() {
        if e.path().extension().is_some_and(|x| x == "jsonl") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            out.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
        }
    }
    out
}

/// Polls `f` until it returns `Some`, for at most 30 s.
fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_approver_releases_a_held_call_in_a_real_browser() {
    let Some(python) = std::env::var_os("FASTMCP_TEST_PYTHON") else {
        eprintln!("SKIPPED an_approver_releases_a_held_call_in_a_real_browser: FASTMCP_TEST_PYTHON is not set");
        return;
    };
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: apt-get install -y chromium chromium-driver (.ci/run does)"
        );
    }
    let probe = std::process::Command::new(&python).args(["-c", "import selenium"]).output().expect("run python");
    assert!(probe.status.success(), "selenium is missing from {python:?}: run scripts/setup-test-deps.sh");

    let (port, calls) = common::audit::counting_upstream();
    let gw = start("console-browser", port, "");
    let approver = gw.mint("ops", "platform", "platform-admin");
    let agent = gw.mint("alice", "acme", "mcp-user");
    let self_approver = gw.mint("carol", "acme", "mcp-user,platform-admin");
    let artifacts = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    let screenshot = artifacts.join("approvals-console.png");
    let results = gw.dir.join("browser-results.json");
    let reason = "checked with finance: invoice-42 is real";
    let out = std::process::Command::new(&python)
        .arg(repo().join("tests/browser/approvals_console.py"))
        .args(["--admin", &gw.admin_url(""), "--gateway", &gw.url("")])
        .args(["--approver", &approver, "--agent", &agent, "--self-approver", &self_approver])
        .args(["--reason", reason])
        .arg("--screenshot")
        .arg(&screenshot)
        .arg("--results")
        .arg(&results)
        .output()
        .expect("run the browser script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser script failed:\n{stdout}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    assert!(screenshot.exists(), "screenshot at {}", screenshot.display());
    println!("approvals console screenshot: {}", screenshot.display());
    let r: Value = serde_json::from_slice(&std::fs::read(&results).expect("results")).expect("results JSON");

    // The held call ran exactly once, after the approval, for the agent's confirmation.
    assert_eq!(r["confirm_status"], 200, "{r}");
    assert!(r["confirm_result"]["content"].is_array(), "{r}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the upstream ran the approved call once");

    // The approval is audited with the approver and the reason; the requester stays `sub`.
    let hold_id = r["hold_id"].as_str().expect("hold id");
    let all = records(&gw);
    let decided = all
        .iter()
        .find(|e| e["action"] == "holds.decide" && e["decision"]["result"] == "approved")
        .unwrap_or_else(|| panic!("no approval record in {all:?}"));
    assert_eq!((decided["actor"]["sub"].as_str(), decided["sub"].as_str()), (Some("ops"), Some("alice")));
    assert_eq!(decided["reason"], reason);
    assert!(all.iter().any(|e| e["action"] == "tools.confirm" && e["decision"]["result"] == "confirmed"));
    let listed = gw.admin("GET", "/admin/holds").json();
    assert!(!listed.to_string().contains(hold_id), "the released hold is gone: {listed}");

    // The self-approval the page refused is refused at the API too, and stays pending.
    let own = r["self_hold_id"].as_str().expect("self hold id");
    assert!(r["self_refusal_text"].as_str().is_some_and(|t| t.contains("four_eyes")), "{r}");
    let refused = admin_post(&gw, &self_approver, &format!("/admin/holds/{own}/approve"), &json!({"reason": "mine"}));
    assert_eq!(refused.status, 403, "{}", String::from_utf8_lossy(&refused.body));
    let body = refused.json();
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    assert_eq!(body["error"]["details"]["reasons"], json!(["four_eyes"]));
    assert!(gw.admin("GET", "/admin/holds").json().to_string().contains(own), "still pending");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "nothing else ran");
}

/// Reads SSE events (name, data) from an open stream until `want` accepts one.
fn next_event(r: &mut BufReader<TcpStream>, mut want: impl FnMut(&str, &Value) -> bool) -> (String, Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut name, mut data) = (String::new(), String::new());
    loop {
        assert!(Instant::now() < deadline, "no matching event within 30 s");
        let mut line = String::new();
        let n = r.read_line(&mut line).expect("stream read");
        assert!(n > 0, "stream ended");
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(v) = line.strip_prefix("event: ") {
            name = v.to_string();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = v.to_string();
        } else if line.is_empty() && !data.is_empty() {
            let v: Value = serde_json::from_str(&data).expect("event JSON");
            if want(&name, &v) {
                return (name, v);
            }
            data.clear();
        }
    }
}

/// Opens `GET /admin/holds/stream` as `bearer`: the reader after the response head.
fn open_stream(gw: &Gateway, bearer: &str) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", gw.admin_port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let req = format!(
        "GET /admin/holds/stream HTTP/1.1\r\nhost: 127.0.0.1:{}\r\nauthorization: Bearer {bearer}\r\n\r\n",
        gw.admin_port
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).expect("status line");
    assert!(status.contains(" 200 "), "{status}");
    loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("head");
        if line == "\r\n" {
            return r;
        }
    }
}

#[test]
fn the_hold_stream_is_live_and_tenant_approvers_stay_in_their_tenant() {
    let (port, calls) = common::audit::counting_upstream();
    let gw = start("console-api", port, "");
    let bob = gw.mint("bob", "acme", "hold-approver");
    let gina = gw.mint("gina", "globex", "hold-approver");
    let alice = gw.mint("alice", "acme", "mcp-user");

    // The static console needs no credential and is served with a strict policy.
    let page = http("GET", &gw.admin_url("/admin/ui/"), &[], b"");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(http("GET", &gw.admin_url("/admin/ui/app.js"), &[], b"").status, 200);
    // Its data routes do.
    assert_eq!(http("GET", &gw.admin_url("/admin/holds/stream"), &[], b"").status, 401);
    let session = gw.admin_as(&bob, "GET", "/admin/session").json();
    assert_eq!((session["scope"].as_str(), session["actor"]["sub"].as_str()), (Some("tenant"), Some("bob")));
    assert!(session["policy_revision"].as_str().is_some_and(|r| !r.is_empty()), "{session}");

    let mut stream = open_stream(&gw, &bob);
    next_event(&mut stream, |n, v| n == "snapshot" && v["holds"] == json!([]));
    let (id, _token) = hold(&gw, &alice, json!({"item": "invoice-9", "password": "hunter2"}));
    let (_, created) = next_event(&mut stream, |n, v| n == "created" && v["id"] == id.as_str());
    assert_eq!((created["sub"].as_str(), created["tenant"].as_str()), (Some("alice"), Some("acme")));
    assert_eq!(created["arguments"]["item"], "invoice-9");
    assert!(created["arguments"]["password"].as_str().is_some_and(|p| p.starts_with("sha256:")), "{created}");
    assert!(!created.to_string().contains("hunter2"), "{created}");
    assert_eq!(created["risk_tags"], json!(["financial"]));
    assert_eq!(created["rules"], json!(["safety-destroy-requires-confirm"]));
    assert_eq!(created["server"], "demo");

    // Another tenant's approver neither sees nor decides it, nor uses other admin routes.
    assert_eq!(gw.admin_as(&gina, "GET", "/admin/holds").json()["holds"], json!([]));
    let r = admin_post(&gw, &gina, &format!("/admin/holds/{id}/approve"), &json!({"reason": "x"}));
    assert_eq!((r.status, r.json()["error"]["details"]["reasons"].clone()), (403, json!(["tenant_scope"])));
    let r = admin_post(&gw, &bob, "/admin/policy/reload", &json!({}));
    assert_eq!((r.status, r.json()["error"]["details"]["reasons"].clone()), (403, json!(["approver_scope"])));
    let r = admin_post(&gw, &bob, &format!("/admin/holds/{id}/approve"), &json!({"reason": "a\u{7}b"}));
    assert_eq!(r.status, 400, "control characters in a reason");

    // Its own tenant's approver approves with a reason: the stream shows it, the audit keeps it.
    let r = admin_post(&gw, &bob, &format!("/admin/holds/{id}/approve"), &json!({"reason": "known vendor"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    next_event(&mut stream, |n, v| n == "updated" && v["approved_by"] == "jwt:bob");
    let rec = until("the approval record", || {
        records(&gw).into_iter().find(|e| e["action"] == "holds.decide" && e["decision"]["result"] == "approved")
    });
    assert_eq!((rec["actor"]["kind"].as_str(), rec["reason"].as_str()), (Some("jwt_approver"), Some("known vendor")));

    // A denial drops another hold; the stream says it is gone and nothing ran.
    let (other, token) = hold(&gw, &alice, json!({"item": "invoice-10"}));
    next_event(&mut stream, |n, v| n == "created" && v["id"] == other.as_str());
    let r = admin_post(&gw, &bob, &format!("/admin/holds/{other}/deny"), &json!({"reason": "not ours"}));
    assert_eq!(r.status, 200);
    next_event(&mut stream, |n, v| n == "removed" && v["id"] == other.as_str() && v["why"] == "resolved");
    let mut confirm = tools_call(7, "echo", json!({"item": "invoice-10"}));
    confirm["params"]["_meta"] = json!({"fastmcp/action_token": token});
    let v = mcp_post(&gw.url("/mcp/demo"), Some(&alice), &confirm, &[]).json();
    assert_eq!(v["error"]["data"]["code"], "CONFLICT", "the agent is told it cannot run: {v}");
    assert!(v.to_string().contains("an approver denied this call"), "{v}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[test]
fn with_redis_state_a_hold_made_on_one_instance_shows_on_anothers_stream() {
    let redis = common::redis::RedisServer::start(&temp_dir("console-redis"));
    let (port, calls) = common::audit::counting_upstream();
    // One data dir: both instances verify the same dev keys.
    let shared = temp_dir("console-redis-data").display().to_string();
    let yaml = "admin:\n  console:\n    relist_ms: 200\n";
    let gws: Vec<Gateway> = (0..2)
        .map(|i| {
            builder(&format!("console-redis-{i}"), port, yaml)
                .env("FASTMCP_DATA_DIR", &shared)
                .env("REDIS_URL", &redis.url())
                .start()
        })
        .collect();
    let alice = gws[0].mint("alice", "acme", "mcp-user");
    let ops = gws[1].admin_jwt();
    let mut stream = open_stream(&gws[1], &ops);
    next_event(&mut stream, |n, _| n == "snapshot");
    let (id, token) = hold(&gws[0], &alice, json!({"item": "invoice-5"}));
    let (_, created) = next_event(&mut stream, |n, v| n == "created" && v["id"] == id.as_str());
    assert_eq!(created["arguments"]["item"], "invoice-5", "the view travels through Redis: {created}");
    let r = admin_post(&gws[1], &ops, &format!("/admin/holds/{id}/approve"), &json!({"reason": "ok"}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    next_event(&mut stream, |n, v| n == "updated" && v["approved_by"] == "jwt:ops");
    let mut confirm = tools_call(7, "echo", json!({"item": "invoice-5"}));
    confirm["params"]["_meta"] = json!({"fastmcp/action_token": token});
    let v = mcp_post(&gws[0].url("/mcp/demo"), Some(&alice), &confirm, &[]).json();
    assert!(v["result"]["content"].is_array(), "{v}");
    next_event(&mut stream, |n, v| n == "removed" && v["id"] == id.as_str() && v["why"] == "resolved");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// HMAC-SHA256 (RFC 2104), written out here so the test does not trust the gateway's own.
fn hmac(key: &[u8], msg: &[u8]) -> String {
    let mut k = [0u8; 64];
    k[..key.len()].copy_from_slice(key);
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(msg).finalize();
    hex::encode(Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize())
}

/// What the webhook sink received: the request head and body.
type Posted = (String, Vec<u8>);

#[test]
fn a_new_hold_is_announced_to_the_tenants_webhook_signed() {
    let seen: Arc<Mutex<Vec<Posted>>> = Arc::default();
    let rec = seen.clone();
    let sink = fake_upstream(move |head, body, s| {
        rec.lock().unwrap().push((head, body));
        let _ = write!(s, "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n");
    });
    let (port, _calls) = common::audit::counting_upstream();
    let dir = temp_dir("console-hook-key");
    let globex_key = "hook-key-globex-abcdefghijkl";
    std::fs::write(dir.join("globex.key"), format!("{globex_key}\n")).unwrap();
    let yaml = format!(
        "holds:\n  notify:\n    url: \"http://127.0.0.1:{sink}/default\"\n    secret_env: FASTMCP_TEST_HOOK_KEY\n    console_url: \"https://admin.example/admin/ui/\"\n    tenants:\n      globex: {{url: \"http://127.0.0.1:{sink}/globex\", secret_file: \"{}\"}}\n",
        dir.join("globex.key").display()
    );
    let gw = start("console-hook", port, &yaml);
    let (acme_hold, acme_token) =
        hold(&gw, &gw.mint("alice", "acme", "mcp-user"), json!({"item": "i-1", "token": "s3"}));
    let (globex_hold, _) = hold(&gw, &gw.mint("gus", "globex", "mcp-user"), json!({"item": "i-2"}));
    let got = until("two notifications", || {
        let s = seen.lock().unwrap();
        (s.len() >= 2).then(|| s.clone())
    });
    for (path, key, hold_id, tenant) in [
        ("/default", "hook-key-default-0123456789", &acme_hold, "acme"),
        ("/globex", globex_key, &globex_hold, "globex"),
    ] {
        let (head, body) = got
            .iter()
            .find(|(h, _)| h.starts_with(&format!("POST {path} ")))
            .unwrap_or_else(|| panic!("nothing POSTed to {path}: {got:?}"));
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
                .unwrap_or_else(|| panic!("no {name} in {head}"))
        };
        let ts = header("x-fastmcp-timestamp");
        assert!(ts.parse::<i64>().is_ok_and(|t| t > 1_700_000_000), "{ts}");
        let mut msg = format!("{ts}.").into_bytes();
        msg.extend_from_slice(body);
        assert_eq!(header("x-fastmcp-signature"), format!("sha256={}", hmac(key.as_bytes(), &msg)), "{path}");
        assert!(header("content-type").starts_with("application/json"));
        let v: Value = serde_json::from_slice(body).expect("JSON body");
        assert_eq!((v["event"].as_str(), v["hold_id"].as_str()), (Some("hold.created"), Some(hold_id.as_str())));
        assert_eq!((v["tenant"].as_str(), v["tool_id"].as_str()), (Some(tenant), Some("mcp:demo:echo")));
        assert_eq!(v["console_url"], "https://admin.example/admin/ui/");
        let text = String::from_utf8_lossy(body);
        assert!(!text.contains(&acme_token) && !text.contains("s3\"") && !text.contains("i-1"), "{text}");
    }
    until("the sent count", || {
        let metrics = String::from_utf8_lossy(&gw.admin("GET", "/metrics").body).to_string();
        metrics.contains("fastmcp_holds_notify_total{result=\"sent\"} 2").then_some(())
    });
}
