//! The REST core without sockets: the database provider through invoke, idempotency,
//! schema validation, catalog filtering and registration rules.

use serde_json::{json, Value};

use super::{catalog, invoke, register, Reply, RestRequest};
use crate::auth::Principal;
use crate::gateway::testing::{principal, test_gateway};
use crate::gateway::Gateway;

fn who(sub: &str, roles: &[&str]) -> Principal {
    principal(sub, roles)
}

async fn call(gw: &Gateway, p: &Principal, tool: &str, body: Value, key: Option<&str>) -> Reply {
    let policy = gw.policy.snapshot();
    let bytes = body.to_string();
    let req = RestRequest {
        policy: &policy,
        principal: p,
        body: bytes.as_bytes(),
        path: "/tools/x/invoke",
        client_ip: "127.0.0.1",
        corr_id: "c",
        idempotency_key: key,
        action_token_header: None,
        http_method: "POST",
    };
    invoke::invoke(gw, &req, tool).await
}

#[tokio::test]
async fn database_reads_run_and_writes_need_the_scope_and_a_write_connection() {
    let gw = test_gateway("rest-db", &[]);
    let analyst = who("ana", &["data-analyst"]);
    let r = call(&gw, &analyst, "database:listTables", json!({}), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["result"]["tables"],
        json!([
            {"name": "customers", "row_count": 4},
            {"name": "orders", "row_count": 4},
            {"name": "products", "row_count": 5},
        ])
    );
    assert_eq!(r.body["token_meta"]["token_type"], "none");
    let q = json!({"query": "SELECT name FROM customers WHERE id = ?", "params": [1]});
    let r = call(&gw, &analyst, "database:executeQuery", q, None).await;
    assert_eq!(r.body["result"]["row_count"], 1, "{}", r.body);
    let r = call(&gw, &analyst, "database:executeQuery", json!({"query": "DELETE FROM orders"}), None).await;
    assert_eq!(r.status, 403, "policy: missing database.write");
    let admin = who("dba", &["data-admin"]);
    let r = call(&gw, &admin, "database:executeQuery", json!({"query": "DROP TABLE orders"}), None).await;
    assert_eq!(r.status, 403, "the provider refuses DDL even with database.write: {}", r.body);
    let r =
        call(&gw, &admin, "database:executeQuery", json!({"query": "DELETE FROM orders WHERE id = 999"}), None).await;
    assert_eq!((r.status, r.body["result"]["rows_affected"].clone()), (200, json!(0)), "{}", r.body);
}

#[tokio::test]
async fn input_schema_and_body_shape_are_checked_before_anything_runs() {
    let gw = test_gateway("rest-schema", &[]);
    let analyst = who("ana", &["data-analyst"]);
    let r = call(&gw, &analyst, "database:executeQuery", json!({"query": "SELECT 1", "limit": 5}), None).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["error"]["code"], "VALIDATION_ERROR");
    assert!(r.body["error"]["details"]["violations"][0]["path"].as_str().is_some(), "{}", r.body);
    let r = call(&gw, &analyst, "nope:tool", json!({}), None).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn idempotency_replays_per_subject_and_refuses_another_payload() {
    let gw = test_gateway("rest-idem", &[]);
    let a = who("ana", &["data-analyst"]);
    let q = json!({"query": "SELECT count(*) FROM products"});
    let first = call(&gw, &a, "database:executeQuery", q.clone(), Some("k1")).await;
    let again = call(&gw, &a, "database:executeQuery", q.clone(), Some("k1")).await;
    assert_eq!(again.body, first.body);
    assert!(again.headers.contains(&("x-idempotent-replay", "true".to_string())));
    let other = call(&gw, &a, "database:executeQuery", json!({"query": "SELECT 1"}), Some("k1")).await;
    assert_eq!(other.status, 422);
    let b = who("bob", &["data-analyst"]);
    let theirs = call(&gw, &b, "database:executeQuery", q, Some("k1")).await;
    assert!(!theirs.headers.iter().any(|(k, _)| *k == "x-idempotent-replay"), "no cross-subject replay");
    let bad = call(&gw, &a, "database:listTables", json!({}), Some("bad key with spaces\u{7f}")).await;
    assert_eq!(bad.status, 422);
}

