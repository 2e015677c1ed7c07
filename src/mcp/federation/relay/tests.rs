//! Relaying an upstream's own requests without sockets: what is declared upstream, what
//! reaches the client, what the server is told, where the answer goes, and the records.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{RelayRoute, RelayStep};
use crate::auth::Principal;
use crate::gateway::testing::{principal, records, test_gateway};
use crate::gateway::Gateway;
use crate::mcp::federation::door::{FedRequest, Reply};
use crate::mcp::inbound;
use crate::mcp::relay::ReplyTo;
use crate::mcp::session::{owner_key, GatewaySession};

fn session(gw: &Gateway, p: &Principal, declared: Value) -> Arc<GatewaySession> {
    let owner = owner_key(&p.tenant, &p.sub);
    gw.fed.local_sessions.create(owner, "2025-11-25".into(), declared, chrono::Utc::now().timestamp()).unwrap().session
}

fn route(gw: &Gateway, p: &Principal, session: Option<&str>) -> RelayRoute {
    RelayRoute {
        session: session.map(String::from),
        server: gw.catalog.server("demo").unwrap(),
        policy: gw.policy.snapshot(),
        principal: Arc::new(p.clone()),
        client_ip: "127.0.0.1".into(),
    }
}

/// A waiter (where the blocking call would wait for the answer) and its receiving end.
fn waiter() -> (ReplyTo, std::sync::mpsc::Receiver<Value>) {
    let (tx, rx) = std::sync::mpsc::channel();
    (ReplyTo::Waiter(tx), rx)
}

fn sampling(id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "sampling/createMessage",
        "params": {"messages": [], "maxTokens": 5}})
}

/// The records of relayed server requests.
fn relayed_records(gw: &Gateway) -> Vec<Value> {
    records(gw).into_iter().filter(|r| r["message"] == "server_request").collect()
}

#[test]
fn only_what_the_client_declared_and_the_policy_allows_is_declared_upstream() {
    let gw = test_gateway("relay-declare", &[]);
    let server = gw.catalog.server("demo").unwrap();
    let policy = gw.policy.snapshot();
    let admin = principal("root", &["mcp-admin"]);
    let declared = json!({"sampling": {"tools": {}}, "roots": {"listChanged": true}, "experimental": {"x": {}}});
    let s = session(&gw, &admin, declared);
    let caps = gw.upstream_capabilities(&policy, &admin, &server, Some(&s), "c");
    assert_eq!(caps, json!({"sampling": {"tools": {}}}), "roots and unknown capabilities are not relayed");
    // Without the server's scope the policy lets the server ask for nothing.
    let user = principal("u", &["mcp-user"]);
    let s = session(&gw, &user, json!({"sampling": {}, "elicitation": {}}));
    assert_eq!(gw.upstream_capabilities(&policy, &user, &server, Some(&s), "c"), json!({}));
    assert_eq!(gw.upstream_capabilities(&policy, &admin, &server, None, "c"), json!({}), "stateless: nothing");
}

#[test]
fn an_allowed_request_reaches_the_client_under_a_fresh_id_and_is_recorded() {
    let gw = test_gateway("relay-allow", &[]);
    let admin = principal("root", &["mcp-admin"]);
    let (to, _rx) = waiter();
    let step = gw.relay_request(&route(&gw, &admin, Some("s1")), &sampling(json!(0)), to, "c");
    let RelayStep::ToClient(out) = step else { panic!("relayed: {step:?}") };
    let id = out["id"].as_str().expect("a string id").to_string();
    assert!(id.starts_with("fastmcp-relay-"), "{id}");
    assert_eq!(out["method"], "sampling/createMessage");
    assert_eq!(out["params"]["maxTokens"], 5, "the request itself is the server's");
    let waiting = gw.fed.relays.take("s1", &json!(id)).expect("remembered on its session");
    assert_eq!((waiting.server.as_str(), waiting.upstream_id.clone()), ("demo", json!(0)));
    let rec = relayed_records(&gw);
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0]["action"], "mcp.client.sampling/createMessage");
    assert_eq!(rec[0]["decision"]["result"], "allow");
    assert_eq!(
        (rec[0]["server"].clone(), rec[0]["mcp_method"].clone()),
        (json!("demo"), json!("sampling/createMessage"))
    );
}

