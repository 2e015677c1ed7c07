//! Acceptance: every decision (allow, deny, hold, 429, 401, upstream failure) is in the hash
//! chain; `fastmcp audit verify` passes, and names the line after an edit or a deletion.

mod common;

use common::*;
use serde_json::json;

#[test]
fn every_decision_is_chained_and_tampering_is_named() {
    let port = json_ok_upstream();
    let dead = free_port();
    let mut gw = Gateway::builder("audit")
        // Statuses from the error table (the operator's `http` mode), which this test checks.
        .env("FASTMCP__MCP__REFUSAL_STATUS", "http")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("RATE_BUCKET_BURST", "1")
        .env("RATE_LIMIT_DEFAULT_RPS", "0.001")
        .config(&format!(
            "mcp:\n  servers:\n    demo:\n      url: \"http://127.0.0.1:{port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: [], add: [], read_secret: []}}\n    down:\n      url: \"http://127.0.0.1:{dead}/mcp\"\n      discover: false\n      tool_tags: {{echo: []}}\n"
        ))
        .start();
    let user = gw.mint("alice", "acme", "mcp-user");
    let url = gw.url("/mcp/demo");
    assert_eq!(mcp_post(&url, Some(&user), &tools_call(1, "echo", json!({})), &[]).status, 200);
    assert_eq!(mcp_post(&url, Some(&user), &tools_call(2, "echo", json!({})), &[]).status, 429);
    assert_eq!(mcp_post(&url, Some(&user), &tools_call(3, "read_secret", json!({})), &[]).status, 403);
    let held = mcp_post(&url, Some(&user), &tools_call(4, "delete_item", json!({"item": 1})), &[]);
    assert_eq!(held.json()["error"]["data"]["code"], "CONFIRMATION_REQUIRED");
    assert_eq!(mcp_post(&url, Some("garbage"), &tools_call(5, "echo", json!({})), &[]).status, 401);
    let failed = mcp_post(
        &gw.url("/mcp/down"),
        Some(&gw.mint("root", "acme", "mcp-admin")),
        &tools_call(6, "echo", json!({})),
        &[],
    );
    assert_eq!(failed.status, 502);
    assert_eq!(failed.json()["error"]["data"]["code"], "PROVIDER_ERROR");
    gw.stop();

    let dir = gw.audit_dir().display().to_string();
    let out = gw.cli(&["audit", "verify", &dir]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));

    // The instance's chain file (the directory also holds the index and checkpoint files).
    let files: Vec<_> = std::fs::read_dir(gw.audit_dir())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("audit-") && n.ends_with(".jsonl"))
        })
        .collect();
    assert_eq!(files.len(), 1, "one chain file: {files:?}");
    let file = files[0].clone();
    let text = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    for needle in [
        "\"result\":\"allow\"",
        "\"result\":\"rate_limited\"",
        "\"result\":\"deny\"",
        "\"result\":\"hold\"",
        "\"result\":\"unauthenticated\"",
        "\"error_code\":\"PROVIDER_ERROR\"",
    ] {
        assert!(text.contains(needle), "audit lacks {needle}:\n{text}");
    }
    assert!(!text.contains(&user), "the agent's token never reaches the audit trail");

    // Edit one line: the deny becomes an allow.
    let deny_line = lines.iter().position(|l| l.contains("\"result\":\"deny\"")).expect("deny line");
    let mut edited: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    edited[deny_line] = edited[deny_line].replace("\"allow\":false", "\"allow\":true");
    std::fs::write(&file, edited.join("\n") + "\n").expect("write");
    let out = gw.cli(&["audit", "verify", &dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let name = file.file_name().expect("name").to_string_lossy().to_string();
    assert!(stdout.contains(&format!("{name}:{}", deny_line + 1)), "verify must name the edited line: {stdout}");

    // Delete a line instead.
    let mut deleted: Vec<&str> = lines.clone();
    deleted.remove(1);
    std::fs::write(&file, deleted.join("\n") + "\n").expect("write");
    let out = gw.cli(&["audit", "verify", &dir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains(&format!("{name}:2")), "verify must name where the chain breaks: {stdout}");
}
