//! CPU cost of the pipeline core for one allowed `tools/call`, without sockets:
//! `cargo run --release --example pipeline_bench`.

use std::sync::Arc;
use std::time::Instant;

use fastmcp::audit::AuditLog;
use fastmcp::auth::Principal;
use fastmcp::catalog::Catalog;
use fastmcp::config::Config;
use fastmcp::gateway::{Gateway, Parts};
use fastmcp::mcp::inbound::{self, Inbound, Verdict};
use fastmcp::policy::{CompiledPolicy, PolicyEngine, PolicySources};
use fastmcp::state::memory::MemoryState;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = std::env::temp_dir().join("fastmcp-pipeline-bench");
    let _ = std::fs::remove_dir_all(&dir);
    let env = vec![
        ("MCP_BENCH_URL".to_string(), "http://127.0.0.1:9/mcp".to_string()),
        ("FASTMCP__MCP__SERVERS__BENCH__TOOL_TAGS".to_string(), "{echo: []}".to_string()),
        ("RATE_LIMIT_DEFAULT_RPS".to_string(), "1000000000".to_string()),
        ("RATE_BUCKET_BURST".to_string(), "1000000000".to_string()),
        ("FASTMCP_DATA_DIR".to_string(), dir.join("data").display().to_string()),
    ];
    let cfg = Config::load(None, env).expect("config");
    for (label, policy) in [
        ("policy on ", PolicyEngine::enabled(CompiledPolicy::compile(&PolicySources::embedded()).expect("policy"))),
        ("policy off", PolicyEngine::disabled()),
    ] {
        let gw = Gateway::new(Parts {
            auth: None,
            policy: Arc::new(policy),
            reloader: None,
            state: Arc::new(MemoryState::default()),
            backend: fastmcp::state::Backend::memory(),
            audit: AuditLog::open(&dir, "bench".into()).expect("audit"),
            catalog: Catalog::new(&cfg.mcp.servers).expect("catalog"),
            fed: fastmcp::mcp::federation::Federation::new(&cfg.mcp).expect("federation"),
            rest: fastmcp::rest::RestState::build(&cfg, None).expect("rest"),
            pin_store: Arc::new(fastmcp::pinning::MemoryPins::default()),
            notifier: None,
            cfg: cfg.clone(),
        });
        let server = gw.catalog.server("bench").expect("server");
        let principal = Principal { roles: vec!["mcp-admin".into()], tenant: "acme".into(), ..Principal::anonymous() };
        let body =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}"#;
        let n = 5000;
        let t = Instant::now();
        for _ in 0..n {
            let policy = gw.policy.snapshot();
            let parsed = inbound::parse(body, None, None);
            let req = Inbound {
                policy: &policy,
                server: &server,
                principal: &principal,
                http_method: "POST",
                body,
                message: Some(&parsed),
                target_name: None,
                has_body: true,
                mcp_method_header: None,
                mcp_name_header: None,
                session_id: None,
                action_token_header: None,
                protocol_version: None,
                path: "/mcp/bench",
                client_ip: "127.0.0.1",
                corr_id: "c",
                session_elicitation: false,
            };
            match gw.mcp_post(&req).await {
                Verdict::Forward(f) => assert!(f.admitted.outcome().allows()),
                _ => panic!("refused"),
            }
        }
        println!(
            "{label}: mcp_post {:.1} us per allowed tools/call (decision record written, fsync not awaited)",
            t.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}
