//! Policy decision cost: `cargo run --release --example policy_bench`.
//! Prints the median and p99 of building the input and one `decide()` on the RVM path, for the
//! shipped policy and for the same policy with 1,000 more seed-style rules (the cost must stay
//! flat as rules grow: `authz.rego` only visits the rules the input's action can match), the
//! same decision with the input built the earlier way (a `serde_json` document converted by
//! regorus's deserializer), and the interpreter.
//!
//! The cases run interleaved, `ROUNDS` rounds of `SAMPLES` decisions each (A B C A B C …), so
//! a slow moment of the machine hits every case alike; the median is the median of the round
//! medians, the p99 is over all samples.
//!
//! Env: `POLICIES_FILE` / `REGO_DIR` decide a policy of your own instead of the embedded one;
//! `EXTRA_RULES` (default 1000) sizes the grown policy; `ROUNDS` (9), `SAMPLES` (3000).

use std::path::{Path, PathBuf};
use std::time::Instant;

use fastmcp::policy::{CompiledPolicy, Input, PolicySources, DECISION_RULE};
use serde::Deserialize;
#[path = "../benches/common/policy_input.rs"]
mod policy_input;

/// The gateway's allocator (src/main.rs): the numbers are the serving path's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn sources(policies: &Path, rego: &[PathBuf]) -> PolicySources {
    PolicySources::load(policies, rego).expect("policy sources")
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|n| n.parse().ok()).unwrap_or(default)
}

/// One case: a name and one timed decision.
struct Case<'a> {
    name: String,
    run: Box<dyn FnMut() + 'a>,
    medians: Vec<f64>,
    samples: Vec<f64>,
}

fn case<'a>(name: String, run: impl FnMut() + 'a) -> Case<'a> {
    Case { name, run: Box::new(run), medians: Vec::new(), samples: Vec::new() }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let policies = std::env::var("POLICIES_FILE").map(PathBuf::from).unwrap_or_else(|_| "\0embedded".into());
    let rego: Vec<PathBuf> = std::env::var("REGO_DIR").map(|d| vec![PathBuf::from(d)]).unwrap_or_default();
    let (extra, rounds, per_round) = (env("EXTRA_RULES", 1000), env("ROUNDS", 9), env("SAMPLES", 3000));
    let base = sources(&policies, &rego);
    let policy = CompiledPolicy::compile(&base).expect("policy compiles");
    let grown_file = std::env::temp_dir().join(format!("fastmcp-policy-bench-{}.yml", std::process::id()));
    std::fs::write(&grown_file, policy_input::with_extra_rules(&base.policies_yaml, extra)).expect("write");
    let grown = CompiledPolicy::compile(&sources(&grown_file, &rego)).expect("grown policy compiles");
    let _ = std::fs::remove_file(&grown_file);
    let mut engine = base.engine(false).expect("engine");
    let rv: regorus::Value = serde_json::from_value(policy_input::allowed_tools_call()).expect("input");

    let parts = policy_input::CallParts::new();
    let allowed = |p: &CompiledPolicy, input: &Input| assert!(p.decide(input).expect("decision").allow);
    let mut cases = [
        case(format!("decide() via {}", policy.evaluator()), || allowed(&policy, &parts.build())),
        case(format!("decide() via {} with {extra} more rules", grown.evaluator()), || allowed(&grown, &parts.build())),
        case("decide() with the input built as JSON and deserialized (before)".into(), || {
            let doc = policy_input::allowed_tools_call();
            allowed(&policy, &Input::from(regorus::Value::deserialize(&doc).expect("input")))
        }),
        case("interpreter eval_rule".into(), || {
            engine.set_input(rv.clone());
            engine.eval_rule(DECISION_RULE.to_string()).expect("decision");
        }),
    ];
    for c in cases.iter_mut() {
        (0..per_round).for_each(|_| (c.run)()); // warm-up: the thread's evaluator, caches
    }
    for _ in 0..rounds {
        for c in cases.iter_mut() {
            let mut round = Vec::with_capacity(per_round);
            for _ in 0..per_round {
                let t = Instant::now();
                (c.run)();
                round.push(t.elapsed().as_secs_f64() * 1e6);
            }
            c.samples.extend_from_slice(&round);
            c.medians.push(median(&mut round));
        }
    }
    println!("evaluator serving decisions: {}", policy.evaluator());
    let mut first = None;
    for c in cases.iter_mut() {
        let m = median(&mut c.medians);
        c.samples.sort_by(|a, b| a.total_cmp(b));
        let p99 = c.samples[c.samples.len() * 99 / 100];
        let ratio = first.map(|f: f64| format!(" ({:.2}x)", m / f)).unwrap_or_default();
        println!("{}: median {m:.1} us, p99 {p99:.1} us{ratio}", c.name);
        first.get_or_insert(m);
    }
}
