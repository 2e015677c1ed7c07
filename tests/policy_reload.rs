//! Hot reload against a running gateway: a broken policy is refused (decisions unchanged,
//! error metric, file:line in the answer), a fixed one applies without a restart, and the
//! file watcher picks changes up by itself.

mod common;

use std::time::{Duration, Instant};

use common::audit::metric;
use common::*;
use serde_json::json;

fn reload(gw: &Gateway) -> Resp {
    gw.admin("POST", "/admin/policy/reload")
}

#[test]
fn broken_policy_is_refused_and_a_fix_applies_without_restart() {
    let upstream = json_ok_upstream();
    let dir = temp_dir("reload-src");
    std::fs::create_dir_all(dir.join("rego/fastmcp")).expect("dirs");
    let authz = std::fs::read_to_string(repo().join("rego/fastmcp/authz.rego")).expect("authz");
    std::fs::write(dir.join("rego/fastmcp/authz.rego"), &authz).expect("write");
    let policies = std::fs::read_to_string(repo().join("tests/fixtures/policies.yml")).expect("policies");
    std::fs::write(dir.join("policies.yml"), &policies).expect("write");

    let gw = Gateway::builder("reload")
        .env("FASTMCP_REGO_DIR", &dir.join("rego").display().to_string())
        .env("FASTMCP_POLICIES", &dir.join("policies.yml").display().to_string())
        .config(&format!(
            "policy: {{watch_interval_ms: 0}}\nmcp:\n  servers:\n    demo:\n      url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n      tool_tags: {{echo: []}}\n"
        ))
        .start();
    let token = gw.mint("alice", "acme", "mcp-user");
    let call = tools_call(1, "echo", json!({}));
    let url = gw.url("/mcp/demo");
    assert_eq!(mcp_post(&url, Some(&token), &call, &[]).status, 200);
    let ready = http("GET", &gw.admin_url("/ready"), &[], b"").json();
    let first_revision = ready["policy_revision"].as_str().expect("revision").to_string();

    // A syntax error: refused with file:line, decisions unchanged, counted.
    std::fs::write(dir.join("rego/fastmcp/authz.rego"), authz.replace("default allow := false", "default allow := "))
        .expect("write");
    let r = reload(&gw);
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    let message = r.json()["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(message.contains("authz.rego:"), "the error names file:line: {message}");
    assert_eq!(mcp_post(&url, Some(&token), &call, &[]).status, 200, "the old policy keeps serving");
    assert_eq!(metric(&gw, "fastmcp_policy_reloads_total{result=\"error\"}"), 1.0);
    let ready = http("GET", &gw.admin_url("/ready"), &[], b"").json();
    assert_eq!(ready["policy_revision"], first_revision.as_str());

    // Fixed Rego plus a data change that takes mcp.demo away from mcp-user: applied at once.
    std::fs::write(dir.join("rego/fastmcp/authz.rego"), &authz).expect("write");
    std::fs::write(dir.join("policies.yml"), policies.replace("mcp-user: [\"mcp.demo\", ", "mcp-user: ["))
        .expect("write");
    let r = reload(&gw);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"], "applied");
    let denied = mcp_post(&url, Some(&token), &call, &[]);
    // The refusal of one call: HTTP 200 with the JSON-RPC error (the session survives).
    assert_eq!(denied.status, 200);
    assert_eq!(denied.json()["error"]["data"]["code"], "FORBIDDEN");
    let reasons = denied.json()["error"]["data"]["details"]["reasons"].to_string();
    assert!(reasons.contains("missing_scope:mcp.demo"), "{reasons}");
    assert_eq!(metric(&gw, "fastmcp_policy_reloads_total{result=\"ok\"}"), 1.0);
    assert_eq!(reload(&gw).json()["result"], "unchanged");
}

#[test]
fn the_watcher_applies_changes_by_itself() {
    let dir = temp_dir("watch-src");
    std::fs::write(
        dir.join("policies.yml"),
        std::fs::read_to_string(repo().join("tests/fixtures/policies.yml")).expect("read"),
    )
    .expect("write");
    let gw = Gateway::builder("watch")
        .env("FASTMCP_POLICIES", &dir.join("policies.yml").display().to_string())
        .config("policy: {watch_interval_ms: 50}\n")
        .start();
    let before = http("GET", &gw.admin_url("/ready"), &[], b"").json()["policy_revision"].clone();
    let mut text = std::fs::read_to_string(dir.join("policies.yml")).expect("read");
    text.push_str("\n  - id: added-by-test\n    effect: deny\n    when: {action: nothing}\n");
    std::fs::write(dir.join("policies.yml"), text).expect("write");
    // Bounded poll for the watcher's reload (not a fixed sleep).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = http("GET", &gw.admin_url("/ready"), &[], b"").json()["policy_revision"].clone();
        if now != before {
            break;
        }
        assert!(Instant::now() < deadline, "watcher never applied the change");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(metric(&gw, "fastmcp_policy_reloads_total{result=\"ok\"}"), 1.0);
}

#[test]
fn a_deleted_policy_file_changes_no_decision_and_counts_a_failed_reload() {
    // The operator's file: the shipped policy plus a rule that denies the database tools,
    // which the embedded copy allows.
    let dir = temp_dir("vanish-src");
    let file = dir.join("policies.yml");
    let shipped = std::fs::read_to_string(repo().join("policies/policies.yml")).expect("policies");
    let deny = "\n  - id: operator-denies-database\n    effect: deny\n    when:\n      action: tools.invoke\n      resource.provider_id: \"database\"\n";
    std::fs::write(&file, format!("{shipped}{deny}")).expect("write");
    let gw = Gateway::builder("vanish")
        .env("FASTMCP_POLICIES", &file.display().to_string())
        .config("policy: {watch_interval_ms: 50}\n")
        .start();
    let analyst = gw.mint("ana", "acme", "data-analyst");
    let list = || {
        http(
            "POST",
            &gw.url("/tools/database:listTables/invoke"),
            &[("authorization", &format!("Bearer {analyst}")), ("content-type", "application/json")],
            b"{}",
        )
    };
    let denied = list();
    assert_eq!(denied.status, 403);
    assert!(denied.json()["error"]["details"]["reasons"].to_string().contains("operator-denies-database"));

    std::fs::remove_file(&file).expect("delete the policy file");
    // The watcher notices, refuses the change and counts it (bounded poll, not a sleep).
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&gw, "fastmcp_policy_reloads_total{result=\"error\"}") < 1.0 {
        assert!(Instant::now() < deadline, "the vanished file was never counted\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(25));
    }
    let still = list();
    assert_eq!(still.status, 403, "the operator's policy keeps serving, not the embedded one");
    assert!(still.json()["error"]["details"]["reasons"].to_string().contains("operator-denies-database"));
    assert!(gw.log().contains("policy reload refused"), "logged");
    assert_eq!(metric(&gw, "fastmcp_policy_reloads_total{result=\"ok\"}"), 0.0, "nothing was swapped in");

    // Valid sources change the policy again: the file comes back without the deny rule.
    std::fs::write(&file, &shipped).expect("restore");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&gw, "fastmcp_policy_reloads_total{result=\"ok\"}") < 1.0 {
        assert!(Instant::now() < deadline, "the restored file was never applied\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(list().status, 200);
    assert_eq!(metric(&gw, "fastmcp_policy_reloads_total{result=\"error\"}"), 1.0, "the failure was counted once");
}
