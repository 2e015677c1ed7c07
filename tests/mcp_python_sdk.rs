//! Acceptance: the official Python MCP SDK (client and server, both protocol eras) through
//! `/mcp/demo`: filtered tools/list, allowed call, denied call, held call that runs exactly
//! once after confirmation.

mod common;

use common::*;
use serde_json::Value;

fn start() -> (DemoServer, Gateway) {
    let dir = temp_dir("sdk-demo");
    let demo = DemoServer::start(&dir);
    let gw = Gateway::builder("sdk")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_DEMO_URL", &demo.url())
        .env("MCP_DEMO_TRUSTED", "true")
        .start();
    (demo, gw)
}

fn names(v: &Value) -> Vec<String> {
    v["tools"].as_array().expect("tools").iter().map(|t| t.as_str().unwrap_or("").to_string()).collect()
}

fn flow(mode: &str) {
    let (demo, mut gw) = start();
    let url = gw.url("/mcp/demo");
    let user = gw.mint("alice", "acme", "mcp-user");
    let admin = gw.mint("root", "acme", "mcp-admin");

    // tools/list is filtered per role.
    let listed = sdk_client(&url, &user, mode, &["list"]);
    assert_eq!(listed["ok"], true, "{listed}");
    assert_eq!(names(&listed), ["echo", "add", "delete_item"], "mcp-user must not see read_secret");
    let listed = sdk_client(&url, &admin, mode, &["list"]);
    assert_eq!(names(&listed), ["echo", "add", "read_secret", "delete_item"]);

    // Allowed call.
    let r = sdk_client(&url, &user, mode, &["call", "echo", r#"{"text":"hi"}"#]);
    assert_eq!((r["ok"].clone(), r["text"].clone()), (Value::Bool(true), Value::from("hi")), "{r}");
    assert_eq!(demo.calls("echo"), 1);

    // Denied call: a JSON-RPC error on HTTP 200 (the session survives), FORBIDDEN, the deny
    // rule named, never reaches the server.
    let r = sdk_client(&url, &user, mode, &["call", "read_secret", r#"{"name":"db"}"#]);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["data"]["code"], "FORBIDDEN");
    assert!(r["data"]["details"]["reasons"]
        .as_array()
        .expect("reasons")
        .contains(&Value::from("deny-secrets-to-users")));
    assert_eq!(demo.calls("read_secret"), 0);

    // Held call: not forwarded; an action token comes back.
    let r = sdk_client(&url, &user, mode, &["call", "delete_item", r#"{"item":"x"}"#]);
    assert_eq!(r["code"], -32010, "{r}");
    let token = r["data"]["action_token"].as_str().expect("action token").to_string();
    assert!(token.len() >= 32);
    assert!(r["data"]["expires_at"].as_str().expect("expires_at").ends_with('Z'));
    assert_eq!(demo.calls("delete_item"), 0, "a held call must not run");

    // `=` form: a URL-safe token may start with `-`, which argparse would take for an option.
    let token_arg = format!("--action-token={token}");
    // The token does not fit other arguments (and stays valid for the right ones).
    let r = sdk_client(&url, &user, mode, &["call", "delete_item", r#"{"item":"y"}"#, &token_arg]);
    assert_eq!(r["data"]["code"], "FORBIDDEN", "{r}");
    // Another subject cannot use it.
    let bob = gw.mint("bob", "acme", "mcp-user");
    let r = sdk_client(&url, &bob, mode, &["call", "delete_item", r#"{"item":"x"}"#, &token_arg]);
    assert_eq!(r["data"]["code"], "FORBIDDEN", "{r}");
    assert_eq!(demo.calls("delete_item"), 0);

    // Confirmed: runs exactly once.
    let r = sdk_client(&url, &user, mode, &["call", "delete_item", r#"{"item":"x"}"#, &token_arg]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["text"], "deleted x");
    assert_eq!(demo.calls("delete_item"), 1);
    let r = sdk_client(&url, &user, mode, &["call", "delete_item", r#"{"item":"x"}"#, &token_arg]);
    assert_eq!(r["data"]["code"], "CONFLICT", "a spent token is refused: {r}");
    assert_eq!(demo.calls("delete_item"), 1, "exactly once");

    // Every decision above is in an intact audit chain.
    gw.stop();
    let out = gw.cli(&["audit", "verify", &gw.audit_dir().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let audit = audit_text(&gw.audit_dir());
    for result in [
        "\"result\":\"allow\"",
        "\"result\":\"deny\"",
        "\"result\":\"hold\"",
        "\"result\":\"confirmed\"",
        "\"result\":\"conflict\"",
    ] {
        assert!(audit.contains(result), "audit lacks {result}");
    }
    assert!(!audit.contains(&token), "action tokens never reach the audit trail");
}

#[test]
fn sdk_modern_era_auto_mode() {
    flow("auto");
}

#[test]
fn sdk_legacy_handshake_era() {
    flow("legacy");
}
