//! Acceptance (issue 10, item 2): the admin plane is authenticated. No credential → 401 with
//! a Bearer challenge; a wrong one → 401; a JWT without an admin role → 403; a foreign Host or
//! a cross-site Origin → 403; a `text/plain` or form POST → 415 (nothing happens); an approver
//! approving its own hold → 403 on the admin API and on REST confirm; the approval record
//! names the approver; `/health`, `/ready` and `/metrics` stay open. With authentication
//! disabled only the admin token gets in, and without one nothing does.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const ADMIN_TOKEN: &str = "adm-0123456789abcdef-xyz";

fn audit_lines(gw: &Gateway) -> Vec<Value> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(gw.audit_dir()).expect("audit dir").flatten() {
        for l in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            out.push(serde_json::from_str(l).expect("audit JSON"));
        }
    }
    out
}

fn body(r: &Resp) -> String {
    String::from_utf8_lossy(&r.body).to_string()
}

/// The gateway in front of a fake Google Ads (`ads:createCampaign` is `financial`) in
/// approver mode; the fake counts the calls that reach it.
fn approver_gateway(tag: &str) -> (Gateway, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::Write;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = calls.clone();
    let ads = fake_upstream(move |_, _, s| {
        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let b = json!({"results": [{"resourceName": "customers/1234567890/campaigns/42"}]}).to_string();
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
    });
    let yaml = format!(
        "providers:\n  http:\n    google_ads_base_url: \"http://127.0.0.1:{ads}\"\n    google_ads_developer_token: \"d\"\n    google_ads_customer_id: \"1234567890\"\n  credentials:\n    ads: {{kind: static, secret: \"ads-secret\"}}\nrest:\n  approver_roles: [approver]\n"
    );
    let gw = Gateway::builder(tag).config(&yaml).env("FASTMCP_ADMIN_TOKEN", ADMIN_TOKEN).start();
    (gw, calls)
}

fn post(gw: &Gateway, path: &str, token: &str, body: &Value) -> Resp {
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    http("POST", &gw.url(path), &headers, body.to_string().as_bytes())
}

/// Invokes the financial tool as `who`: (hold id, action token).
fn hold(gw: &Gateway, who: &str, name: &str) -> (String, String) {
    let r = post(gw, "/tools/ads:createCampaign/invoke", who, &json!({"name": name, "budget": 5}));
    assert_eq!(r.status, 202, "{}", body(&r));
    let b = r.json();
    assert_eq!(b["approval_required"], true, "{b}");
    (b["hold_id"].as_str().expect("hold id").into(), b["action_token"].as_str().expect("token").into())
}

fn approved_by(gw: &Gateway, id: &str) -> Value {
    let holds = gw.admin("GET", "/admin/holds").json();
    holds["holds"].as_array().expect("holds").iter().find(|h| h["id"] == id).expect("pending")["approved_by"].clone()
}

