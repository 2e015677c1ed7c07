//! Shadow policy: a candidate evaluated beside the live policy, off the hot path.
//!
//! The enforcement core hands each decision's already-built input and the live answer to
//! [`Shadow::offer`], which only `try_send`s it into a bounded queue: the live decision never
//! waits for the candidate. One dedicated thread drains the queue, evaluates the candidate,
//! counts every (live, shadow) pair in `fastmcp_policy_shadow_decisions_total{live,shadow}`
//! and keeps the first `keep` inputs whose answers differ — arguments as the SHA-256 of their
//! canonical JSON, never raw. A full queue drops the evaluation and counts it
//! (`fastmcp_policy_shadow_dropped_total`). Dropping the last handle closes the queue and the
//! thread ends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;
use serde_json::{json, Value};

use super::{CompiledPolicy, Decision, Input};
use crate::error::GatewayError;
use crate::metrics::METRICS;

/// Queue length and how many differences are kept.
#[derive(Debug, Clone, Copy)]
pub struct ShadowLimits {
    pub queue: usize,
    pub keep: usize,
}

/// One side's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub allow: bool,
    pub reasons: Vec<String>,
}

impl Verdict {
    /// An evaluation error is a deny (the live side answers 503 for it).
    pub fn of(d: &Result<Decision, GatewayError>) -> Verdict {
        match d {
            Ok(d) => Verdict { allow: d.allow, reasons: d.reasons.clone() },
            Err(e) => Verdict { allow: false, reasons: vec![format!("error: {e}")] },
        }
    }

    pub fn label(&self) -> &'static str {
        if self.allow {
            "allow"
        } else {
            "deny"
        }
    }
}

/// One decision handed to the shadow.
struct Job {
    action: String,
    input: Input,
    live: Verdict,
}

/// A kept difference (what `GET /admin/policy/shadow/diff` lists).
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub action: String,
    pub tool: Option<String>,
    pub subject: Option<String>,
    pub tenant: Option<String>,
    pub corr_id: Option<String>,
    /// SHA-256 of the canonical JSON of `request.arguments`.
    pub arguments_hash: String,
    pub live: Verdict,
    pub shadow: Verdict,
}

impl Difference {
    /// The kept facts of `input` (never its raw arguments).
    pub fn of(action: &str, input: &Input, live: Verdict, shadow: Verdict) -> Difference {
        let args = input.json_at(&["request", "arguments"]);
        Difference {
            action: action.to_string(),
            tool: input.text(&["resource", "toolId"]),
            subject: input.text(&["subject", "sub"]),
            tenant: input.text(&["subject", "tenant"]),
            corr_id: input.text(&["context", "corr_id"]),
            arguments_hash: crate::canonical::sha256_hex(crate::canonical::to_string(&args).as_bytes()),
            live,
            shadow,
        }
    }
}

/// What the worker has seen since the candidate was loaded.
#[derive(Default)]
struct Report {
    /// `[live allow?][shadow allow?]`.
    pairs: [[u64; 2]; 2],
    kept: Vec<Difference>,
    /// Differences seen past the kept ones.
    not_kept: u64,
}

/// A loaded candidate and its queue.
pub struct Shadow {
    candidate: Arc<CompiledPolicy>,
    tx: SyncSender<Job>,
    report: Arc<Mutex<Report>>,
    dropped: AtomicU64,
    loaded_at: String,
}

impl Shadow {
    /// Starts the worker thread for `candidate`.
    pub fn start(candidate: CompiledPolicy, limits: ShadowLimits) -> Result<Shadow, String> {
        let (shadow, rx) = Shadow::unstarted(candidate, limits);
        let (policy, report, keep) = (shadow.candidate.clone(), shadow.report.clone(), limits.keep);
        std::thread::Builder::new()
            .name("fastmcp-policy-shadow".into())
            .spawn(move || work(rx, &policy, &report, keep))
            .map_err(|e| format!("policy shadow thread: {e}"))?;
        Ok(shadow)
    }

    fn unstarted(candidate: CompiledPolicy, limits: ShadowLimits) -> (Shadow, Receiver<Job>) {
        let (tx, rx) = sync_channel(limits.queue.max(1));
        let loaded_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let shadow = Shadow {
            candidate: Arc::new(candidate),
            tx,
            report: Arc::default(),
            dropped: AtomicU64::new(0),
            loaded_at,
        };
        (shadow, rx)
    }

    pub fn revision(&self) -> &str {
        &self.candidate.revision
    }

    /// The compiled candidate (promote swaps this very policy in).
    pub fn candidate(&self) -> Arc<CompiledPolicy> {
        self.candidate.clone()
    }

