//! Shadow policy rollout against a running gateway: a candidate that denies one tool shows
//! exactly the affected calls as differences while live traffic stays allowed (the upstream
//! sees every call); a broken candidate is refused and changes nothing; promote applies the
//! candidate like a reload; `fastmcp policy diff` replays the run's audit trail offline and
//! prints the decisions that change.

mod common;

use std::time::{Duration, Instant};

use common::audit::metric;
use common::lenient::Lenient;
use common::*;
use serde_json::{json, Value};

const DENY_SECRET: &str = "
  - id: shadow-deny-secret
    effect: deny
    when:
      action: tools.invoke
      resource.toolId: \"mcp:demo:secret\"
";

fn candidate_policies() -> String {
    let live = std::fs::read_to_string(repo().join("policies/policies.yml")).expect("policies.yml");
    format!("{live}{DENY_SECRET}")
}

fn post_bundle(gw: &Gateway, bundle: &Value) -> Resp {
    let auth = format!("Bearer {}", gw.admin_jwt());
    let headers = [("authorization", auth.as_str()), ("content-type", "application/json")];
    http("POST", &gw.admin_url("/admin/policy/shadow"), &headers, bundle.to_string().as_bytes())
}

/// The diff once the shadow has evaluated `n` decisions (bounded wait).
fn diff_after(gw: &Gateway, n: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = gw.admin("GET", "/admin/policy/shadow/diff");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let d = r.json();
        if d["evaluated"].as_u64().unwrap_or(0) >= n || Instant::now() > deadline {
            return d;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn calls_of(up: &Lenient, tool: &str) -> usize {
    up.log()
        .iter()
        .filter(|r| r.rpc_method().as_deref() == Some("tools/call"))
        .filter(|r| r.json().is_some_and(|j| j["params"]["name"] == tool))
        .count()
}

#[test]
fn shadow_diff_promote_and_offline_replay() {
    let up = Lenient::start();
    let gw = Gateway::builder("shadow")
        .config(&format!(
            "policy: {{watch_interval_ms: 0}}\nmcp:\n  servers:\n    demo:\n      url: \"{}\"\n      discover: false\n      tool_tags: {{echo: [], secret: []}}\n",
            up.url()
        ))
        .start();
    let token = gw.mint("alice", "acme", "mcp-admin");
    let url = gw.url("/mcp/demo");
    let live_revision = gw.admin("GET", "/ready").json()["policy_revision"].as_str().expect("revision").to_string();
    assert_eq!(gw.admin("GET", "/admin/policy/shadow/diff").status, 404, "no shadow yet");

    // The candidate denies one tool; it is compiled and tested, and live stays as it was.
    let r = post_bundle(&gw, &json!({"policies.yml": candidate_policies()}));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let candidate = r.json()["candidate_revision"].as_str().expect("candidate").to_string();
    assert_ne!(candidate, live_revision);
    assert_eq!(gw.admin("GET", "/ready").json()["policy_revision"], live_revision.as_str());

    // Live traffic: every call is allowed and reaches the upstream.
    for (i, tool) in ["echo", "secret", "echo", "secret", "echo"].iter().enumerate() {
        let r = mcp_post(&url, Some(&token), &tools_call(i as u64, tool, json!({"password": "hunter2"})), &[]);
        assert_eq!(r.status, 200, "live allows {tool}: {}", String::from_utf8_lossy(&r.body));
        assert!(r.json().get("result").is_some(), "live allows {tool}: {}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!((calls_of(&up, "echo"), calls_of(&up, "secret")), (3, 2), "the upstream saw every call");

    let d = diff_after(&gw, 5);
    assert_eq!(d["candidate_revision"], candidate.as_str());
    assert_eq!(d["evaluated"], 5, "{d}");
    assert_eq!(d["differing"], 2, "{d}");
    let diffs = d["differences"].as_array().expect("differences");
    assert_eq!(diffs.len(), 2);
    for x in diffs {
        assert_eq!(x["tool"], "mcp:demo:secret");
        assert_eq!((x["subject"].clone(), x["tenant"].clone()), (json!("alice"), json!("acme")));
        assert_eq!((x["live"]["allow"].clone(), x["shadow"]["allow"].clone()), (json!(true), json!(false)));
        assert!(x["shadow"]["reasons"].as_array().expect("reasons").contains(&json!("shadow-deny-secret")));
        assert_eq!(x["arguments_hash"].as_str().map(str::len), Some(64));
    }
    assert!(!d.to_string().contains("hunter2"), "arguments are kept hashed, never raw");
    let pair = |l: &str, s: &str| {
        d["counts"].as_array().expect("counts").iter().find(|c| c["live"] == l && c["shadow"] == s).expect("pair")
            ["count"]
            .clone()
    };
    assert_eq!((pair("allow", "allow"), pair("allow", "deny")), (json!(3), json!(2)));
    assert_eq!(metric(&gw, "fastmcp_policy_shadow_decisions_total{live=\"allow\",shadow=\"deny\"}"), 2.0);
    assert_eq!(metric(&gw, "fastmcp_policy_shadow_decisions_total{live=\"allow\",shadow=\"allow\"}"), 3.0);

    // Broken candidates are refused with the error shape; live and the loaded shadow stay.
    let syntax =
        json!({"policies.yml": candidate_policies(), "fastmcp/authz.rego": "package fastmcp.authz\ndecision := {"});
    let failing_test = json!({"policies.yml": candidate_policies(),
        "fastmcp/t_test.rego": "package fastmcp.t_test\nimport rego.v1\ntest_never if { false }\n"});
    for (what, bundle) in [("syntax error", syntax), ("failing test", failing_test)] {
        let r = post_bundle(&gw, &bundle);
        assert_eq!(r.status, 422, "{what}: {}", String::from_utf8_lossy(&r.body));
        let e = r.json();
        assert_eq!(e["error"]["code"], "VALIDATION_ERROR", "{what}");
        assert_eq!(e["error"]["details"]["result"], "refused");
    }
    let r = post_bundle(&gw, &json!({"../x.rego": "package x"}));
    assert_eq!(r.status, 400, "a bundle name that escapes is refused");
    assert_eq!(r.json()["error"]["code"], "BAD_REQUEST");
    assert_eq!(gw.admin("GET", "/ready").json()["policy_revision"], live_revision.as_str());
    assert_eq!(gw.admin("GET", "/admin/policy/shadow/diff").json()["candidate_revision"], candidate.as_str());
    let r = mcp_post(&url, Some(&token), &tools_call(9, "secret", json!({})), &[]);
    assert!(r.json().get("result").is_some(), "live is unchanged: {}", String::from_utf8_lossy(&r.body));

    // Admin routes need the admin credential.
    let anon = http("DELETE", &gw.admin_url("/admin/policy/shadow"), &[], b"");
    assert_eq!(anon.status, 401);

    // Promote: the candidate serves, like a reload; the shadow is cleared.
    let reloads_before = metric(&gw, "fastmcp_policy_reloads_total{result=\"ok\"}");
    let r = gw.admin("POST", "/admin/policy/shadow/promote");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["revision"], candidate.as_str());
    assert_eq!(gw.admin("GET", "/ready").json()["policy_revision"], candidate.as_str());
    assert_eq!(metric(&gw, "fastmcp_policy_reloads_total{result=\"ok\"}"), reloads_before + 1.0);
    assert_eq!(gw.admin("GET", "/admin/policy/shadow/diff").status, 404, "the shadow is cleared");
    assert_eq!(gw.admin("POST", "/admin/policy/shadow/promote").status, 404, "nothing left to promote");
    let before = calls_of(&up, "secret");
    let r = mcp_post(&url, Some(&token), &tools_call(10, "secret", json!({})), &[]);
    let e = r.json();
    assert_eq!(e["error"]["data"]["code"], "FORBIDDEN", "the promoted policy denies: {e}");
    assert!(e["error"]["data"]["details"]["reasons"]
        .as_array()
        .expect("reasons")
        .contains(&json!("shadow-deny-secret")));
    assert_eq!(calls_of(&up, "secret"), before, "a denied call never reaches the upstream");
    assert!(mcp_post(&url, Some(&token), &tools_call(11, "echo", json!({})), &[]).json().get("result").is_some());

    // Load and drop.
    assert_eq!(post_bundle(&gw, &json!({"policies.yml": candidate_policies()})).status, 200);
    assert_eq!(gw.admin("DELETE", "/admin/policy/shadow").status, 200);
    assert_eq!(gw.admin("GET", "/admin/policy/shadow/diff").status, 404);
    assert_eq!(gw.admin("DELETE", "/admin/policy/shadow").status, 404);

    // The audit trail names the promotion like a reload.
    let trail = read_trail(&gw);
    assert!(
        trail.iter().any(|r| r["action"] == "policy.reload"
            && r["decision"]["policy_revision"] == candidate.as_str()
            && r["decision"]["reasons"] == json!(["shadow_promoted"])
            && r["actor"]["sub"] == "ops"),
        "promotion recorded as a reload"
    );

    // Offline: replay the run against the embedded live policy and the candidate directory.
    let live_dir = temp_dir("shadow-live");
    let cand_dir = temp_dir("shadow-cand");
    std::fs::create_dir_all(&live_dir).expect("live dir");
    std::fs::create_dir_all(&cand_dir).expect("cand dir");
    std::fs::write(cand_dir.join("policies.yml"), candidate_policies()).expect("write");
    let subjects = live_dir.join("subjects.json");
    std::fs::write(&subjects, json!({"alice": {"roles": ["mcp-admin"]}}).to_string()).expect("write");
    let audit = gw.audit_dir();
    let out = gw.cli(&[
        "policy",
        "diff",
        "--live",
        &live_dir.display().to_string(),
        "--candidate",
        &cand_dir.display().to_string(),
        "--inputs",
        &audit.display().to_string(),
        "--subjects",
        &subjects.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "exit 0: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let changed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("CHANGED")).collect();
    let secret_calls = trail.iter().filter(|r| r["toolId"] == "mcp:demo:secret" && r["phase"] == "decision").count();
    assert_eq!(changed.len(), secret_calls, "every recorded secret call changes, nothing else: {stdout}");
    assert!(
        changed
            .iter()
            .all(|l| l.contains("tool=mcp:demo:secret") && l.contains("live=allow") && l.contains("candidate=deny")),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.contains(&format!("{secret_calls} changed ({secret_calls} allow->deny, 0 deny->allow)")),
        "{summary}"
    );
}

/// Every record of the gateway's audit files.
fn read_trail(gw: &Gateway) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(gw.audit_dir())
        .expect("audit dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| std::fs::read_to_string(f).unwrap_or_default().lines().map(String::from).collect::<Vec<_>>())
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect()
}

#[test]
fn shadow_dir_loads_at_startup_and_a_broken_one_is_refused() {
    let up = Lenient::start();
    let good = temp_dir("shadow-dir-good");
    std::fs::create_dir_all(&good).expect("dir");
    std::fs::write(good.join("policies.yml"), candidate_policies()).expect("write");
    let broken = temp_dir("shadow-dir-broken");
    std::fs::create_dir_all(broken.join("fastmcp")).expect("dir");
    std::fs::write(broken.join("fastmcp/authz.rego"), "package fastmcp.authz\ndecision := {").expect("write");
    let config = |dir: &std::path::Path| {
        format!(
            "policy: {{watch_interval_ms: 0, shadow_dir: \"{}\", shadow_max_bundle_bytes: 64}}\nmcp:\n  servers:\n    demo:\n      url: \"{}\"\n      discover: false\n      tool_tags: {{echo: [], secret: []}}\n",
            dir.display(),
            up.url()
        )
    };

    let gw = Gateway::builder("shadow-dir").config(&config(&good)).start();
    let d = gw.admin("GET", "/admin/policy/shadow/diff");
    assert_eq!(d.status, 200, "the candidate of policy.shadow_dir is loaded");
    let token = gw.mint("alice", "acme", "mcp-admin");
    let r = mcp_post(&gw.url("/mcp/demo"), Some(&token), &tools_call(1, "secret", json!({})), &[]);
    assert!(r.json().get("result").is_some(), "live still allows");
    let d = diff_after(&gw, 1);
    assert_eq!(d["differing"], 1, "{d}");
    // A bundle over policy.shadow_max_bundle_bytes is refused before it is parsed.
    let r = post_bundle(&gw, &json!({"policies.yml": "x".repeat(100)}));
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "PAYLOAD_TOO_LARGE");
    drop(gw);

    let gw = Gateway::builder("shadow-dir-broken").config(&config(&broken)).start();
    assert_eq!(gw.admin("GET", "/admin/policy/shadow/diff").status, 404, "a broken candidate is not loaded");
    let r = mcp_post(
        &gw.url("/mcp/demo"),
        Some(&gw.mint("alice", "acme", "mcp-admin")),
        &tools_call(2, "secret", json!({})),
        &[],
    );
    assert!(r.json().get("result").is_some(), "the gateway serves the live policy");
}
