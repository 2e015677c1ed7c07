//! Acceptance (issue 14, traces): with `otel.endpoint` set, a local OTLP/HTTP receiver (this
//! test's, decoding the protobuf it is sent) gets one trace per request — a server span with
//! the request's decision, tool and policy revision, and child spans for policy evaluation,
//! the upstream call, broker token fetches and the audit fsync wait — and every upstream
//! (the proxied MCP server, the gateway's own MCP client, a REST provider, a token endpoint)
//! receives a `traceparent` of the same trace naming the gateway's child span, never the
//! agent's header as it came. Without an endpoint the context is still continued and
//! forwarded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::lenient::{Lenient, Received};
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use prost::Message;
use serde_json::{json, Value};

/// A caller's trace context (W3C example ids).
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";
/// An argument value no span may carry.
const ARGUMENT: &str = "argument-value-5f1c";

/// One span as the receiver decoded it.
#[derive(Debug, Clone)]
struct Span {
    trace: String,
    id: String,
    parent: String,
    name: String,
    /// OTLP `SpanKind`: 2 server, 3 client, 1 internal.
    kind: i32,
    attrs: BTreeMap<String, String>,
    service: String,
}

/// A local OTLP/HTTP receiver: decodes every `POST /v1/traces` and keeps its spans.
struct Collector {
    port: u16,
    spans: Arc<Mutex<Vec<Span>>>,
    posts: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    fn start() -> Collector {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let posts: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, p) = (spans.clone(), posts.clone());
        let port = fake_upstream(move |head, body, stream| {
            p.lock().unwrap().push(head.lines().next().unwrap_or("").to_string());
            let ok = head.starts_with("POST /v1/traces ")
                && head.to_ascii_lowercase().contains("content-type: application/x-protobuf");
            let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(req) if ok => {
                    s.lock().unwrap().extend(flatten(&req));
                    "200 OK"
                }
                _ => "400 Bad Request",
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
            );
        });
        Collector { port, spans, posts }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn trace(&self, trace: &str) -> Vec<Span> {
        self.spans.lock().unwrap().iter().filter(|s| s.trace == trace).cloned().collect()
    }

    /// Waits (bounded) until trace `trace` has spans named `names`, then returns the trace.
    fn wait_for(&self, trace: &str, names: &[&str]) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let spans = self.trace(trace);
            let have: BTreeSet<&str> = spans.iter().map(|s| s.name.as_str()).collect();
            if names.iter().all(|n| have.contains(n)) {
                return spans;
            }
            assert!(Instant::now() < deadline, "trace {trace}: wanted {names:?}, got {spans:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn flatten(req: &ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|a| a.key == "service.name"))
            .map(|a| text(&a.value))
            .unwrap_or_default();
        for ss in &rs.scope_spans {
            for s in &ss.spans {
                out.push(Span {
                    trace: hex(&s.trace_id),
                    id: hex(&s.span_id),
                    parent: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    kind: s.kind,
                    attrs: s.attributes.iter().map(|a| (a.key.clone(), text(&a.value))).collect(),
                    service: service.clone(),
                });
            }
        }
    }
    out
}

/// `(trace id, parent span id)` of a `traceparent` value.
fn parse_tp(tp: &str) -> (String, String) {
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!((parts[0], parts[1].len(), parts[2].len()), ("00", 32, 16), "{tp}");
    (parts[1].to_string(), parts[2].to_string())
}

fn received_tp(r: &Received) -> (String, String) {
    assert_eq!(r.headers_named("traceparent").len(), 1, "exactly one traceparent: {}", r.summary());
    parse_tp(r.header("traceparent").unwrap())
}

/// The one server span of a trace (a trace per request: exactly one).
fn root(spans: &[Span]) -> &Span {
    let roots: Vec<&Span> = spans.iter().filter(|s| s.kind == 2).collect();
    assert_eq!(roots.len(), 1, "one server span per trace: {spans:#?}");
    roots[0]
}

fn named<'a>(spans: &'a [Span], name: &str) -> Vec<&'a Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