    /// Queues `input` and the live answer for the candidate; never blocks. A full queue
    /// drops it (counted).
    pub fn offer(&self, action: &str, input: Input, live: &Result<Decision, GatewayError>) {
        let job = Job { action: action.to_string(), input, live: Verdict::of(live) };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(job) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            METRICS.policy_shadow_dropped.inc();
        }
    }

    /// The diff document of `GET /admin/policy/shadow/diff`.
    pub fn diff(&self, live_revision: &str) -> Value {
        let r = self.report.lock();
        let label = |b: usize| if b == 1 { "allow" } else { "deny" };
        let mut counts = Vec::new();
        let mut evaluated = 0;
        for (l, row) in r.pairs.iter().enumerate() {
            for (s, n) in row.iter().enumerate() {
                evaluated += n;
                counts.push(json!({"live": label(l), "shadow": label(s), "count": n}));
            }
        }
        let differing = r.pairs[0][1] + r.pairs[1][0];
        json!({
            "candidate_revision": self.revision(),
            "live_revision": live_revision,
            "loaded_at": self.loaded_at,
            "evaluated": evaluated,
            "differing": differing,
            "dropped": self.dropped.load(Ordering::Relaxed),
            "counts": counts,
            "differences": r.kept,
            "differences_not_kept": r.not_kept,
        })
    }
}

/// The worker: evaluates each queued input on the candidate until the queue closes.
fn work(rx: Receiver<Job>, candidate: &CompiledPolicy, report: &Mutex<Report>, keep: usize) {
    lowest_priority();
    for job in rx {
        let shadow = Verdict::of(&candidate.decide(&job.input));
        record(report, keep, job, shadow);
    }
}

/// Runs this thread at nice 19: on a busy machine the scheduler then prefers the request
/// threads to the shadow (without it, the woken shadow thread can preempt the thread that
/// just queued a decision). Best effort: a refusal leaves the default priority.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its integer arguments; on Linux, `who = 0` with
    // PRIO_PROCESS names the calling thread.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 19);
    }
}

fn record(report: &Mutex<Report>, keep: usize, job: Job, shadow: Verdict) {
    METRICS.policy_shadow_decisions.with_label_values(&[job.live.label(), shadow.label()]).inc();
    let mut r = report.lock();
    r.pairs[usize::from(job.live.allow)][usize::from(shadow.allow)] += 1;
    if job.live.allow == shadow.allow {
        return;
    }
    if r.kept.len() < keep {
        r.kept.push(Difference::of(&job.action, &job.input, job.live, shadow));
    } else {
        r.not_kept += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::bundle::Bundle;
    use crate::policy::PolicySources;

    fn deny_all() -> CompiledPolicy {
        let b = Bundle { policies_yaml: Some("roles: {}\nrules: []\n".into()), rego: vec![] };
        CompiledPolicy::compile(&b.over(&PolicySources::embedded())).expect("compile")
    }

    fn input(tool: &str, secret: &str) -> Input {
        Input::from_json(&json!({"subject": {"sub": "alice", "tenant": "acme", "roles": ["mcp-user"], "scopes": []},
               "action": "tools.invoke",
               "resource": {"toolId": tool, "provider_id": "mcp", "tenant": "public", "safety_tags": [],
                            "required_scopes": []},
               "request": {"arguments": {"password": secret}},
               "context": {"corr_id": "c1"}}))
    }

    fn allowed() -> Result<Decision, GatewayError> {
        Ok(Decision { allow: true, reasons: vec!["live-rule".into()], ..Default::default() })
    }

    #[test]
    fn differences_are_counted_and_kept_without_raw_arguments() {
        let shadow = Shadow::start(deny_all(), ShadowLimits { queue: 16, keep: 1 }).expect("start");
        shadow.offer("tools.invoke", input("mcp:demo:echo", "hunter2"), &allowed());
        shadow.offer("tools.invoke", input("mcp:demo:other", "hunter2"), &allowed());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let diff = loop {
            let d = shadow.diff("live");
            if d["evaluated"] == 2 || std::time::Instant::now() > deadline {
                break d;
            }
            std::thread::yield_now();
        };
        assert_eq!(diff["evaluated"], 2);
        assert_eq!(diff["differing"], 2);
        assert_eq!(diff["differences_not_kept"], 1, "only `keep` are kept");
        let kept = &diff["differences"][0];
        assert_eq!(kept["tool"], "mcp:demo:echo");
        assert_eq!((kept["live"]["allow"].clone(), kept["shadow"]["allow"].clone()), (json!(true), json!(false)));
        assert_eq!(kept["subject"], "alice");
        assert!(!diff.to_string().contains("hunter2"), "arguments are hashed");
        let want = crate::canonical::sha256_hex(br#"{"password":"hunter2"}"#);
        assert_eq!(kept["arguments_hash"], want.as_str());
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (shadow, _rx) = Shadow::unstarted(deny_all(), ShadowLimits { queue: 1, keep: 10 });
        shadow.offer("tools.invoke", input("a", ""), &allowed());
        shadow.offer("tools.invoke", input("b", ""), &allowed());
        shadow.offer("tools.invoke", input("c", ""), &allowed());
        assert_eq!(shadow.diff("live")["dropped"], 2);
    }

    #[test]
    fn an_error_is_a_deny() {
        let e: Result<Decision, GatewayError> = Err(GatewayError::Unavailable { message: "x".into() });
        assert_eq!(Verdict::of(&e).label(), "deny");
    }
}
