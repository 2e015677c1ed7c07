//! A hold whose call can never run is refused when it is asked for (422), not after a human
//! confirmed or approved it: MCP `tools/call` arguments that fail the tool's discovered
//! `inputSchema`, and a REST tool whose provider is not configured.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn wait_catalog(gw: &Gateway, token: &str, tool_id: &str) {
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

fn audit(gw: &Gateway) -> Vec<Value> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(gw.audit_dir()).expect("audit dir").flatten() {
        for l in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            out.push(serde_json::from_str(l).expect("record"));
        }
    }
    out
}

fn pending_holds(gw: &Gateway) -> String {
    let text = String::from_utf8_lossy(&http("GET", &gw.admin_url("/metrics"), &[], b"").body).to_string();
    text.lines().find(|l| l.starts_with("fastmcp_holds_pending ")).unwrap_or("").to_string()
}

#[test]
fn mcp_arguments_that_fail_the_discovered_schema_are_refused_before_any_hold() {
    let dir = temp_dir("preflight-mcp-calls");
    let calls = dir.join("calls.jsonl");
    let script = repo().join("tests/py/stdio_env_server.py");
    let gw = Gateway::builder("preflight-mcp")
        .env("MCP_ENVY_TRANSPORT", "stdio")
        .env(
            "MCP_ENVY_COMMAND",
            &format!("{} {} --calls-file {}", python().display(), script.display(), calls.display()),
        )
        .start();
    let admin = gw.mint("root", "acme", "mcp-admin");
    wait_catalog(&gw, &admin, "mcp:envy:wipe");
    let url = gw.url("/mcp");
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let sid = mcp_post(&url, Some(&admin), &init, &[]).header("mcp-session-id").expect("session").to_string();
    let headers = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-11-25")];

    // `wipe` is destructive (an untrusted server): every call would be held. Bad arguments
    // are refused now, with the schema's violations, and nothing is held.
    for (args, path) in [(json!({"target": 5}), "/target"), (json!({}), ""), (json!({"target": "a", "x": 1}), "")] {
        let r = mcp_post(&url, Some(&admin), &tools_call(2, "envy__wipe", args.clone()), &headers);
        // The refusal of one call: HTTP 200 with the JSON-RPC error (-32602, the error shape).
        assert_eq!(r.status, 200, "{args}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["error"]["code"], -32602);
        let data = r.json()["error"]["data"].clone();
        assert_eq!(data["code"], "VALIDATION_ERROR", "{data}");
        let violations = data["details"]["violations"].as_array().expect("violations").clone();
        assert!(violations.iter().any(|v| v["path"] == path), "{args}: {violations:?}");
    }
    assert_eq!(pending_holds(&gw), "fastmcp_holds_pending 0");
    let refusals = audit(&gw)
        .into_iter()
        .filter(|e| e["toolId"] == "mcp:envy:wipe" && e["decision"]["result"] == "invalid")
        .count();
    assert_eq!(refusals, 3, "each refusal is recorded");

    // Valid arguments are held, and the confirmed call runs once.
    let r = mcp_post(&url, Some(&admin), &tools_call(3, "envy__wipe", json!({"target": "disk"})), &headers);
    assert_eq!(r.status, 200);
    let held = r.json();
    assert_eq!(held["error"]["code"], -32010, "{held}");
    let token = held["error"]["data"]["action_token"].as_str().expect("token").to_string();
    assert!(!calls.exists(), "nothing ran yet");
    let mut confirm = tools_call(4, "envy__wipe", json!({"target": "disk"}));
    confirm["params"]["_meta"] = json!({"fastmcp/action_token": token});
    let r = mcp_post(&url, Some(&admin), &confirm, &headers);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let ran = std::fs::read_to_string(&calls).unwrap_or_default();
    assert_eq!(ran.lines().collect::<Vec<_>>(), [r#"{"target": "disk"}"#], "the held call ran once");
}

#[test]
fn a_rest_hold_whose_provider_is_not_configured_is_refused_at_invoke_time() {
    // No Google Ads credential and no developer token are configured.
    let gw = Gateway::builder("preflight-rest").start();
    let fin = gw.mint("fin", "acme", "finance-write");
    let r = http(
        "POST",
        &gw.url("/tools/ads:createCampaign/invoke"),
        &[("authorization", &format!("Bearer {fin}")), ("content-type", "application/json")],
        json!({"name": "Spring", "budget": 5000, "customer_id": "1234567890"}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    let e = r.json();
    assert_eq!(e["error"]["code"], "VALIDATION_ERROR");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("credential") && message.contains("nothing was held"), "{message}");
    assert!(e["error"]["corr_id"].as_str().is_some());
    assert!(e.get("action_token").is_none() && !r.body.windows(12).any(|w| w == b"action_token"));
    assert_eq!(pending_holds(&gw), "fastmcp_holds_pending 0");
    assert!(audit(&gw).iter().any(|x| x["toolId"] == "ads:createCampaign" && x["decision"]["result"] == "invalid"));
}
