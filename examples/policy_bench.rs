//! Policy decision cost: `cargo run --release --example policy_bench`.
//! Prints the median and p99 of one `decide()` on the RVM path and on the interpreter, for the
//! shipped policy and for the same policy with 1,000 more seed-style rules (the cost must stay
//! flat as rules grow: `authz.rego` only visits the rules the input's action can match).
//!
//! Env: `POLICIES_FILE` / `REGO_DIR` decide a policy of your own instead of the embedded one;
//! `EXTRA_RULES` (default 1000) sizes the second run.

use std::path::{Path, PathBuf};
use std::time::Instant;

use fastmcp::policy::{CompiledPolicy, PolicySources, DECISION_RULE};
#[path = "../benches/common/policy_input.rs"]
mod policy_input;

/// The gateway's allocator (src/main.rs): the numbers are the serving path's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

fn sources(policies: &Path, rego: &[PathBuf]) -> PolicySources {
    PolicySources::load(policies, rego).expect("policy sources")
}

/// Median and p99 of `decide()` over `n` runs.
fn time_decide(policy: &CompiledPolicy, n: usize) -> (f64, f64) {
    let input = policy_input::allowed_tools_call();
    for _ in 0..n / 5 {
        policy.decide(&input).expect("decision"); // warm-up: the thread's evaluator, caches
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let d = policy.decide(&input).expect("decision");
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(d.allow, "the benchmark input must be allowed: {d:?}");
    }
    percentiles(samples)
}

fn main() {
    let policies = std::env::var("POLICIES_FILE").map(PathBuf::from).unwrap_or_else(|_| "\0embedded".into());
    let rego: Vec<PathBuf> = std::env::var("REGO_DIR").map(|d| vec![PathBuf::from(d)]).unwrap_or_default();
    let extra: usize = std::env::var("EXTRA_RULES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let base = sources(&policies, &rego);
    let policy = CompiledPolicy::compile(&base).expect("policy compiles");
    let n = 20_000;
    let (m1, p1) = time_decide(&policy, n);

    let grown_file = std::env::temp_dir().join(format!("fastmcp-policy-bench-{}.yml", std::process::id()));
    std::fs::write(&grown_file, policy_input::with_extra_rules(&base.policies_yaml, extra)).expect("write");
    let grown = CompiledPolicy::compile(&sources(&grown_file, &rego)).expect("grown policy compiles");
    let _ = std::fs::remove_file(&grown_file);
    let (m3, p3) = time_decide(&grown, n);

    let mut engine = base.engine(false).expect("engine");
    let rv: regorus::Value = serde_json::from_value(policy_input::allowed_tools_call()).expect("input");
    let mut interp = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        engine.set_input(rv.clone());
        engine.eval_rule(DECISION_RULE.to_string()).expect("decision");
        interp.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (m2, p2) = percentiles(interp);
    println!("evaluator serving decisions: {}", policy.evaluator());
    println!("decide() via {}: median {m1:.1} us, p99 {p1:.1} us", policy.evaluator());
    println!(
        "decide() via {} with {extra} more rules: median {m3:.1} us, p99 {p3:.1} us ({:.2}x)",
        grown.evaluator(),
        m3 / m1
    );
    println!("interpreter eval_rule:  median {m2:.1} us, p99 {p2:.1} us");
}
