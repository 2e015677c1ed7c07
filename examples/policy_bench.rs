//! Policy decision cost on the shipped policy: `cargo run --release --example policy_bench`.
//! Prints the median and p99 of one `decide()` on the RVM path and on the interpreter.

use std::time::Instant;

use fastmcp::policy::{CompiledPolicy, PolicySources, DECISION_RULE};
#[path = "../benches/common/policy_input.rs"]
mod policy_input;

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

fn main() {
    let sources = PolicySources::embedded();
    let policy = CompiledPolicy::compile(&sources).expect("policy compiles");
    let input = policy_input::allowed_tools_call();
    let n = 5000;
    let mut rvm = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let d = policy.decide(&input).expect("decision");
        rvm.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(d.allow);
    }
    let mut engine = sources.engine(false).expect("engine");
    let rv: regorus::Value = serde_json::from_value(input.clone()).expect("input");
    let mut interp = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        engine.set_input(rv.clone());
        engine.eval_rule(DECISION_RULE.to_string()).expect("decision");
        interp.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (m1, p1) = percentiles(rvm);
    let (m2, p2) = percentiles(interp);
    println!("evaluator serving decisions: {}", policy.evaluator());
    println!("decide() via {}: median {m1:.1} us, p99 {p1:.1} us", policy.evaluator());
    println!("interpreter eval_rule:  median {m2:.1} us, p99 {p2:.1} us");
}
