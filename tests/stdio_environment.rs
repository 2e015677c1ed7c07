//! A stdio MCP server starts with a cleared environment: it sees `PATH` and exactly the
//! variables the operator listed for it (`MCP_<NAME>_ENV`, `mcp.servers.<name>.env`), none of
//! the gateway's own — secrets included.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Variables a shell or the Python interpreter may create by itself in the child.
const SELF_MADE: &[&str] = &["PWD", "SHLVL", "_", "LC_CTYPE"];

/// Polls the REST catalog until `tool_id` is listed (the server was discovered).
pub fn wait_catalog(gw: &Gateway, token: &str, tool_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let auth = format!("Bearer {token}");
    loop {
        let cat = http("GET", &gw.url("/tool-catalog"), &[("authorization", &auth)], b"").json();
        if cat["tools"].as_array().is_some_and(|t| t.iter().any(|m| m["toolId"] == tool_id)) {
            return;
        }
        assert!(Instant::now() < deadline, "{tool_id} never discovered: {cat}\n{}", gw.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_stdio_server_sees_only_path_and_the_listed_variables() {
    let script = repo().join("tests/py/stdio_env_server.py");
    let gw = Gateway::builder("stdio-env")
        .env("MCP_ENVY_TRANSPORT", "stdio")
        .env("MCP_ENVY_COMMAND", &format!("{} {}", python().display(), script.display()))
        .env("MCP_ENVY_TRUSTED", "true")
        .env("MCP_ENVY_ENV", "ENVY_MODE=listed,ENVY_EMPTY=")
        // Secrets of the gateway process: the gateway's own provider credential and one that
        // only looks like a secret.
        .env("PIPEDRIVE_API_TOKEN", "pd-gateway-secret-0000")
        .env("FASTMCP_TEST_SECRET", "hunter2-gateway-only")
        .start();
    let admin = gw.mint("root", "acme", "mcp-admin");
    wait_catalog(&gw, &admin, "mcp:envy:env");
    let r = http(
        "POST",
        &gw.url("/tools/mcp:envy:env/invoke"),
        &[("authorization", &format!("Bearer {admin}")), ("content-type", "application/json")],
        b"{}",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let text = r.json()["result"]["content"][0]["text"].as_str().expect("env text").to_string();
    let seen: serde_json::Map<String, Value> = serde_json::from_str(&text).expect("env JSON");
    println!("the stdio server saw: {:?}", seen.keys().collect::<Vec<_>>());

    assert_eq!(seen.get("ENVY_MODE"), Some(&json!("listed")));
    assert_eq!(seen.get("ENVY_EMPTY"), Some(&json!("")));
    assert_eq!(seen.get("PATH").and_then(Value::as_str), std::env::var("PATH").ok().as_deref(), "PATH is kept");
    for key in seen.keys() {
        assert!(
            ["ENVY_MODE", "ENVY_EMPTY", "PATH"].contains(&key.as_str()) || SELF_MADE.contains(&key.as_str()),
            "{key} reached the stdio server"
        );
    }
    for secret in ["pd-gateway-secret-0000", "hunter2-gateway-only"] {
        assert!(!text.contains(secret), "a gateway secret reached the stdio server");
    }
    // The gateway's own environment (the test runner's plus the builder's) stayed behind.
    for name in gw.env.iter().map(|(k, _)| k.as_str()).chain(["HOME", "CARGO_MANIFEST_DIR"]) {
        assert!(!seen.contains_key(name), "{name} reached the stdio server");
    }
}
