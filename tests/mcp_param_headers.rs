//! Acceptance: 2026-07-28 `Mcp-Param-{Name}` headers (`x-mcp-header` in a tool's
//! inputSchema) through both MCP doors and the REST API.
//!
//! - A raw 2026-07-28 upstream that records every request and, like a conforming server,
//!   refuses a call whose `Mcp-Param-Region` disagrees with its body: on `/mcp/{server}` the
//!   client's header is forwarded as sent; on `/mcp` and REST the gateway's client produces it;
//!   a mismatched or missing header is 400 / -32020 and nothing reaches the upstream; a tool
//!   with an invalid annotation is listed nowhere (one warning) and cannot be called.
//! - The official Python SDK 2.x on both ends (the demo server's `locate` tool and its
//!   client), through `/mcp/demo` and `/mcp`.

mod common;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use fastmcp::upstream::headers::{decode_value, encode_value};
use serde_json::{json, Value};

const MODERN: &str = "2026-07-28";

/// One request as the upstream received it.
#[derive(Clone, Debug)]
struct Got {
    headers: Vec<(String, String)>,
    body: Value,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    fn params(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .filter(|(k, _)| k.starts_with("mcp-param-"))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

type Log = Arc<Mutex<Vec<Got>>>;

fn tools() -> Value {
    json!([
        {"name": "query", "description": "Runs SQL in a region",
         "inputSchema": {"type": "object", "properties": {
             "region": {"type": "string", "x-mcp-header": "Region"},
             "sql": {"type": "string"}}, "required": ["region"]}},
        {"name": "broken", "description": "Its annotation is on a number",
         "inputSchema": {"type": "object", "properties": {"n": {"type": "number", "x-mcp-header": "N"}}}},
        {"name": "plain", "inputSchema": {"type": "object", "properties": {"x": {"type": "string"}}}},
    ])
}

/// A stateless 2026-07-28 upstream recording everything it receives. Its `tools/call` checks
/// `Mcp-Param-Region` against `arguments.region` as the spec requires of servers.
fn param_upstream() -> (u16, Log) {
    let log: Log = Arc::default();
    let l = log.clone();
    let port = fake_upstream(move |head, body, s| {
        use std::io::Write;
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let got = Got { headers, body: msg.clone() };
        l.lock().unwrap().push(got.clone());
        let id = msg["id"].clone();
        let ok = |result: Value| (200, json!({"jsonrpc": "2.0", "id": id, "result": result}));
        let (status, reply) = match msg["method"].as_str() {
            _ if msg.get("id").is_none() => (202, Value::Null),
            Some("server/discover") => ok(json!({
                "supportedVersions": [MODERN], "capabilities": {"tools": {}},
                "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "param-fake", "version": "1"}}})),
            Some("tools/list") => ok(json!({"tools": tools()})),
            Some("tools/call") => {
                let name = msg["params"]["name"].as_str().unwrap_or("?");
                let region = msg["params"]["arguments"]["region"].as_str();
                let header = got.header("mcp-param-region").and_then(decode_value);
                if name == "query" && header.as_deref() != region {
                    let e = json!({"code": -32020, "message": "Header mismatch: Mcp-Param-Region"});
                    (400, json!({"jsonrpc": "2.0", "id": id, "error": e}))
                } else {
                    ok(json!({"content": [{"type": "text", "text": format!("ran {name} in {region:?}")}]}))
                }
            }
            _ => ok(json!({})),
        };
        let body = if reply.is_null() { String::new() } else { reply.to_string() };
        let _ = write!(
            s,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    (port, log)
}

/// A 2026-07-28 `tools/call` body (per-request `_meta`).
fn modern_call(id: u64, name: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": name, "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
}

/// POSTs `body` as a 2026-07-28 client would, plus the `Mcp-Param-*` headers `params`.
fn post(url: &str, token: &str, body: &Value, params: &[(&str, &str)]) -> Resp {
    let method = body["method"].as_str().unwrap_or_default().to_string();
    let name = body["params"]["name"].as_str().map(encode_value);
    let mut extra: Vec<(&str, &str)> = vec![("mcp-protocol-version", MODERN), ("mcp-method", &method)];
    if let Some(n) = name.as_deref() {
        extra.push(("mcp-name", n));
    }
    extra.extend_from_slice(params);
    mcp_post(url, Some(token), body, &extra)
}

fn calls(log: &Log) -> Vec<Got> {
    log.lock().unwrap().iter().filter(|g| g.body["method"] == "tools/call").cloned().collect()
}

fn listed(r: &Resp) -> Vec<String> {
    let v = r.json();
    let tools = v["result"]["tools"].as_array().unwrap_or_else(|| panic!("no tools in {v}"));
    tools.iter().map(|t| t["name"].as_str().unwrap_or_default().to_string()).collect()
}

/// The status and JSON-RPC code of a refusal the gateway itself wrote (its `error.data` is
/// the DESIGN shape; an upstream's error would not carry it).
fn refused(r: &Resp) -> (u16, i64) {
    let v = r.json();
    assert_eq!(v["error"]["data"]["code"], "BAD_REQUEST", "not the gateway's refusal: {v}");
    (r.status, v["error"]["code"].as_i64().unwrap_or(0))
}

#[test]
fn mcp_param_headers_through_both_doors_and_rest() {
    let (port, log) = param_upstream();
    let gw = Gateway::builder("param-raw")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_PARAM_URL", &format!("http://127.0.0.1:{port}/mcp"))
        .env("MCP_PARAM_TRUSTED", "true")
        .env("FASTMCP__MCP__SERVERS__PARAM__TOOL_TAGS", "{query: [], broken: [], plain: []}")
        .start();
    wait_discovered(&gw, &["param"], Duration::from_secs(30));
    let admin = gw.mint("root", "acme", "mcp-admin");
    let (proxied, federated) = (gw.url("/mcp/param"), gw.url("/mcp"));
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {
        "io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}}});

    // A tool with an invalid annotation is listed on neither door; the others are.
    let r = post(&federated, &admin, &list, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(listed(&r), ["param__plain", "param__query"]);
    let r = post(&proxied, &admin, &list, &[]);
    assert_eq!(listed(&r), ["query", "plain"], "{}", String::from_utf8_lossy(&r.body));
    let query = r.json()["result"]["tools"][0].clone();
    assert_eq!(query["inputSchema"]["properties"]["region"]["x-mcp-header"], "Region", "the schema is passed on");

    // /mcp/{server}: the client's header reaches the upstream as it was sent.
    let zurich = encode_value("Zürich");
    let r =
        post(&proxied, &admin, &modern_call(2, "query", json!({"region": "Zürich"})), &[("Mcp-Param-Region", &zurich)]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["content"][0]["text"], "ran query in Some(\"Zürich\")");
    let seen = calls(&log);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].params(), [("mcp-param-region", zurich.as_str())]);

    // A mismatched, missing, corrupt or doubled header: 400 / -32020, nothing forwarded.
    let body = modern_call(3, "query", json!({"region": "us-west1"}));
    for (params, why) in [
        (&[("Mcp-Param-Region", "eu-west1")][..], "mismatch"),
        (&[][..], "missing in a 2026-07-28 request"),
        (&[("Mcp-Param-Region", "=?base64?not base64?=")][..], "corrupt"),
        (&[("Mcp-Param-Region", "us-west1"), ("mcp-param-region", "us-west1")][..], "doubled"),
    ] {
        let r = post(&proxied, &admin, &body, params);
        assert_eq!(refused(&r), (400, -32020), "{why}: {}", String::from_utf8_lossy(&r.body));
        let r = post(&federated, &admin, &modern_call(3, "param__query", json!({"region": "us-west1"})), params);
        assert_eq!(refused(&r), (400, -32020), "federated {why}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(calls(&log).len(), 1, "{why}: reached the upstream");
    }
    let r =
        post(&federated, &admin, &modern_call(3, "param__query", json!({"sql": "x"})), &[("Mcp-Param-Region", "x")]);
    assert_eq!(refused(&r), (400, -32020), "a header without its argument");
    assert_eq!(calls(&log).len(), 1, "no refused call reached the upstream");

    // /mcp: the gateway validates the client's header, then its own client sends the
    // upstream tool's header (the caller's Mcp-Param-* are not forwarded).
    let r = post(
        &federated,
        &admin,
        &modern_call(4, "param__query", json!({"region": "eu-west1", "sql": "select 1"})),
        &[("Mcp-Param-Region", "eu-west1"), ("Mcp-Param-Smuggled", "x")],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["content"][0]["text"], "ran query in Some(\"eu-west1\")");
    let seen = calls(&log);
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].params(), [("mcp-param-region", "eu-west1")]);
    assert_eq!((seen[1].header("mcp-name"), seen[1].body["params"]["name"].as_str()), (Some("query"), Some("query")));

    // A 2025-11-25 client on /mcp knows nothing of the header: the gateway produces it.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "old", "version": "1"}}});
    let r = mcp_post(&federated, Some(&admin), &init, &[]);
    let sid = r.header("mcp-session-id").unwrap_or_else(|| panic!("no session: {}", r.status)).to_string();
    let old = [("mcp-session-id", sid.as_str()), ("mcp-protocol-version", "2025-11-25")];
    let r = mcp_post(&federated, Some(&admin), &tools_call(5, "param__query", json!({"region": "ap-south1"})), &old);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(calls(&log)[2].params(), [("mcp-param-region", "ap-south1")]);

    // REST invoke of the MCP tool: the gateway's client mirrors the argument too.
    let auth = format!("Bearer {admin}");
    let rest = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let r = http("POST", &gw.url("/tools/mcp:param:query/invoke"), &rest, br#"{"region":"sa-east1"}"#);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(calls(&log)[3].params(), [("mcp-param-region", "sa-east1")]);

    // The invalid tool cannot be called through any door, and nothing is sent for it.
    let r = post(&proxied, &admin, &modern_call(6, "broken", json!({"n": 1})), &[]);
    assert_eq!(refused(&r), (400, -32602), "{}", String::from_utf8_lossy(&r.body));
    let r = post(&federated, &admin, &modern_call(6, "param__broken", json!({"n": 1})), &[]);
    assert_eq!(refused(&r), (400, -32602), "{}", String::from_utf8_lossy(&r.body));
    let r = http("POST", &gw.url("/tools/mcp:param:broken/invoke"), &rest, br#"{"n":1}"#);
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let catalog = http("GET", &gw.url("/tool-catalog"), &[("authorization", &auth)], b"").json().to_string();
    assert!(catalog.contains("mcp:param:query") && !catalog.contains("mcp:param:broken"), "{catalog}");
    assert_eq!(calls(&log).len(), 4);

    // A tool without annotations passes Mcp-Param-* through /mcp/{server} untouched.
    let r = post(&proxied, &admin, &modern_call(7, "plain", json!({"x": "1"})), &[("Mcp-Param-Anything", "y")]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(calls(&log)[4].params(), [("mcp-param-anything", "y")]);

    // One warning for the invalid tool, however often it was listed.
    let warned = gw.log().matches("invalid x-mcp-header annotation").count();
    assert_eq!(warned, 1, "{}", gw.log());
    assert!(gw.log().contains("broken"));
}

/// The Python SDK demo server with its `locate` tool (`x-mcp-header: Region`).
fn demo_with_param_tool(dir: &std::path::Path) -> DemoServer {
    let port = free_port();
    let calls_file = dir.join("calls.json");
    let log = std::fs::File::create(dir.join("demo_server.log")).expect("log");
    let mut child = Command::new(python())
        .arg(repo().join("tests/py/demo_server.py"))
        .args(["--port", &port.to_string(), "--param-tool", "--calls-file"])
        .arg(&calls_file)
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn demo server (run scripts/setup-test-deps.sh first)");
    wait_for_port(port, "demo MCP server", Some(&mut child));
    DemoServer { child, port, calls_file }
}

/// Every `tools/call` POST of a traced SDK client run: its status and `Mcp-Param-Region`.
fn traced_calls(out: &Value) -> Vec<(u64, Option<String>)> {
    let trace = out["trace"].as_array().unwrap_or_else(|| panic!("no trace in {out}"));
    trace
        .iter()
        .filter(|t| t["rpc"] == "tools/call")
        .map(|t| {
            let h = t["request_headers"].as_object().cloned().unwrap_or_default();
            let region =
                h.iter().find(|(k, _)| k.eq_ignore_ascii_case("mcp-param-region")).and_then(|(_, v)| v.as_str());
            (t["status"].as_u64().unwrap_or(0), region.map(String::from))
        })
        .collect()
}

#[test]
fn the_python_sdk_mirrors_x_mcp_header_through_both_doors() {
    let dir = temp_dir("param-sdk");
    let demo = demo_with_param_tool(&dir);
    let gw = Gateway::builder("param-sdk")
        .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/policies.yml").display().to_string())
        .env("MCP_DEMO_URL", &demo.url())
        .env("MCP_DEMO_TRUSTED", "true")
        .start();
    wait_discovered(&gw, &["demo"], Duration::from_secs(30));
    let admin = gw.mint("root", "acme", "mcp-admin");
    let args = r#"{"region": "eu-west1", "query": "select 1"}"#;
    for (door, tool, n) in [("/mcp/demo", "locate", 1), ("/mcp", "demo__locate", 2)] {
        let out = sdk_client(&gw.url(door), &admin, "auto", &["--trace", "call", tool, args]);
        assert_eq!(out["ok"], true, "{door}: {out}");
        assert_eq!(out["protocol_version"], MODERN, "{door}: {out}");
        assert_eq!(out["text"], "region=eu-west1 query=select 1", "{door}: {out}");
        // The SDK mirrors the header once it has listed the tool (it re-lists after the
        // gateway's -32020 for a call it sent without one); every call the gateway let
        // through carried it. On /mcp the SDK server's own check proves the gateway sent
        // its own header upstream (the caller's is not forwarded there).
        let posted = traced_calls(&out);
        assert!(posted.iter().any(|(s, _)| *s == 200), "{door}: {posted:?}");
        for (status, region) in &posted {
            match status {
                200 => assert_eq!(region.as_deref(), Some("eu-west1"), "{door}: {posted:?}"),
                _ => assert_eq!((*status, region.as_deref()), (400, None), "{door}: {posted:?}"),
            }
        }
        assert_eq!(demo.calls("locate"), n, "{door}: ran exactly once");
    }
    // A raw client whose header contradicts the body reaches nothing.
    let body = modern_call(9, "locate", json!({"region": "eu-west1", "query": "q"}));
    let r = post(&gw.url("/mcp/demo"), &admin, &body, &[("Mcp-Param-Region", "us-east1")]);
    assert_eq!(refused(&r), (400, -32020), "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(demo.calls("locate"), 2);
}
