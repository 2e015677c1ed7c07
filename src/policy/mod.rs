//! Policy: Rego evaluated in-process by regorus.
//!
//! A [`PolicySet`] (policies.yml as data + the `*.rego` modules) is compiled once into a
//! regorus engine; each worker thread keeps its own clone (regorus evaluation takes `&mut`),
//! refreshed when the set's revision changes. The decision lives at
//! `data.fastmcp.authz.decision`. Any evaluation failure is a deny-by-error (503), never allow.

pub mod input;
pub mod source;
pub mod testrunner;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::error::GatewayError;
pub use source::PolicySources;

/// The rule every decision is read from.
pub const DECISION_RULE: &str = "data.fastmcp.authz.decision";

/// What the policy says about one request.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Decision {
    pub allow: bool,
    #[serde(default)]
    pub require_confirmation: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Per-rule rate limit override `{"rps", "burst"}`.
    #[serde(default)]
    pub rate_limit: Option<RateOverride>,
}

/// A rate limit named by a matching rule.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct RateOverride {
    pub rps: f64,
    pub burst: u64,
}

/// A compiled policy set, immutable once built.
pub struct CompiledPolicy {
    id: u64,
    engine: regorus::Engine,
    /// Content hash of the sources: recorded with every decision.
    pub revision: String,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static LOCAL_ENGINE: RefCell<Option<(u64, regorus::Engine)>> = const { RefCell::new(None) };
}

impl CompiledPolicy {
    /// Compiles the sources (without their `*_test.rego` files).
    pub fn compile(sources: &PolicySources) -> Result<CompiledPolicy, String> {
        let engine = sources.engine(false)?;
        let mut probe = engine.clone();
        probe.set_input(regorus::Value::new_object());
        probe
            .eval_rule(DECISION_RULE.to_string())
            .map_err(|e| format!("policy does not evaluate {DECISION_RULE}: {e}"))?;
        Ok(CompiledPolicy {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            engine,
            revision: sources.revision(),
        })
    }

    /// Evaluates the decision for `input` on this thread's engine clone.
    pub fn decide(&self, input: &Value) -> Result<Decision, GatewayError> {
        let unavailable = |m: String| GatewayError::Unavailable { message: m };
        let rv: regorus::Value = serde_json::from_value(input.clone())
            .map_err(|e| unavailable(format!("policy input: {e}")))?;
        let out = LOCAL_ENGINE.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().map(|(id, _)| *id) != Some(self.id) {
                *slot = Some((self.id, self.engine.clone()));
            }
            let Some((_, engine)) = slot.as_mut() else {
                return Err(unavailable("policy engine missing".into()));
            };
            engine.set_input(rv);
            engine
                .eval_rule(DECISION_RULE.to_string())
                .map_err(|e| unavailable(format!("policy evaluation failed: {e}")))
        })?;
        let json = serde_json::to_value(&out).map_err(|e| unavailable(e.to_string()))?;
        if json.is_null() || json.as_str() == Some("<undefined>") {
            return Err(unavailable("policy decision undefined".into()));
        }
        serde_json::from_value(json).map_err(|e| unavailable(format!("malformed decision: {e}")))
    }
}

/// The serving policy, or none when policy is disabled by config (everything allowed).
#[derive(Clone)]
pub struct PolicyEngine {
    current: Option<Arc<CompiledPolicy>>,
}

impl PolicyEngine {
    pub fn enabled(policy: CompiledPolicy) -> Self {
        Self {
            current: Some(Arc::new(policy)),
        }
    }

    pub fn disabled() -> Self {
        Self { current: None }
    }

    pub fn revision(&self) -> &str {
        self.current
            .as_ref()
            .map(|p| p.revision.as_str())
            .unwrap_or("disabled")
    }

    pub fn decide(&self, input: &Value) -> Result<Decision, GatewayError> {
        match &self.current {
            Some(p) => p.decide(input),
            None => Ok(Decision {
                allow: true,
                reasons: vec!["policy_disabled".into()],
                ..Default::default()
            }),
        }
    }
}

#[cfg(test)]
mod tests;
