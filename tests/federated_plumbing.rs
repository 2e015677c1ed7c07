//! Acceptance (issue 11): the federated `/mcp` offers logging and completions when an upstream
//! offers them, and routes them: `logging/setLevel` to every server that offers logging and
//! the caller may use (each decided and recorded like a list's fan-out), `completion/complete`
//! to the server owning the prompt or resource its `ref` names (decided there). In front of
//! server-everything (which offers both) and a lenient upstream that offers neither and logs
//! what it receives.

mod common;

use std::time::Duration;

use common::lenient::Lenient;
use common::*;
use serde_json::{json, Value};

fn audit(gw: &Gateway) -> Vec<Value> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(gw.audit_dir()).expect("audit dir").flatten() {
        for l in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            out.push(serde_json::from_str(l).expect("audit JSON"));
        }
    }
    out
}

fn initialize(gw: &Gateway, jwt: &str) -> (Value, String) {
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "plumbing-test", "version": "1"}}});
    let r = mcp_post(&gw.url("/mcp"), Some(jwt), &init, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sid = r.header("mcp-session-id").expect("session").to_string();
    (r.json()["result"].clone(), sid)
}

/// One request on session `sid`; the JSON-RPC message it was answered with (JSON or SSE).
fn rpc(gw: &Gateway, jwt: &str, sid: &str, id: u64, method: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let r =
        mcp_post(&gw.url("/mcp"), Some(jwt), &body, &[("mcp-session-id", sid), ("mcp-protocol-version", "2025-11-25")]);
    let text = String::from_utf8_lossy(&r.body).to_string();
    let msg = if r.header("content-type").unwrap_or("").starts_with("text/event-stream") {
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|m| m.get("id") == Some(&json!(id)))
            .unwrap_or_else(|| panic!("no response in {text}"))
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
    };
    (r.status, msg)
}

#[test]
fn logging_and_completions_are_offered_and_routed_to_the_servers_that_offer_them() {
    let dir = temp_dir("fed-plumbing");
    let everything = EverythingServer::start(&dir);
    let lenient = Lenient::start();
    let gw = Gateway::builder("fed-plumbing")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_EVERYTHING_URL", &everything.url())
        .env("MCP_DEMO_URL", &lenient.url())
        .start();
    wait_discovered(&gw, &["everything", "demo"], Duration::from_secs(30));
    let admin = gw.mint("root", "acme", "mcp-admin");
    let (init, sid) = initialize(&gw, &admin);
    assert_eq!(init["capabilities"]["logging"], json!({}), "{init}");
    assert_eq!(init["capabilities"]["completions"], json!({}), "{init}");

    // logging/setLevel reaches the server that offers logging, not the one that does not.
    let mark = lenient.log_len();
    let (status, r) = rpc(&gw, &admin, &sid, 2, "logging/setLevel", json!({"level": "debug"}));
    assert_eq!((status, r["result"].clone()), (200, json!({})), "{r}");
    assert!(
        lenient.log_since(mark).iter().all(|x| x.rpc_method().as_deref() != Some("logging/setLevel")),
        "a server without logging is not asked"
    );
    let records: Vec<Value> = audit(&gw)
        .into_iter()
        .filter(|a| a.to_string().contains("mcp.logging/setLevel") && a["phase"] == "decision")
        .collect();
    assert_eq!(records.len(), 1, "one decided, recorded call per server asked: {records:?}");
    assert!(records[0].to_string().contains(r#""server":"everything""#), "{}", records[0]);

    // A caller who may not use the server that offers logging is refused (one call's refusal).
    let user = gw.mint("alice", "acme", "mcp-user");
    let (_, usid) = initialize(&gw, &user);
    let (status, r) = rpc(&gw, &user, &usid, 3, "logging/setLevel", json!({"level": "info"}));
    assert_eq!(status, 200);
    assert_eq!(r["error"]["data"]["code"], "FORBIDDEN", "{r}");

    // completion/complete by prompt: the federated name resolves to its server and prompt.
    let (_, prompts) = rpc(&gw, &admin, &sid, 4, "prompts/list", json!({}));
    let listed = prompts["result"]["prompts"].to_string();
    assert!(listed.contains("everything__completable-prompt"), "{listed}");
    let by_prompt = json!({"ref": {"type": "ref/prompt", "name": "everything__completable-prompt"},
        "argument": {"name": "department", "value": "En"}});
    let (status, r) = rpc(&gw, &admin, &sid, 5, "completion/complete", by_prompt.clone());
    assert_eq!(status, 200);
    assert_eq!(r["result"]["completion"]["values"], json!(["Engineering"]), "{r}");

    // By resource template, once listed (its owner is then known).
    let (_, templates) = rpc(&gw, &admin, &sid, 6, "resources/templates/list", json!({}));
    let template = templates["result"]["resourceTemplates"]
        .as_array()
        .and_then(|t| t.iter().find_map(|x| x["uriTemplate"].as_str().filter(|u| u.contains("/text/"))))
        .unwrap_or_else(|| panic!("a text template in {templates}"))
        .to_string();
    let by_uri = json!({"ref": {"type": "ref/resource", "uri": template},
        "argument": {"name": "resourceId", "value": "7"}});
    let (_, r) = rpc(&gw, &admin, &sid, 7, "completion/complete", by_uri);
    assert_eq!(r["result"]["completion"]["values"], json!(["7"]), "{r}");

    // An unknown reference is not found; another caller's lack of scope is a refusal.
    let unknown = json!({"ref": {"type": "ref/prompt", "name": "everything__nope"},
        "argument": {"name": "x", "value": ""}});
    let (_, r) = rpc(&gw, &admin, &sid, 8, "completion/complete", unknown);
    assert!(r["error"].is_object() && r.get("result").is_none(), "{r}");
    let (status, r) = rpc(&gw, &user, &usid, 9, "completion/complete", by_prompt);
    assert_eq!(status, 200);
    assert_eq!(r["error"]["data"]["code"], "FORBIDDEN", "{r}");
}

#[test]
fn without_an_upstream_that_offers_them_logging_and_completions_are_not_offered() {
    let lenient = Lenient::start();
    let gw = Gateway::builder("fed-plumbing-none")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_DEMO_URL", &lenient.url())
        .start();
    wait_discovered(&gw, &["demo"], Duration::from_secs(30));
    let admin = gw.mint("root", "acme", "mcp-admin");
    let (init, sid) = initialize(&gw, &admin);
    let caps = &init["capabilities"];
    assert!(caps.get("logging").is_none() && caps.get("completions").is_none(), "{init}");
    assert_eq!(caps["tools"]["listChanged"], true);
    let mark = lenient.log_len();
    let (_, r) = rpc(&gw, &admin, &sid, 2, "logging/setLevel", json!({"level": "debug"}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    assert!(lenient.log_since(mark).iter().all(|x| x.rpc_method().as_deref() != Some("logging/setLevel")));
}
