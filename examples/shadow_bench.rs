//! The hot path's added cost of shadow policy evaluation: `cargo run --release --example
//! shadow_bench`. Measures, per decision, the live `decide()` alone with no shadow loaded
//! (the only extra work is `PolicySnapshot::shadow()`, an `Option` check), the cost of that
//! check, and `Shadow::offer` (the enqueue the enforcement core adds when a candidate is
//! loaded: the input moved, the live answer copied, one `try_send`). The candidate's own
//! evaluation runs on the shadow thread, off the request's path: about one more `decide()`
//! of CPU per decision, on another core.

use std::time::Instant;

use fastmcp::policy::bundle::Bundle;
use fastmcp::policy::shadow::{Shadow, ShadowLimits};
use fastmcp::policy::{CompiledPolicy, PolicyEngine, PolicySources};

#[path = "../benches/common/policy_input.rs"]
mod policy_input;

fn percentiles(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.total_cmp(b));
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

fn main() {
    let sources = PolicySources::embedded();
    let engine = PolicyEngine::enabled(CompiledPolicy::compile(&sources).expect("policy compiles"));
    let n = 5000;

    let parts = policy_input::CallParts::new();
    let off = engine.snapshot();
    let mut live = Vec::with_capacity(n);
    let mut check = Vec::with_capacity(n);
    for _ in 0..n {
        let doc = parts.build();
        let t = Instant::now();
        let d = off.decide(&doc);
        live.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(d.is_ok_and(|d| d.allow));
        let t = Instant::now();
        let none = std::hint::black_box(&off).shadow().is_none();
        check.push(t.elapsed().as_secs_f64() * 1e9);
        assert!(none);
    }

    let deny = Bundle { policies_yaml: Some("roles: {}\nrules: []\n".into()), rego: vec![] };
    let candidate = CompiledPolicy::compile(&deny.over(&sources)).expect("candidate compiles");
    engine.set_shadow(Some(Shadow::start(candidate, ShadowLimits { queue: 1024, keep: 100 }).expect("shadow")));
    let on = engine.snapshot();
    let shadow = on.shadow().expect("loaded");
    let mut offer = Vec::with_capacity(n);
    for _ in 0..n {
        let doc = parts.build();
        let d = on.decide(&doc);
        let t = Instant::now();
        shadow.offer("tools.invoke", doc, &d);
        offer.push(t.elapsed().as_secs_f64() * 1e6);
    }
    // The same enqueue with the shadow thread idle (the queue drained between offers): what
    // the request pays when the candidate's evaluation is not competing for the same core.
    let mut idle = Vec::with_capacity(n / 10);
    for i in 0..n / 10 {
        let doc = parts.build();
        let d = on.decide(&doc);
        loop {
            let d = shadow.diff("");
            let done = d["evaluated"].as_u64().unwrap_or(0) + d["dropped"].as_u64().unwrap_or(0);
            if done >= (n + i) as u64 {
                break;
            }
            // Let the (lowest-priority) shadow thread drain the queue.
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let t = Instant::now();
        shadow.offer("tools.invoke", doc, &d);
        idle.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let diff = shadow.diff(&engine.revision());
    let (lm, lp) = percentiles(live);
    let (cm, cp) = percentiles(check);
    let (om, op) = percentiles(offer);
    println!("live decide() (shadow off):     median {lm:.1} us, p99 {lp:.1} us");
    println!("shadow() check (shadow off):    median {cm:.0} ns, p99 {cp:.0} ns");
    println!("offer() enqueue (shadow on):    median {om:.2} us, p99 {op:.2} us");
    let (im, ip) = percentiles(idle);
    println!("offer() enqueue, thread idle:   median {im:.2} us, p99 {ip:.2} us");
    println!("shadow thread: evaluated {} of {n}, dropped {} (queue full)", diff["evaluated"], diff["dropped"]);
}
