//! `cargo bench --bench policy`: one decision of the shipped policy on the RVM (the serving
//! path) and on the interpreter, for an allowed MCP `tools/call`. divan reports the median;
//! `cargo run --release --example policy_bench` also prints the p99.

use divan::Bencher;
use fastmcp::policy::{CompiledPolicy, PolicySources, DECISION_RULE};
#[path = "common/policy_input.rs"]
mod policy_input;

fn main() {
    divan::main();
}

#[divan::bench]
fn decide_rvm(bencher: Bencher) {
    let policy = CompiledPolicy::compile(&PolicySources::embedded()).expect("policy");
    assert_eq!(policy.evaluator(), "rvm");
    let input = policy_input::allowed_tools_call();
    bencher.bench_local(|| policy.decide(divan::black_box(&input)).expect("decision"));
}

#[divan::bench]
fn decide_interpreter(bencher: Bencher) {
    let mut engine = PolicySources::embedded().engine(false).expect("engine");
    let rv: regorus::Value = serde_json::from_value(policy_input::allowed_tools_call()).expect("input");
    bencher.bench_local(|| {
        engine.set_input(rv.clone());
        engine.eval_rule(DECISION_RULE.to_string()).expect("decision")
    });
}
