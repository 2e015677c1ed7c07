//! `cargo bench --bench policy`: one decision of the shipped policy on the RVM (the serving
//! path) and on the interpreter, for an allowed MCP `tools/call`, and on the RVM with 1,000
//! more rules (each with building the input, as the gateway does). divan reports the median;
//! `cargo run --release --example policy_bench` also prints the p99.

use divan::Bencher;
use fastmcp::policy::{CompiledPolicy, PolicySources, DECISION_RULE};
#[path = "common/policy_input.rs"]
mod policy_input;

/// The gateway's allocator (src/main.rs): the numbers are the serving path's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

#[divan::bench]
fn decide_rvm(bencher: Bencher) {
    let policy = CompiledPolicy::compile(&PolicySources::embedded()).expect("policy");
    assert_eq!(policy.evaluator(), "rvm");
    let parts = policy_input::CallParts::new();
    // Timed with building the input, as a request pays both.
    bencher.bench_local(|| policy.decide(&parts.build()).expect("decision"));
}

/// The same decision with 1,000 more seed-style rules that do not match the input: the rule
/// index keeps it near `decide_rvm` (the target is at most 2x).
#[divan::bench]
fn decide_rvm_1000_more_rules(bencher: Bencher) {
    let grown = policy_input::with_extra_rules(&PolicySources::embedded().policies_yaml, 1000);
    let file = std::env::temp_dir().join(format!("fastmcp-bench-policy-{}.yml", std::process::id()));
    std::fs::write(&file, grown).expect("write policy");
    let policy = CompiledPolicy::compile(&PolicySources::load(&file, &[]).expect("sources")).expect("policy");
    let _ = std::fs::remove_file(&file);
    assert_eq!(policy.evaluator(), "rvm");
    let parts = policy_input::CallParts::new();
    // Timed with building the input, as a request pays both.
    bencher.bench_local(|| policy.decide(&parts.build()).expect("decision"));
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
