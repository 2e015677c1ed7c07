//! Hot reload: the policy files are watched (polled for content changes); a change is
//! compiled and its Rego tests run before it is swapped in. A broken change keeps the old
//! policy serving, logs the error (regorus reports file:line) and counts
//! `fastmcp_policy_reloads_total{result="error"}`. `POST /admin/policy/reload` forces a reload.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::{testrunner, CompiledPolicy, PolicyEngine, PolicySources};
use crate::audit::{AuditActor, AuditDecision, AuditEvent, AuditLog};
use crate::metrics::METRICS;

/// The outcome of one reload attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Reload {
    /// A new revision is serving.
    Applied { revision: String },
    /// The sources did not change.
    Unchanged { revision: String },
    /// The change was refused; the old revision keeps serving.
    Refused { revision: String, error: String },
}

/// Reloads `engine` from the configured paths.
pub struct Reloader {
    engine: Arc<PolicyEngine>,
    audit: Option<AuditLog>,
    policies_file: PathBuf,
    rego_dir: PathBuf,
    /// Serializes reloads (watcher and admin endpoint).
    lock: Mutex<()>,
}

impl Reloader {
    pub fn new(
        engine: Arc<PolicyEngine>,
        policies_file: PathBuf,
        rego_dir: PathBuf,
        audit: Option<AuditLog>,
    ) -> Reloader {
        Reloader { engine, audit, policies_file, rego_dir, lock: Mutex::new(()) }
    }

    /// Records the reload in the audit trail (DESIGN §9: policy reloads are audited).
    fn audit(&self, actor: Option<&AuditActor>, result: &str, revision: &str, detail: Option<&str>) {
        let Some(audit) = &self.audit else { return };
        let event = AuditEvent {
            action: "policy.reload".into(),
            actor: actor.cloned(),
            phase: "decision",
            decision: AuditDecision {
                allow: result == "applied",
                policy_revision: revision.to_string(),
                reasons: detail.map(|d| vec![d.to_string()]).unwrap_or_default(),
                result: result.into(),
            },
            ..Default::default()
        };
        // The watcher thread has no runtime; the append itself is synchronous.
        if let Err(e) = futures::executor::block_on(audit.append(&event, true)) {
            tracing::error!(error = %e, "audit write failed for a policy reload");
        }
    }

    /// Compiles and tests the current sources; swaps them in if both succeed.
    pub fn reload(&self) -> Reload {
        self.reload_by(None)
    }

    /// [`Reloader::reload`] asked for by `actor` (the admin API), who its record names.
    pub fn reload_by(&self, actor: Option<&AuditActor>) -> Reload {
        let _guard = self.lock.lock();
        let serving = self.engine.revision();
        let result =
            PolicySources::load(&self.policies_file, std::slice::from_ref(&self.rego_dir)).and_then(|sources| {
                if sources.revision() == serving {
                    return Ok(None);
                }
                let compiled = CompiledPolicy::compile(&sources)?;
                let failed: Vec<String> = testrunner::run(&sources)?
                    .into_iter()
                    .filter(|t| !t.passed)
                    .map(|t| format!("{}: {} ({})", t.file, t.rule, t.detail))
                    .collect();
                if !failed.is_empty() {
                    return Err(format!("policy tests failed: {}", failed.join("; ")));
                }
                Ok(Some(compiled))
            });
        match result {
            Ok(None) => Reload::Unchanged { revision: serving },
            Ok(Some(compiled)) => {
                let revision = compiled.revision.clone();
                tracing::info!(from = %serving, to = %revision, evaluator = compiled.evaluator(), "policy reloaded");
                self.engine.swap(compiled);
                METRICS.policy_reloads.with_label_values(&["ok"]).inc();
                self.audit(actor, "applied", &revision, None);
                Reload::Applied { revision }
            }
            Err(error) => {
                tracing::error!(revision = %serving, error = %error, "policy reload refused; the previous policy keeps serving");
                METRICS.policy_reloads.with_label_values(&["error"]).inc();
                self.audit(actor, "refused", &serving, Some(&error));
                Reload::Refused { revision: serving, error }
            }
        }
    }

    /// Polls the sources every `interval` and reloads on a change. A refused change is not
    /// retried until the files change again.
    pub fn watch(self: Arc<Self>, interval: Duration) -> Result<(), String> {
        std::thread::Builder::new()
            .name("fastmcp-policy-watch".into())
            .spawn(move || {
                let mut last_seen = self.engine.revision();
                loop {
                    std::thread::sleep(interval);
                    let Ok(sources) = PolicySources::load(&self.policies_file, std::slice::from_ref(&self.rego_dir))
                    else {
                        continue;
                    };
                    let revision = sources.revision();
                    if revision != last_seen {
                        last_seen = revision;
                        self.reload();
                    }
                }
            })
            .map(|_| ())
            .map_err(|e| format!("policy watcher thread: {e}"))
    }
}
