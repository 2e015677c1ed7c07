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

/// What the gateway holds when it builds the input of [`allowed_tools_call`]: the cached
/// principal, the tool's resource and the parsed arguments.
#[allow(dead_code)] // not every benchmark builds inputs
pub struct CallParts {
    principal: fastmcp::auth::Principal,
    resource: Value,
    arguments: Value,
}

#[allow(dead_code)]
impl CallParts {
    pub fn new() -> CallParts {
        let doc = allowed_tools_call();
        let principal = fastmcp::auth::Principal {
            sub: "a".into(),
            tenant: "acme".into(),
            roles: vec!["mcp-admin".into()],
            claims: doc["subject"]["claims"].clone(),
            ..fastmcp::auth::Principal::anonymous()
        };
        CallParts { principal, resource: doc["resource"].clone(), arguments: doc["request"]["arguments"].clone() }
    }

    /// The input, built the way the gateway builds every input (straight into the evaluator's
    /// value type): a benchmark that times this and the decision times what a request pays.
    pub fn build(&self) -> fastmcp::policy::Input {
        let facts = fastmcp::policy::input::RequestFacts {
            protocol: "mcp",
            mcp_method: Some("tools/call"),
            arguments: &self.arguments,
            path: "/mcp/bench",
            method: "POST",
            client_ip: "127.0.0.1",
            corr_id: "abc",
        };
        fastmcp::policy::input::build(&self.principal, "tools.invoke", &self.resource, &facts)
    }
}

/// `policies_yaml` with `n` more seed-style rules (as JSON, which is YAML too): per-tool grants
/// by role, provider-wide grants, denies and confirmation obligations on other actions, none
/// of which matches [`allowed_tools_call`] — a large policy where few rules apply.
#[allow(dead_code)] // not every benchmark grows the policy
pub fn with_extra_rules(policies_yaml: &str, n: usize) -> String {
    let mut doc: Value = serde_yaml_ng::from_str(policies_yaml).expect("policies.yml parses");
    let rules = doc["rules"].as_array_mut().expect("policies.yml has rules");
    for i in 0..n {
        rules.push(match i % 4 {
            0 => json!({"id": format!("extra-{i}"), "effect": "allow", "when": {
                "action": "tools.invoke", "resource.toolId": format!("svc{i}:tool"),
                "subject.roles": [format!("role-{i}")]}}),
            1 => json!({"id": format!("extra-{i}"), "effect": "allow", "when": {
                "action": "tools.invoke", "resource.provider_id": format!("provider-{i}"),
                "subject.roles": [format!("role-{i}"), "ops"]}}),
            2 => json!({"id": format!("extra-{i}"), "effect": "deny", "when": {
                "action": format!("custom.action-{i}"), "subject.tenant": format!("tenant-{i}")}}),
            _ => json!({"id": format!("extra-{i}"), "effect": "allow", "require_confirmation": true, "when": {
                "action": ["tools.confirm", format!("custom.action-{i}")],
                "resource.safety_tags_any": ["financial"]}}),
        });
    }
    serde_json::to_string_pretty(&doc).expect("json")
}