#[test]
fn a_refused_request_is_answered_upstream_with_an_error_and_recorded() {
    let gw = test_gateway("relay-deny", &[]);
    let user = principal("u", &["mcp-user"]);
    let (to, _rx) = waiter();
    let step = gw.relay_request(&route(&gw, &user, Some("s1")), &sampling(json!("q")), to, "c");
    let RelayStep::Answered(err) = step else { panic!("refused: {step:?}") };
    assert_eq!((err["id"].clone(), err["error"]["code"].clone()), (json!("q"), json!(-32601)));
    assert_eq!(gw.fed.relays.waiting("s1"), 0, "nothing waits for the client");
    // A stateless caller cannot be asked at all.
    let admin = principal("root", &["mcp-admin"]);
    let (to, _rx) = waiter();
    assert!(matches!(
        gw.relay_request(&route(&gw, &admin, None), &sampling(json!(1)), to, "c"),
        RelayStep::Answered(_)
    ));
    // Its server's ping is answered by the gateway, as before (nothing to record).
    let (to, _rx) = waiter();
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"});
    let step = gw.relay_request(&route(&gw, &admin, None), &ping, to, "c");
    assert_eq!(step, RelayStep::Answered(json!({"jsonrpc": "2.0", "id": 2, "result": {}})));
    let rec = relayed_records(&gw);
    assert_eq!(rec.len(), 2, "{rec:?}");
    assert_eq!(rec[0]["decision"]["result"], "deny");
    assert!(rec[0]["decision"]["reasons"].to_string().contains("missing_scope:mcp.demo"), "{}", rec[0]);
    assert!(rec[1]["decision"]["reasons"].to_string().contains("no_client_session"), "{}", rec[1]);
}

/// POSTs `body` to the federated door on `session` as `p`.
async fn post(gw: &Gateway, p: &Principal, session: &str, body: &Value) -> &'static str {
    let raw = serde_json::to_vec(body).unwrap();
    let parsed = inbound::parse(&raw, None, None);
    let policy = gw.policy.snapshot();
    let req = FedRequest {
        policy: &policy,
        principal: p,
        http_method: "POST",
        body: &raw,
        message: Some(&parsed),
        has_body: true,
        session_id: Some(session),
        action_token_header: None,
        last_event_id: None,
        protocol_version: Some("2025-11-25"),
        path: "/mcp",
        client_ip: "127.0.0.1",
        corr_id: "c2",
    };
    let servers = gw.catalog.servers();
    match gw.federated(&req, &servers).await {
        Reply::Accepted => "accepted",
        Reply::Json(a) if a.body.get("error").is_some() => "error",
        Reply::Json(_) => "json",
        Reply::Forward(_) => "forward",
        Reply::Stream(_) => "stream",
    }
}

#[tokio::test]
async fn the_clients_answer_goes_to_the_server_that_asked_under_its_own_id_once() {
    let gw = test_gateway("relay-answer", &[]);
    let admin = principal("root", &["mcp-admin"]);
    let s = session(&gw, &admin, json!({"sampling": {}}));
    let (to, rx) = waiter();
    let RelayStep::ToClient(out) = gw.relay_request(&route(&gw, &admin, Some(&s.id)), &sampling(json!(7)), to, "c")
    else {
        panic!("relayed")
    };
    let answer = json!({"jsonrpc": "2.0", "id": out["id"], "result": {"role": "assistant", "model": "m",
        "content": {"type": "text", "text": "hi"}}});
    // Someone else's session cannot answer it (the session itself is not theirs).
    let mallory = principal("mallory", &["mcp-admin"]);
    assert_eq!(post(&gw, &mallory, &s.id, &answer).await, "error");
    assert_eq!(post(&gw, &admin, &s.id, &answer).await, "accepted");
    let got = rx.recv().expect("delivered");
    assert_eq!(got["id"], 7, "the server's own id");
    assert_eq!(got["result"]["content"]["text"], "hi");
    // Answered once: a second answer is only a response the gateway consumes.
    assert_eq!(post(&gw, &admin, &s.id, &answer).await, "accepted");
    assert!(rx.try_recv().is_err());
    let answers: Vec<Value> =
        records(&gw).into_iter().filter(|r| r["message"] == "response" && r["corr_id"] == "c2").collect();
    assert_eq!(answers[0]["action"], "mcp.response");
    assert_eq!(answers[0]["server"], "demo", "decided on the server that asked: {}", answers[0]);
    assert_eq!(answers[0]["decision"]["result"], "allow");
}
