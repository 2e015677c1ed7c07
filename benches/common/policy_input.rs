//! The policy input of an allowed MCP `tools/call`, shared by the policy benchmarks
//! (`benches/policy.rs`, `examples/policy_bench.rs`, `examples/shadow_bench.rs`).

use serde_json::{json, Value};

pub fn allowed_tools_call() -> Value {
    json!({
        "subject": {"sub": "a", "tenant": "acme", "roles": ["mcp-admin"], "scopes": [], "claims": {"sub": "a"}},
        "action": "tools.invoke",
        "resource": {"toolId": "mcp:bench:echo", "provider_id": "mcp", "tenant": "public",
                     "safety_tags": [], "annotations": {}, "required_scopes": ["mcp.bench"]},
        "request": {"protocol": "mcp", "mcp_method": "tools/call", "arguments": {"text": "hello"},
                    "path": "/mcp/bench", "method": "POST"},
        "context": {"time": "2026-01-01T00:00:00Z", "client_ip": "127.0.0.1", "corr_id": "abc"}
    })
}
