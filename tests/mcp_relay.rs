//! Acceptance: an upstream server's own requests to the client (sampling, elicitation) are
//! relayed through the federated `/mcp` on the client's session, decided by policy as
//! `mcp.client.<method>`, with the official Python SDK 2.x client (2025-11-25 sessions)
//! answering them, in front of server-everything over HTTP (forwarded by pingora) and over
//! stdio (run by the gateway's client). A server only offers the tools that need a
//! capability to a session whose client declared it.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn names(v: &Value) -> Vec<String> {
    v["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools in {v}"))
        .iter()
        .map(|t| t.as_str().unwrap_or("").into())
        .collect()
}

fn audit(gw: &Gateway) -> Vec<Value> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(gw.audit_dir()).unwrap() {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap_or_default();
        out.extend(text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()));
    }
    out
}

#[test]
fn upstream_sampling_is_relayed_to_the_federated_client_and_decided_by_policy() {
    let dir = temp_dir("relay");
    let everything = EverythingServer::start(&dir);
    let entry = repo().join("tests/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let tags = "{echo: [], trigger-sampling-request: [], trigger-elicitation-request: []}";
    let gw = Gateway::builder("relay")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/relay_policies.yml").display().to_string())
        .env("MCP_EVERYTHING_URL", &everything.url())
        .env("FASTMCP__MCP__SERVERS__EVERYTHING__TOOL_TAGS", tags)
        .env("MCP_LOCAL_TRANSPORT", "stdio")
        .env("MCP_LOCAL_COMMAND", &format!("node {} stdio", entry.display()))
        .env("FASTMCP__MCP__SERVERS__LOCAL__TOOL_TAGS", tags)
        .start();
    wait_discovered(&gw, &["everything", "local"], Duration::from_secs(30));
    let url = gw.url("/mcp");
    let admin = gw.mint("root", "acme", "mcp-admin");
    let sample = ["--sample", "the model says hi"];

    // Declaring nothing: the servers offer no sampling tool (as they would directly).
    let listed = names(&sdk_client(&url, &admin, "legacy", &["list"]));
    assert!(listed.contains(&"everything__echo".to_string()), "{listed:?}");
    assert!(!listed.iter().any(|t| t.contains("trigger-sampling-request")), "{listed:?}");
    // A client that declares sampling on its session sees it on both servers; elicitation
    // tools only where it declared elicitation.
    let listed = names(&sdk_client(&url, &admin, "legacy", &[&sample[..], &["list"]].concat()));
    for tool in ["everything__trigger-sampling-request", "local__trigger-sampling-request"] {
        assert!(listed.contains(&tool.to_string()), "{tool} in {listed:?}");
    }
    assert!(!listed.iter().any(|t| t.contains("trigger-elicitation-request")), "{listed:?}");
    let listed = names(&sdk_client(&url, &admin, "legacy", &["--elicit", "accept", "list"]));
    assert!(listed.contains(&"everything__trigger-elicitation-request".to_string()), "{listed:?}");
    // A stateless (2026-07-28) caller has no session to be asked on: nothing is declared.
    let listed = names(&sdk_client(&url, &admin, "auto", &[&sample[..], &["list"]].concat()));
    assert!(!listed.iter().any(|t| t.contains("trigger-sampling-request")), "{listed:?}");

    for server in ["everything", "local"] {
        // The call: the server's sampling request reaches the client on the call's stream,
        // the client's answer reaches the server, and the tool's result carries it.
        let tool = format!("{server}__trigger-sampling-request");
        let args = json!({"prompt": format!("hello relay {server}"), "maxTokens": 100}).to_string();
        let r = sdk_client(&url, &admin, "legacy", &[&sample[..], &["call", &tool, &args]].concat());
        assert_eq!((r["ok"].clone(), r["is_error"].clone()), (json!(true), json!(false)), "{r}");
        assert!(r["text"].as_str().unwrap_or("").contains("the model says hi"), "the answer in the result: {r}");
        let sampled = r["sampled"].to_string();
        assert!(sampled.contains(&format!("hello relay {server}")), "the client was asked: {r}");

        // Denied by policy (13 tokens): the client is never asked, the server gets an error
        // and the call ends with the server's own error, without hanging.
        let args = json!({"prompt": "forbidden", "maxTokens": 13}).to_string();
        let r = sdk_client(&url, &admin, "legacy", &[&sample[..], &["--timeout", "60", "call", &tool, &args]].concat());
        assert_ne!(r["kind"], "timeout", "{r}");
        assert_eq!(r["sampled"], json!([]), "the client saw no request: {r}");
        assert_eq!(r["is_error"], true, "the server's error ends the call: {r}");
        assert!(r["text"].as_str().unwrap_or("").contains("does not relay"), "{r}");
    }

    // Elicitation is relayed the same way (the client's own callback answers it).
    let r = sdk_client(
        &url,
        &admin,
        "legacy",
        &["--elicit", "decline", "call", "everything__trigger-elicitation-request", "{}"],
    );
    assert_eq!(r["ok"], true, "{r}");
    assert!(r["text"].as_str().unwrap_or("").contains("declined"), "the server saw the client's answer: {r}");
    assert_eq!(r["elicited"].as_array().map(Vec::len), Some(1), "{r}");

    // Audited: each relayed request (allowed and denied) and each relayed answer, on the server.
    let records = audit(&gw);
    for server in ["everything", "local"] {
        let asked: Vec<&Value> = records
            .iter()
            .filter(|r| r["message"] == "server_request" && r["server"] == server)
            .filter(|r| r["action"] == "mcp.client.sampling/createMessage")
            .collect();
        let results: Vec<&str> = asked.iter().filter_map(|r| r["decision"]["result"].as_str()).collect();
        assert_eq!(results, ["allow", "deny"], "{server}: {asked:?}");
        assert!(asked[1]["decision"]["reasons"].to_string().contains("deny-thirteen-token-samples"), "{:?}", asked[1]);
        let answered = records
            .iter()
            .filter(|r| r["action"] == "mcp.response" && r["server"] == server && r["decision"]["result"] == "allow")
            .count();
        let expected = if server == "everything" { 2 } else { 1 };
        assert_eq!(answered, expected, "{server}: each answer, recorded on the server that asked");
    }
    let elicited = records.iter().filter(|r| r["action"] == "mcp.client.elicitation/create").count();
    assert_eq!(elicited, 1, "the relayed elicitation is recorded");
    let out = gw.cli(&["audit", "verify", &gw.audit_dir().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
