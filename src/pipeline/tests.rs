//! The pipeline without sockets: policy, rate limit, holds and audit on one `tools/call`.

use super::*;
use crate::config::Config;
use crate::policy::{CompiledPolicy, PolicySources};
use crate::state::memory::MemoryState;

fn gateway(tag: &str, env: &[(&str, &str)]) -> Gateway {
    test_gateway(&format!("pipeline-{tag}"), env)
}

/// A gateway without sockets: the embedded policy, memory state, a fresh temp data and audit
/// dir, server `demo` at an address nothing listens on. Shared with the REST core's tests.
pub(crate) fn test_gateway(tag: &str, env: &[(&str, &str)]) -> Gateway {
    let dir = std::env::temp_dir().join(format!("fastmcp-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut vars: Vec<(String, String)> = vec![
        ("MCP_DEMO_URL".into(), "http://127.0.0.1:9/mcp".into()),
        ("AUDIT_WORM_DIR".into(), dir.join("audit").display().to_string()),
        ("FASTMCP_DATA_DIR".into(), dir.join("data").display().to_string()),
    ];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = Config::load(None, vars).unwrap();
    Gateway {
        auth: None,
        policy: Arc::new(PolicyEngine::enabled(CompiledPolicy::compile(&PolicySources::embedded()).unwrap())),
        reloader: None,
        state: Arc::new(MemoryState::default()),
        audit: AuditLog::open(&cfg.audit.dir, "t".into()).unwrap(),
        catalog: Catalog::new(&cfg.mcp.servers).unwrap(),
        fed: Federation::new(&cfg.mcp).unwrap(),
        rest: crate::rest::RestState::build(&cfg, None).unwrap(),
        cfg,
    }
}

fn who(roles: &[&str]) -> Principal {
    Principal {
        sub: "a".into(),
        tenant: "acme".into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..Principal::anonymous()
    }
}

async fn call(gw: &Gateway, p: &Principal, body: &Value) -> Verdict {
    let server = gw.catalog.server("demo").unwrap();
    let bytes = body.to_string();
    let policy = gw.policy.snapshot();
    let req = McpPost {
        policy: &policy,
        server: &server,
        principal: p,
        body: bytes.as_bytes(),
        mcp_method_header: None,
        mcp_name_header: None,
        action_token_header: None,
        path: "/mcp/demo",
        client_ip: "127.0.0.1",
        corr_id: "c",
        protocol_version: None,
        session_elicitation: false,
    };
    gw.mcp_post(&req).await
}

fn tool(name: &str, meta: Option<&str>) -> Value {
    let mut v = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":name,"arguments":{"a":1}}});
    if let Some(t) = meta {
        v["params"]["_meta"] = json!({"fastmcp/action_token": t});
    }
    v
}

fn status(v: &Verdict) -> u16 {
    match v {
        Verdict::Answer(a) => a.status,
        _ => 0,
    }
}

#[tokio::test]
async fn denied_calls_use_no_quota() {
    let gw = gateway(
        "quota",
        &[("RATE_BUCKET_BURST", "2"), ("RATE_LIMIT_DEFAULT_RPS", "0.001"), ("MCP_DEMO_TRUSTED", "true")],
    );
    for _ in 0..5 {
        assert_eq!(status(&call(&gw, &who(&["agent"]), &tool("x", None)).await), 403);
    }
    let admin = who(&["mcp-admin"]);
    // Untrusted-by-annotation tools are destructive: held, but still rate limited after policy.
    assert_eq!(status(&call(&gw, &admin, &tool("x", None)).await), 200, "held");
    assert_eq!(status(&call(&gw, &admin, &tool("x", None)).await), 200, "held");
    assert_eq!(status(&call(&gw, &admin, &tool("x", None)).await), 429);
}

#[tokio::test]
async fn hold_then_confirm_forwards_once_without_the_token() {
    let gw = gateway("hold", &[]);
    let admin = who(&["mcp-admin"]);
    let Verdict::Answer(held) = call(&gw, &admin, &tool("rm", None)).await else { panic!("expected a hold") };
    let token = held.body["error"]["data"]["action_token"].as_str().unwrap().to_string();
    let Verdict::Forward(f) = call(&gw, &admin, &tool("rm", Some(&token))).await else { panic!("expected forward") };
    assert_eq!(f.decision, "confirmed");
    let sent: Value = serde_json::from_slice(&f.body.unwrap()).unwrap();
    assert!(sent["params"]["_meta"].get("fastmcp/action_token").is_none(), "the gateway's token is not forwarded");
    assert_eq!(status(&call(&gw, &admin, &tool("rm", Some(&token))).await), 409);
}

#[tokio::test]
async fn malformed_and_mismatched_requests_are_400() {
    let gw = gateway("bad", &[]);
    let p = who(&["mcp-admin"]);
    assert_eq!(status(&call(&gw, &p, &json!([tool("x", None)])).await), 400);
    assert_eq!(status(&call(&gw, &p, &json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}})).await), 400);
}
