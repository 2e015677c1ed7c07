//! Hot reload: the policy files are watched (polled for content changes); a change is
//! compiled and its Rego tests run before it is swapped in. A broken change keeps the old
//! policy serving, logs the error (regorus reports file:line) and counts
//! `fastmcp_policy_reloads_total{result="error"}`. `POST /admin/policy/reload` forces a reload.
//! A served file that disappears or becomes unreadable is such a refusal too: the embedded
//! copies are a startup fallback only ([`PolicySources::reload`]).
//!
//! A shadow candidate ([`super::shadow`]) is compiled and tested here exactly like a reload
//! ([`compile_and_tested`]) and promoted through the same swap, metric and audit record.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::bundle::Bundle;
use super::shadow::{Shadow, ShadowLimits};
use super::source::Provenance;
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
    /// Which sources the serving policy was read from; also serializes reloads, shadow
    /// loads and promotions (watcher and admin endpoints).
    serving: Mutex<Serving>,
    shadow_limits: ShadowLimits,
}

/// What is serving, and the loaded candidate's sources.
#[derive(Default)]
struct Serving {
    provenance: Provenance,
    /// The serving sources, when known (a candidate bundle is laid over them).
    sources: Option<PolicySources>,
    /// The shadow candidate's sources (serving once promoted).
    candidate: Option<PolicySources>,
}

/// Compiles `sources` and runs their Rego tests: the check every reload and every shadow
/// candidate passes before it may decide anything.
pub fn compile_and_tested(sources: &PolicySources) -> Result<CompiledPolicy, String> {
    let compiled = CompiledPolicy::compile(sources)?;
    let failed: Vec<String> = testrunner::run(sources)?
        .into_iter()
        .filter(|t| !t.passed)
        .map(|t| format!("{}: {} ({})", t.file, t.rule, t.detail))
        .collect();
    if !failed.is_empty() {
        return Err(format!("policy tests failed: {}", failed.join("; ")));
    }
    Ok(compiled)
}

impl Reloader {
    pub fn new(
        engine: Arc<PolicyEngine>,
        policies_file: PathBuf,
        rego_dir: PathBuf,
        audit: Option<AuditLog>,
    ) -> Reloader {
        let serving = Mutex::new(Serving::default());
        let shadow_limits = ShadowLimits { queue: 1024, keep: 100 };
        Reloader { engine, audit, policies_file, rego_dir, serving, shadow_limits }
    }

    /// Tells the reloader where the serving policy came from (the startup sources'
    /// [`PolicySources::provenance`]): a source read from its path must stay there.
    pub fn serving_from(self, provenance: Provenance) -> Reloader {
        self.serving.lock().provenance = provenance;
        self
    }

    /// The sources serving at startup (a shadow bundle is laid over the serving sources).
    pub fn serving_sources(self, sources: PolicySources) -> Reloader {
        {
            let mut s = self.serving.lock();
            s.provenance = sources.provenance;
            s.sources = Some(sources);
        }
        self
    }

    /// The shadow's queue length and kept differences.
    pub fn shadow_limits(mut self, limits: ShadowLimits) -> Reloader {
        self.shadow_limits = limits;
        self
    }

    /// The current sources, without falling back to embedded copies for served files.
    fn sources(&self, serving: Provenance) -> Result<PolicySources, String> {
        PolicySources::reload(&self.policies_file, std::slice::from_ref(&self.rego_dir), serving)
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
        // Held for the whole reload: one reload at a time, and the provenance it swaps in.
        let mut guard = self.serving.lock();
        let serving = self.engine.revision();
        let result = self.sources(guard.provenance).and_then(|sources| {
            if sources.revision() == serving {
                return Ok(None);
            }
            let compiled = compile_and_tested(&sources)?;
            Ok(Some((compiled, sources)))
        });
        match result {
            Ok(None) => Reload::Unchanged { revision: serving },
            Ok(Some((compiled, from))) => {
                let revision = compiled.revision.clone();
                tracing::info!(from = %serving, to = %revision, evaluator = compiled.evaluator(), "policy reloaded");
                self.engine.swap(compiled);
                guard.provenance = from.provenance;
                guard.sources = Some(from);
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

    /// Compiles and tests `bundle` laid over the serving sources, exactly like a reload,
    /// and loads it as the shadow candidate (replacing any). A broken candidate is refused and
    /// nothing changes; the live policy is never touched. Returns the candidate's revision.
    pub fn load_shadow(&self, bundle: &Bundle) -> Result<String, String> {
        let mut guard = self.serving.lock();
        let live = match &guard.sources {
            Some(s) => s.clone(),
            None => self.sources(guard.provenance)?,
        };
        let candidate = bundle.over(&live);
        let compiled = compile_and_tested(&candidate)?;
        let revision = compiled.revision.clone();
        let shadow = Shadow::start(compiled, self.shadow_limits)?;
        self.engine.set_shadow(Some(shadow));
        guard.candidate = Some(candidate);
        tracing::info!(candidate = %revision, live = %self.engine.revision(), "shadow policy loaded");
        Ok(revision)
    }

    /// Drops the shadow candidate; `false` when none was loaded.
    pub fn drop_shadow(&self) -> bool {
        let mut guard = self.serving.lock();
        guard.candidate = None;
        self.engine.set_shadow(None)
    }

    /// Serves the shadow candidate, swapped in atomically like a reload (metric, audit record
    /// `policy.reload` naming `actor`, reason `shadow_promoted`), and clears the shadow.
    /// `None` when no shadow is loaded. It serves until the next reload from the files (the
    /// watcher on a file change, or `POST /admin/policy/reload`).
    pub fn promote(&self, actor: Option<&AuditActor>) -> Option<Reload> {
        let mut guard = self.serving.lock();
        let from = self.engine.revision();
        let promoted = self.engine.promote_shadow()?;
        let revision = promoted.revision.clone();
        if let Some(sources) = guard.candidate.take() {
            guard.sources = Some(sources);
        }
        tracing::info!(from = %from, to = %revision, "shadow policy promoted");
        METRICS.policy_reloads.with_label_values(&["ok"]).inc();
        self.audit(actor, "applied", &revision, Some("shadow_promoted"));
        Some(Reload::Applied { revision })
    }

    /// Polls the sources every `interval` and reloads on a change. A refused change — a
    /// broken file, or one that disappeared or became unreadable — is counted and logged once
    /// and not retried until the files change again.
    pub fn watch(self: Arc<Self>, interval: Duration) -> Result<(), String> {
        std::thread::Builder::new()
            .name("fastmcp-policy-watch".into())
            .spawn(move || {
                let mut last_seen = self.engine.revision();
                loop {
                    std::thread::sleep(interval);
                    let serving = self.serving.lock().provenance;
                    let seen = match self.sources(serving) {
                        Ok(sources) => sources.revision(),
                        Err(e) => format!("unusable: {e}"),
                    };
                    if seen != last_seen {
                        last_seen = seen;
                        self.reload();
                    }
                }
            })
            .map(|_| ())
            .map_err(|e| format!("policy watcher thread: {e}"))
    }
}