#[test]
fn the_admin_api_needs_a_credential_and_refuses_browsers() {
    let (gw, calls) = approver_gateway("admin-auth");
    let agent = gw.mint("fin-agent", "acme", "finance-write");
    let (id, _token) = hold(&gw, &agent, "A");
    let approve = format!("/admin/holds/{id}/approve");
    let json_ct = ("content-type", "application/json");

    // Open routes: no credential needed.
    for path in ["/health", "/ready", "/metrics"] {
        let r = http("GET", &gw.admin_url(path), &[], b"");
        assert_eq!(r.status, 200, "{path}: {}", body(&r));
    }

    // No credential: 401 with a Bearer challenge and the error shape, on every other route.
    for (method, path) in [
        ("GET", "/admin/holds"),
        ("GET", "/admin/mcp/servers"),
        ("POST", approve.as_str()),
        ("POST", "/admin/policy/reload"),
    ] {
        let r = http(method, &gw.admin_url(path), &[json_ct], b"");
        assert_eq!(r.status, 401, "{method} {path}: {}", body(&r));
        assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{method} {path}");
        let b = r.json();
        assert_eq!(b["error"]["code"], "UNAUTHORIZED", "{b}");
        assert_eq!(b["error"]["corr_id"].as_str(), r.header("x-correlation-id"), "{b}");
    }

    // Wrong credentials: 401; a valid JWT without an admin role: 403.
    let forged = format!("{}x", gw.admin_jwt());
    for wrong in ["not-a-token", "adm-0123456789abcdef-xy", forged.as_str()] {
        let r = gw.admin_as(wrong, "GET", "/admin/holds");
        assert_eq!(r.status, 401, "{wrong}: {}", body(&r));
        assert!(r.header("www-authenticate").is_some_and(|v| v.contains("invalid_token")));
        assert!(!body(&r).contains(wrong), "the credential is never echoed");
    }
    let r = gw.admin_as(&agent, "GET", "/admin/holds");
    assert_eq!(r.status, 403, "{}", body(&r));
    assert_eq!(r.json()["error"]["details"]["reasons"], json!(["admin_role_required"]));
    let basic = http("GET", &gw.admin_url("/admin/holds"), &[("authorization", &format!("Basic {ADMIN_TOKEN}"))], b"");
    assert_eq!(basic.status, 401);

    // The admin token and a platform-admin JWT both get in.
    assert_eq!(gw.admin_as(ADMIN_TOKEN, "GET", "/admin/holds").status, 200);
    assert_eq!(gw.admin("GET", "/admin/holds").status, 200);

    // DNS rebinding and cross-site requests, even carrying a valid credential: 403.
    let auth = format!("Bearer {}", gw.admin_jwt());
    let r = http("GET", &gw.admin_url("/admin/holds"), &[("host", "evil.example:9901"), ("authorization", &auth)], b"");
    assert_eq!(r.status, 403, "{}", body(&r));
    assert_eq!(r.json()["error"]["code"], "FORBIDDEN");
    let cross = [("origin", "https://evil.example"), ("authorization", auth.as_str()), json_ct];
    let r = http("POST", &gw.admin_url(&approve), &cross, b"{}");
    assert_eq!(r.status, 403, "{}", body(&r));
    assert_eq!(http("GET", &gw.admin_url("/metrics"), &[("host", "evil.example")], b"").status, 403);
    // A same-host page (the operator's own tooling on loopback) is not cross-site.
    let local = [("origin", "http://localhost:3000"), ("authorization", auth.as_str())];
    assert_eq!(http("GET", &gw.admin_url("/admin/holds"), &local, b"").status, 200);

    // Simple requests a browser sends cross-site without a preflight: 415, nothing happens.
    for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"] {
        let r = http("POST", &gw.admin_url(&approve), &[("content-type", ct), ("authorization", &auth)], b"x=1");
        assert_eq!(r.status, 415, "{ct}: {}", body(&r));
        assert_eq!(r.json()["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    }
    let r = http("POST", &gw.admin_url(&approve), &[("authorization", &auth)], b"");
    assert_eq!(r.status, 415, "no content type at all: {}", body(&r));
    let r = http("POST", &gw.admin_url("/admin/policy/reload"), &[("content-type", "text/plain")], b"");
    assert_eq!(r.status, 415, "{}", body(&r));
    assert_eq!(approved_by(&gw, &id), Value::Null, "no refused request approved the hold");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);

    // Every refusal above is on the record; none names an actor it did not authenticate.
    let recs = audit_lines(&gw);
    let refused =
        |result: &str| recs.iter().filter(|r| r["decision"]["result"] == result && r.get("actor").is_none()).count();
    assert!(refused("unauthenticated") >= 8, "{recs:?}");
    assert!(refused("host_refused") >= 3);
    assert!(refused("invalid") >= 5);
    let no_role = recs.iter().find(|r| r["decision"]["reasons"] == json!(["admin_role_required"])).expect("403 record");
    assert_eq!(no_role["outcome"]["status"], 403);
    assert!(!recs.iter().any(|r| r.to_string().contains(ADMIN_TOKEN)), "the admin token never reaches the audit");
    assert!(!gw.log().contains(ADMIN_TOKEN), "nor the log");
}

#[test]
fn four_eyes_on_every_door_and_the_record_names_the_approver() {
    let (gw, calls) = approver_gateway("admin-four-eyes");
    let runs = || calls.load(std::sync::atomic::Ordering::SeqCst);
    // An approver who is also a platform admin asks for a financial call.
    let boss = gw.mint("fin-boss", "acme", "finance-write,approver,platform-admin");
    let (id, token) = hold(&gw, &boss, "Own");

    // Door: REST confirm as an approver of its own hold.
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &boss, &json!({"action_token": token}));
    assert_eq!(r.status, 403, "an approver confirmed its own hold: {}", body(&r));
    assert!(r.json()["error"]["details"]["reasons"].as_array().unwrap().contains(&json!("awaiting_approval")));
    assert_eq!(runs(), 0);

    // Admin API: approving its own hold.
    let r = gw.admin_as(&boss, "POST", &format!("/admin/holds/{id}/approve"));
    assert_eq!(r.status, 403, "{}", body(&r));
    assert_eq!(r.json()["error"]["details"]["reasons"], json!(["four_eyes"]));
    assert_eq!(approved_by(&gw, &id), Value::Null);

    // Someone else approves it; the requester's confirm then runs it once.
    let r = gw.admin("POST", &format!("/admin/holds/{id}/approve"));
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(approved_by(&gw, &id), "jwt:ops");
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &boss, &json!({"action_token": token}));
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(runs(), 1);

    // Another approver confirms someone else's hold directly; the admin token denies one.
    let (_, other) = hold(&gw, &boss, "Other");
    let peer = gw.mint("peer", "acme", "approver");
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &peer, &json!({"action_token": other}));
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(runs(), 2);
    let (dropped, _) = hold(&gw, &boss, "Dropped");
    let r = gw.admin_as(ADMIN_TOKEN, "POST", &format!("/admin/holds/{dropped}/deny"));
    assert_eq!(r.status, 200, "{}", body(&r));

    // A policy reload names its operator.
    let r = gw.admin("POST", "/admin/policy/reload");
    assert_eq!(r.status, 200, "{}", body(&r));

    let recs = audit_lines(&gw);
    let decided: Vec<&Value> = recs.iter().filter(|r| r["action"] == "holds.decide").collect();
    let refused = decided.iter().find(|r| r["decision"]["reasons"] == json!(["four_eyes"])).expect("four-eyes record");
    assert_eq!(refused["actor"], json!({"kind": "jwt", "sub": "fin-boss", "tenant": "acme"}));
    assert_eq!(refused["outcome"]["status"], 403);
    let approval = decided.iter().find(|r| r["decision"]["result"] == "approved").expect("approval record");
    assert_eq!(approval["actor"], json!({"kind": "jwt", "sub": "ops", "tenant": "platform"}), "{approval}");
    assert_eq!(approval["sub"], "fin-boss", "sub stays the requester");
    assert_eq!(approval["tenant"], "acme");
    assert_eq!(approval["toolId"], "ads:createCampaign");
    let denial = decided.iter().find(|r| r["decision"]["result"] == "rejected").expect("denial record");
    assert_eq!(denial["actor"]["kind"], "admin_token");
    let reload = recs.iter().find(|r| r["action"] == "policy.reload").expect("reload record");
    assert_eq!(reload["actor"]["sub"], "ops", "{reload}");
    let confirm = recs.iter().find(|r| r["action"] == "tools.confirm" && r["decision"]["result"] == "deny");
    assert!(confirm.is_some_and(|c| c["sub"] == "fin-boss"), "the refused self-confirm is recorded");
    let verify = gw.cli(&["audit", "verify", &gw.audit_dir().display().to_string()]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

#[test]
fn with_authentication_disabled_only_the_admin_token_gets_in() {
    let gw = Gateway::builder("admin-noauth")
        .env("FASTMCP__AUTH__ENABLED", "false")
        .env("FASTMCP_ADMIN_TOKEN", ADMIN_TOKEN)
        .start();
    assert_eq!(gw.admin_as(ADMIN_TOKEN, "GET", "/admin/holds").status, 200);
    let jwt = gw.mint("ops", "platform", "platform-admin");
    assert_eq!(gw.admin_as(&jwt, "GET", "/admin/holds").status, 401, "no JWT is verified: not an admin");
    assert_eq!(http("GET", &gw.admin_url("/admin/holds"), &[], b"").status, 401);
    assert_eq!(http("GET", &gw.admin_url("/metrics"), &[], b"").status, 200);

    // Without a token: fail closed (and the log says why).
    let gw = Gateway::builder("admin-noauth-notoken").env("FASTMCP__AUTH__ENABLED", "false").start();
    let r = gw.admin_as(ADMIN_TOKEN, "POST", "/admin/policy/reload");
    assert_eq!(r.status, 401, "{}", body(&r));
    assert!(body(&r).contains("no admin token is configured"), "{}", body(&r));
    assert!(gw.log().contains("NO ONE"), "{}", gw.log());
    assert_eq!(http("GET", &gw.admin_url("/health"), &[], b"").status, 200);
}

#[test]
fn a_weak_admin_token_file_refuses_to_start() {
    let dir = temp_dir("admin-weak-token");
    let file = dir.join("admin.token");
    std::fs::write(&file, "weak-secret\n").expect("token file");
    let stderr = dir.join("stderr.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .arg("serve")
        .current_dir(&dir)
        .env("FASTMCP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("FASTMCP_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("FASTMCP_DATA_DIR", dir.join("data"))
        .env("AUDIT_WORM_DIR", dir.join("audit"))
        .env("FASTMCP__ADMIN__TOKEN_FILE", &file)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&stderr).expect("stderr")))
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("started with a weak admin token");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("admin.token_file"), "{err}");
    assert!(!err.contains("weak-secret"), "never prints the token: {err}");
}