#[tokio::test]
async fn catalog_lists_only_invocable_tools() {
    let gw = test_gateway("rest-catalog", &[]);
    let policy = gw.policy.snapshot();
    let p = who("ana", &["data-analyst"]);
    let req = RestRequest {
        policy: &policy,
        principal: &p,
        body: b"",
        path: "/tool-catalog",
        client_ip: "",
        corr_id: "c",
        idempotency_key: None,
        action_token_header: None,
        http_method: "POST",
    };
    let r = catalog::catalog(&gw, &req).await;
    let ids: Vec<&str> = r.body["tools"].as_array().unwrap().iter().filter_map(|t| t["toolId"].as_str()).collect();
    assert!(ids.contains(&"database:executeQuery"), "{ids:?}");
    assert!(!ids.iter().any(|i| i.starts_with("pipedrive:") || i.starts_with("ads:")), "{ids:?}");
}

#[tokio::test]
async fn registration_fills_the_tenant_and_refuses_public_for_tenant_admins() {
    let gw = test_gateway("rest-register", &[]);
    let policy = gw.policy.snapshot();
    let admin = who("adm", &["tenant-admin"]);
    let reg = |body: Value| {
        let bytes = body.to_string();
        let policy = &policy;
        let admin = &admin;
        let gw = &gw;
        async move {
            let req = RestRequest {
                policy,
                principal: admin,
                body: bytes.as_bytes(),
                path: "/manifests/register",
                client_ip: "",
                corr_id: "c",
                idempotency_key: None,
                action_token_header: None,
                http_method: "POST",
            };
            register::register(gw, &req).await
        }
    };
    let m = json!({"toolId": "crm:find", "name": "Find", "provider_id": "crm", "inputs": {"type": "object"}});
    let r = reg(m.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["tenant"], "acme", "the caller's tenant when the body names none");
    let mut public = m;
    public["tenant"] = json!("public");
    assert_eq!(reg(public).await.status, 403);
    let mcp = json!({"toolId": "mcp:x", "name": "x", "provider_id": "mcp", "inputs": {"type": "object"}});
    let r = reg(mcp.clone()).await;
    assert_eq!(r.status, 403, "mcp is a reserved provider id: {}", r.body);
    assert_eq!(r.body["error"]["details"]["reasons"], json!(["reserved_provider"]));
    // Nor may a configured server's name be borrowed.
    let demo = json!({"toolId": "demo:x", "name": "x", "provider_id": "demo", "inputs": {"type": "object"}});
    assert_eq!(reg(demo).await.status, 403);
    let root = who("root", &["platform-admin"]);
    let bytes = mcp.to_string();
    let req = RestRequest {
        policy: &policy,
        principal: &root,
        body: bytes.as_bytes(),
        path: "/manifests/register",
        client_ip: "",
        corr_id: "c",
        idempotency_key: None,
        action_token_header: None,
        http_method: "POST",
    };
    assert_eq!(register::register(&gw, &req).await.status, 422, "mcp tools are discovered, not registered");
}

#[tokio::test]
async fn a_hold_whose_provider_is_not_configured_is_refused_at_invoke_time() {
    let gw = test_gateway("rest-preflight", &[]);
    let fin = who("fin", &["finance-write"]);
    let input = json!({"name": "Spring", "budget": 5000, "customer_id": "1234567890"});
    let r = call(&gw, &fin, "ads:createCampaign", input.clone(), None).await;
    assert_eq!((r.status, r.body["error"]["code"].clone()), (422, json!("VALIDATION_ERROR")), "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nothing was held") && message.contains("credential"), "{message}");
    assert_eq!(gw.enforce.state.pending_holds().await.unwrap(), 0);
    let records = crate::gateway::testing::records(&gw);
    assert!(records.iter().any(|e| e["toolId"] == "ads:createCampaign" && e["decision"]["result"] == "invalid"));

    // Configured, the same call is held as before.
    let gw = test_gateway(
        "rest-preflight-ok",
        &[
            ("FASTMCP__PROVIDERS__CREDENTIALS__ADS__KIND", "static"),
            ("FASTMCP__PROVIDERS__CREDENTIALS__ADS__SECRET", "ads-secret"),
            ("FASTMCP__PROVIDERS__HTTP__GOOGLE_ADS_DEVELOPER_TOKEN", "dev"),
        ],
    );
    let r = call(&gw, &fin, "ads:createCampaign", input, None).await;
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(gw.enforce.state.pending_holds().await.unwrap(), 1);
}