/// A recording fake HTTP server answering `answer` to everything; heads are kept.
fn recording(answer: Value) -> (u16, Arc<Mutex<Vec<String>>>) {
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let h = heads.clone();
    let body = answer.to_string();
    let port = fake_upstream(move |head, _, stream| {
        h.lock().unwrap().push(head);
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    (port, heads)
}

fn head_tp(head: &str) -> (String, String) {
    let tps: Vec<&str> = head
        .lines()
        .filter_map(|l| l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("traceparent")).map(|(_, v)| v.trim()))
        .collect();
    assert_eq!(tps.len(), 1, "exactly one traceparent in {head}");
    parse_tp(tps[0])
}

fn tools_calls(lenient: &Lenient, from: usize, tool: &str) -> Vec<Received> {
    lenient
        .log_since(from)
        .into_iter()
        .filter(|r| {
            r.rpc_method().as_deref() == Some("tools/call")
                && r.json().is_some_and(|j| j["params"]["name"] == json!(tool))
        })
        .collect()
}

/// The test policy (tests/fixtures/policies.yml) plus the seed's Pipedrive grant to
/// `sales-write`, so one gateway serves both doors and a REST provider.
fn policies(tag: &str) -> std::path::PathBuf {
    let base = std::fs::read_to_string(repo().join("tests/fixtures/policies.yml")).expect("test policy");
    let with_sales = base
        .replacen("roles:\n", "roles:\n  sales-write: [\"pipedrive.write\", \"tools.invoke:write\"]\n", 1)
        .replacen(
            "rules:\n",
            "rules:\n  - id: invoke-pipedrive-tools\n    effect: allow\n    when:\n      action: tools.invoke\n      resource.provider_id: \"pipedrive\"\n      subject.roles: [\"sales-write\"]\n",
            1,
        );
    assert_ne!(with_sales, base);
    let path = temp_dir(&format!("{tag}-policy")).join("policies.yml");
    std::fs::write(&path, with_sales).expect("write policy");
    path
}

fn start(tag: &str, lenient: &Lenient, extra: &str) -> Gateway {
    Gateway::builder(tag)
        .env("FASTMCP_POLICIES", &policies(tag).display().to_string())
        .config(&format!(
            "mcp:\n  refresh_interval_seconds: 3600\n  servers:\n    demo:\n      url: \"{}\"\n      trusted: true\n      tool_tags: {{echo: []}}\n{extra}",
            lenient.url()
        ))
        .start()
}

#[test]
fn every_request_is_one_exported_trace_and_every_upstream_hears_of_it() {
    let collector = Collector::start();
    let lenient = Lenient::start();
    let (pd_port, pipedrive) = recording(json!({"success": true, "data": {"id": 7, "title": "Big deal"}}));
    let (tok_port, token) =
        recording(json!({"access_token": "brokered-access", "token_type": "Bearer", "expires_in": 3600}));
    let extra = format!(
        "otel:\n  endpoint: \"{}\"\n  service_name: \"fastmcp-test\"\n  batch_delay_ms: 50\nproviders:\n  http:\n    pipedrive_base_url: \"http://127.0.0.1:{pd_port}/api/v1\"\n  credentials:\n    pipedrive: {{kind: client_credentials, token_url: \"http://127.0.0.1:{tok_port}/token\", client_id: \"pd-client\", client_secret: \"pd-client-secret\"}}\n",
        collector.endpoint()
    );
    let gw = start("tracing-otlp", &lenient, &extra);
    wait_discovered(&gw, &["demo"], Duration::from_secs(30));
    let user = gw.mint("alice", "acme", "mcp-user");

    // 1. /mcp/demo, continuing the caller's trace.
    let mark = lenient.log_len();
    let caller_tp = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let r = mcp_post(
        &gw.url("/mcp/demo"),
        Some(&user),
        &tools_call(1, "echo", json!({"text": ARGUMENT})),
        &[("traceparent", &caller_tp), ("tracestate", "vendor=opaque"), ("x-correlation-id", "corr-trace-1")],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-correlation-id"), Some("corr-trace-1"), "the correlation id is untouched");
    let calls = tools_calls(&lenient, mark, "echo");
    assert_eq!(calls.len(), 1);
    let (up_trace, up_parent) = received_tp(&calls[0]);
    assert_eq!(up_trace, CALLER_TRACE, "the upstream is in the caller's trace");
    assert_ne!(up_parent, CALLER_SPAN, "the upstream's parent is the gateway's span, not the agent's");
    assert_eq!(calls[0].header("tracestate"), Some("vendor=opaque"));
    assert_eq!(calls[0].header("x-correlation-id"), Some("corr-trace-1"));
    let spans = collector.wait_for(CALLER_TRACE, &["POST /mcp/{server}", "policy.evaluate", "upstream", "audit.sync"]);
    let req = root(&spans);
    assert_eq!(req.parent, CALLER_SPAN, "the request's span continues the caller's");
    assert_eq!(req.service, "fastmcp-test");
    assert_eq!(req.attrs.get("fastmcp.decision").map(String::as_str), Some("allow"), "{req:?}");
    assert_eq!(req.attrs.get("fastmcp.outcome").map(String::as_str), Some("ok"), "{req:?}");
    assert_eq!(req.attrs.get("fastmcp.tool").map(String::as_str), Some("mcp:demo:echo"), "{req:?}");
    assert_eq!(req.attrs.get("fastmcp.corr_id").map(String::as_str), Some("corr-trace-1"));
    assert_eq!(req.attrs.get("http.response.status_code").map(String::as_str), Some("200"));
    let revision = req.attrs.get("fastmcp.policy.revision").cloned().unwrap_or_default();
    assert!(!revision.is_empty() && revision != "disabled", "{req:?}");
    let upstream = named(&spans, "upstream");
    assert_eq!(upstream.len(), 1, "{spans:#?}");
    assert_eq!(upstream[0].id, up_parent, "the upstream's traceparent names the upstream span");
    assert_eq!(upstream[0].kind, 3);
    assert_eq!(upstream[0].attrs.get("fastmcp.server").map(String::as_str), Some("demo"));
    for s in spans.iter().filter(|s| s.kind != 2) {
        assert_eq!(s.parent, req.id, "children of the request's span: {s:?}");
    }
    let policy = named(&spans, "policy.evaluate");
    assert_eq!(policy[0].attrs.get("fastmcp.policy.allow").map(String::as_str), Some("true"));
    assert_eq!(policy[0].attrs.get("fastmcp.policy.revision"), Some(&revision));

    // 2. A refusal with a broken caller context (never trusted, never refused for it): a new
    // trace, no upstream span, nothing sent.
    let mark = lenient.log_len();
    let r = mcp_post(
        &gw.url("/mcp/demo"),
        Some(&user),
        &tools_call(2, "read_secret", json!({"name": "x"})),
        &[("traceparent", &format!("00-{CALLER_TRACE}-zz{}-01", &CALLER_SPAN[2..]))],
    );
    // MCP refusal semantics: a JSON-RPC error (HTTP 200), nothing forwarded.
    let refused: Value = serde_json::from_slice(&r.body).unwrap_or_default();
    assert_eq!(refused["error"]["data"]["code"], json!("FORBIDDEN"), "{}", String::from_utf8_lossy(&r.body));
    assert!(tools_calls(&lenient, mark, "read_secret").is_empty());
    let denied =
        wait_root(&collector, |s| s.attrs.get("fastmcp.tool").map(String::as_str) == Some("mcp:demo:read_secret"));
    let spans = collector.wait_for(&denied.trace, &["policy.evaluate"]);
    assert_ne!(denied.trace, CALLER_TRACE, "an invalid traceparent starts a new trace");
    assert_eq!(root(&spans).attrs.get("fastmcp.decision").map(String::as_str), Some("deny"));
    assert_eq!(root(&spans).attrs.get("fastmcp.outcome").map(String::as_str), Some("refused"));
    assert!(root(&spans).parent.is_empty() || root(&spans).parent == "0000000000000000", "a new trace has no parent");
    assert!(named(&spans, "upstream").is_empty(), "{spans:#?}");
    assert_eq!(
        named(&spans, "policy.evaluate")[0].attrs.get("fastmcp.policy.allow").map(String::as_str),
        Some("false")
    );

    // 3. The federated door: the gateway's own MCP client (the session handshake) and the
    // forwarded call both carry the request's trace.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "trace-test", "version": "1"}}});
    let r = mcp_post(&gw.url("/mcp"), Some(&user), &init, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let sid = r.header("mcp-session-id").expect("session").to_string();
    let mark = lenient.log_len();
    let r = mcp_post(
        &gw.url("/mcp"),
        Some(&user),
        &tools_call(3, "demo__echo", json!({"text": "fed-argument"})),
        &[("mcp-session-id", &sid), ("mcp-protocol-version", "2025-11-25")],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let fed: Vec<Received> = lenient.log_since(mark);
    let calls = tools_calls(&lenient, mark, "echo");
    assert_eq!(calls.len(), 1, "{fed:#?}");
    let (fed_trace, fed_parent) = received_tp(&calls[0]);
    // Whatever the gateway's client sent upstream for this request is in the same trace.
    for r in &fed {
        if let Some(tp) = r.header("traceparent") {
            assert_eq!(parse_tp(tp).0, fed_trace, "one trace per request: {}", r.summary());
        }
    }
    let spans = collector.wait_for(&fed_trace, &["POST /mcp", "policy.evaluate", "upstream"]);
    assert_eq!(root(&spans).attrs.get("fastmcp.decision").map(String::as_str), Some("allow"));
    assert!(spans.iter().any(|s| s.name == "upstream" && s.id == fed_parent), "{spans:#?}");

    // 3b. A REST `mcp:` tool: the gateway's MCP client sends the call under the request's trace.
    let mark = lenient.log_len();
    let r = http(
        "POST",
        &gw.url("/tools/mcp:demo:echo/invoke"),
        &[("authorization", &format!("Bearer {user}")), ("content-type", "application/json")],
        json!({"text": "rest-argument"}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let calls = tools_calls(&lenient, mark, "echo");
    assert_eq!(calls.len(), 1, "{:#?}", lenient.log_since(mark));
    let (rest_trace, rest_parent) = received_tp(&calls[0]);
    let spans = collector.wait_for(&rest_trace, &["POST /tools/{toolId}/invoke", "policy.evaluate", "upstream"]);
    assert_eq!(root(&spans).attrs.get("fastmcp.tool").map(String::as_str), Some("mcp:demo:echo"));
    assert!(spans.iter().any(|s| s.name == "upstream" && s.id == rest_parent), "{spans:#?}");

    // 4. A REST provider behind a brokered OAuth credential: the token endpoint and the
    // provider both hear of the request's trace, each naming its own span.
    let sales = gw.mint("sam", "acme", "sales-write");
    let r = http(
        "POST",
        &gw.url("/tools/pipedrive:getDeal/invoke"),
        &[("authorization", &format!("Bearer {sales}")), ("content-type", "application/json")],
        json!({"id": 7}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let tok_heads = token.lock().unwrap().clone();
    let pd_heads = pipedrive.lock().unwrap().clone();
    assert_eq!((tok_heads.len(), pd_heads.len()), (1, 1), "{tok_heads:?} {pd_heads:?}");
    let (tok_trace, tok_parent) = head_tp(&tok_heads[0]);
    let (pd_trace, pd_parent) = head_tp(&pd_heads[0]);
    assert_eq!(tok_trace, pd_trace, "token fetch and provider call are one request's trace");
    let spans =
        collector.wait_for(&pd_trace, &["POST /tools/{toolId}/invoke", "policy.evaluate", "broker.token", "upstream"]);
    let req = root(&spans);
    assert_eq!(req.attrs.get("fastmcp.tool").map(String::as_str), Some("pipedrive:getDeal"));
    assert_eq!(req.attrs.get("fastmcp.decision").map(String::as_str), Some("allow"));
    assert_eq!(named(&spans, "broker.token")[0].id, tok_parent);
    assert_eq!(named(&spans, "upstream")[0].id, pd_parent);
    assert!(
        !spans
            .iter()
            .flat_map(|s| s.attrs.values())
            .any(|v| v.contains("brokered-access") || v.contains("pd-client-secret")),
        "no secret in a span"
    );

    // One trace per request: every trace has one server span, and these four are distinct.
    let all = collector.spans.lock().unwrap().clone();
    let traces: BTreeSet<&str> = all.iter().map(|s| s.trace.as_str()).collect();
    for t in &traces {
        let spans: Vec<Span> = all.iter().filter(|s| s.trace == *t).cloned().collect();
        root(&spans);
    }
    let five: BTreeSet<&str> =
        [CALLER_TRACE, denied.trace.as_str(), fed_trace.as_str(), rest_trace.as_str(), pd_trace.as_str()].into();
    assert_eq!(five.len(), 5);
    assert!(collector.posts.lock().unwrap().iter().all(|p| p.starts_with("POST /v1/traces ")));
    // No secrets and no argument values in any span: tokens, client secret, arguments.
    let secrets = [
        user.as_str(),
        sales.as_str(),
        "brokered-access",
        "pd-client-secret",
        ARGUMENT,
        "fed-argument",
        "rest-argument",
    ];
    for s in &all {
        for (k, v) in &s.attrs {
            assert!(!secrets.iter().any(|x| v.contains(x)), "{k}={v} in {s:?}");
        }
    }
    let metrics = String::from_utf8_lossy(&http("GET", &gw.admin_url("/metrics"), &[], b"").body).to_string();
    assert!(metrics.contains("fastmcp_otel_spans_total{result=\"exported\"}"), "exports are counted");
}

/// Waits (bounded) for a server span matching `pred`.
fn wait_root(c: &Collector, pred: impl Fn(&Span) -> bool) -> Span {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = c.spans.lock().unwrap().iter().find(|s| s.kind == 2 && pred(s)) {
            return s.clone();
        }
        assert!(Instant::now() < deadline, "no such server span: {:#?}", c.spans.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn without_an_endpoint_the_context_is_still_continued_and_forwarded() {
    let lenient = Lenient::start();
    let gw = start("tracing-off", &lenient, "");
    wait_discovered(&gw, &["demo"], Duration::from_secs(30));
    let user = gw.mint("alice", "acme", "mcp-user");
    let caller_tp = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let mark = lenient.log_len();
    let r = mcp_post(
        &gw.url("/mcp/demo"),
        Some(&user),
        &tools_call(1, "echo", json!({"text": "a"})),
        &[("traceparent", &caller_tp)],
    );
    assert_eq!(r.status, 200);
    let calls = tools_calls(&lenient, mark, "echo");
    let (t, p) = received_tp(&calls[0]);
    assert_eq!(t, CALLER_TRACE);
    assert_ne!(p, CALLER_SPAN);
    assert!(calls[0].header("traceparent").unwrap().ends_with("-01"), "the caller's sampled flag is kept");

    // No caller context (or a broken one): the gateway starts a trace of its own per request.
    let mut seen = BTreeSet::new();
    for (i, given) in [None, Some("00-zz-broken-01")].into_iter().enumerate() {
        let mark = lenient.log_len();
        let headers: Vec<(&str, &str)> = given.map(|g| vec![("traceparent", g)]).unwrap_or_default();
        let r = mcp_post(
            &gw.url("/mcp/demo"),
            Some(&user),
            &tools_call(2 + i as u64, "echo", json!({"text": "b"})),
            &headers,
        );
        assert_eq!(r.status, 200);
        let calls = tools_calls(&lenient, mark, "echo");
        let (t, _) = received_tp(&calls[0]);
        assert_ne!(t, CALLER_TRACE);
        assert!(seen.insert(t), "a new trace per request");
    }
}

/// One of the gateway's `fastmcp_otel_spans_total` counters.
fn spans_counted(gw: &Gateway, result: &str) -> u64 {
    let metrics = String::from_utf8_lossy(&http("GET", &gw.admin_url("/metrics"), &[], b"").body).to_string();
    let prefix = format!("fastmcp_otel_spans_total{{result=\"{result}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// Polls (bounded) until counter `result` is above zero.
fn wait_counted(gw: &Gateway, result: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while spans_counted(gw, result) == 0 {
        assert!(Instant::now() < deadline, "no span counted {result}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `n` traced calls through /mcp/demo; every one must answer 200 with a result and reach
/// the upstream.
fn calls_succeed(gw: &Gateway, lenient: &Lenient, n: u64) {
    let user = gw.mint("alice", "acme", "mcp-user");
    for i in 0..n {
        let mark = lenient.log_len();
        let r = mcp_post(&gw.url("/mcp/demo"), Some(&user), &tools_call(i + 1, "echo", json!({"text": "x"})), &[]);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.json().get("result").is_some(), "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(tools_calls(lenient, mark, "echo").len(), 1);
    }
}

#[test]
fn a_collector_that_is_down_or_hung_never_fails_or_blocks_a_request() {
    // Down: nothing listens on the endpoint. Requests answer; failed exports are counted.
    let lenient = Lenient::start();
    let closed = free_port();
    let extra =
        format!("otel:\n  endpoint: \"http://127.0.0.1:{closed}\"\n  batch_delay_ms: 20\n  timeout_seconds: 2\n");
    let gw = start("tracing-down", &lenient, &extra);
    wait_discovered(&gw, &["demo"], Duration::from_secs(30));
    calls_succeed(&gw, &lenient, 5);
    wait_counted(&gw, "failed");
    assert_eq!(spans_counted(&gw, "exported"), 0);
    drop(gw);

    // Hung: the collector accepts connections and never answers. The export thread is stuck
    // in its first export; the small queue fills and further spans are dropped and counted,
    // while every request still answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = hung.local_addr().expect("addr").port();
    let held: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::default();
    let h = held.clone();
    std::thread::spawn(move || {
        for s in hung.incoming().flatten() {
            h.lock().unwrap().push(s);
        }
    });
    let extra = format!(
        "otel:\n  endpoint: \"http://127.0.0.1:{port}\"\n  batch_delay_ms: 20\n  batch_spans: 1\n  queue_spans: 2\n  timeout_seconds: 600\n"
    );
    let gw = start("tracing-hung", &lenient, &extra);
    wait_discovered(&gw, &["demo"], Duration::from_secs(30));
    calls_succeed(&gw, &lenient, 10);
    wait_counted(&gw, "dropped");
    assert_eq!(spans_counted(&gw, "exported"), 0);
    assert!(!held.lock().unwrap().is_empty(), "the exporter did try the collector");
}
