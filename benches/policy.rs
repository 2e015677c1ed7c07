//! `cargo bench --bench policy`: one decision of the shipped policy on the RVM (the serving
//! path) and on the interpreter, for an allowed MCP `tools/call`. divan reports the median;
//! `cargo run --release --example policy_bench` also prints the p99.

use divan::Bencher;
use fastmcp::policy::{CompiledPolicy, PolicySources, DECISION_RULE};
use serde_json::{json, Value};

fn main() {
    divan::main();
}

fn input() -> Value {
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

#[divan::bench]
fn decide_rvm(bencher: Bencher) {
    let policy = CompiledPolicy::compile(&PolicySources::embedded()).expect("policy");
    assert_eq!(policy.evaluator(), "rvm");
    let input = input();
    bencher.bench_local(|| policy.decide(divan::black_box(&input)).expect("decision"));
}

#[divan::bench]
fn decide_interpreter(bencher: Bencher) {
    let mut engine = PolicySources::embedded().engine(false).expect("engine");
    let rv: regorus::Value = serde_json::from_value(input()).expect("input");
    bencher.bench_local(|| {
        engine.set_input(rv.clone());
        engine.eval_rule(DECISION_RULE.to_string()).expect("decision")
    });
}
