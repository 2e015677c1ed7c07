//! Policy: Rego evaluated in-process by regorus.
//!
//! A [`PolicySet`] (policies.yml as data + the `*.rego` modules) is compiled once into a
//! regorus engine; each worker thread keeps its own clone (regorus evaluation takes `&mut`),
//! refreshed when the set's revision changes. The decision lives at
//! `data.fastmcp.authz.decision`. Any evaluation failure is a deny-by-error (503), never allow.

pub mod bundle;
pub mod input;
pub mod normalize;
pub mod reload;
pub mod shadow;
pub mod source;
pub mod testrunner;

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::program::Program;
use regorus::rvm::RegoVM;
use serde::Deserialize;
use serde_json::Value;

use crate::error::GatewayError;
pub use input::Input;
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
    /// The RVM bytecode for the decision rule and the data it runs on, when the RVM compiler
    /// accepts the policy (several times faster than the interpreter).
    rvm: Option<(Arc<Program>, regorus::Value)>,
    /// Content hash of the sources: recorded with every decision.
    pub revision: String,
    /// `roles` of policies.yml: role → scopes.
    role_scopes: std::collections::HashMap<String, Vec<String>>,
    /// Ids of the policies.yml rules that ask for confirmation (what the approvals console
    /// names as the reason a call was held).
    confirm_rules: std::collections::HashSet<String>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A worker thread's evaluator for one compiled policy (evaluation needs `&mut`).
enum LocalEvaluator {
    Vm(Box<RegoVM>),
    Interpreter(Box<regorus::Engine>),
}

thread_local! {
    static LOCAL: RefCell<Option<(u64, LocalEvaluator)>> = const { RefCell::new(None) };
}

impl CompiledPolicy {
    /// Compiles the sources (without their `*_test.rego` files): the interpreter always, the
    /// RVM when it accepts the policy and agrees with the interpreter on a probe input.
    pub fn compile(sources: &PolicySources) -> Result<CompiledPolicy, String> {
        let engine = sources.engine(false)?;
        let data_json = sources.data()?;
        // The interpreter is the reference: every probe must evaluate there, and the RVM must
        // agree with it on all of them before it may serve decisions.
        let mut probes = Vec::new();
        for input in probe_inputs(&data_json) {
            let input = regorus::Value::from_json_str(&input.to_string()).map_err(|e| e.to_string())?;
            let mut probe = engine.clone();
            probe.set_input(input.clone());
            let expected = probe
                .eval_rule(DECISION_RULE.to_string())
                .map_err(|e| format!("policy does not evaluate {DECISION_RULE}: {e}"))?;
            probes.push((input, expected));
        }
        let data = regorus::Value::from_json_str(&data_json.to_string()).map_err(|e| e.to_string())?;
        let rvm = match rvm_program(&engine, &data, &probes) {
            Ok(p) => Some((p, data)),
            Err(e) => {
                tracing::info!(reason = %e, "policy runs on the regorus interpreter (RVM not usable)");
                None
            }
        };
        let role_scopes = data_json
            .pointer("/policies/roles")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        let confirm_rules = data_json
            .get("fastmcp_rules")
            .and_then(Value::as_array)
            .map(|rules| {
                rules
                    .iter()
                    .filter(|r| r.get("require_confirmation").and_then(Value::as_bool) == Some(true))
                    .filter_map(|r| r.get("id").and_then(Value::as_str).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(CompiledPolicy {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            engine,
            rvm,
            revision: sources.revision(),
            role_scopes,
            confirm_rules,
        })
    }

    /// `rvm` or `interpreter`: which evaluator serves decisions.
    pub fn evaluator(&self) -> &'static str {
        if self.rvm.is_some() {
            "rvm"
        } else {
            "interpreter"
        }
    }

    fn local(&self) -> Result<LocalEvaluator, String> {
        Ok(match &self.rvm {
            Some((program, data)) => {
                let mut vm = RegoVM::new();
                vm.load_program(program.clone());
                vm.set_data(data.clone()).map_err(|e| e.to_string())?;
                LocalEvaluator::Vm(Box::new(vm))
            }
            None => LocalEvaluator::Interpreter(Box::new(self.engine.clone())),
        })
    }

    /// Evaluates the decision for `input` on this thread's evaluator.
    pub fn decide(&self, input: &Input) -> Result<Decision, GatewayError> {
        let unavailable = |m: String| GatewayError::Unavailable { message: m };
        let rv = input.value().clone();
        let out = LOCAL.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().map(|(id, _)| *id) != Some(self.id) {
                *slot = Some((self.id, self.local().map_err(unavailable)?));
            }
            let result = match slot.as_mut() {
                Some((_, LocalEvaluator::Vm(vm))) => {
                    vm.set_input(rv);
                    vm.execute().map_err(|e| e.to_string())
                }
                Some((_, LocalEvaluator::Interpreter(engine))) => {
                    engine.set_input(rv);
                    engine.eval_rule(DECISION_RULE.to_string()).map_err(|e| e.to_string())
                }
                None => Err("policy evaluator missing".to_string()),
            };
            result.map_err(|e| unavailable(format!("policy evaluation failed: {e}")))
        })?;
        decision_of(&out).map_err(unavailable)
    }

    /// [`CompiledPolicy::decide`] for an input written as JSON.
    pub fn decide_json(&self, input: &Value) -> Result<Decision, GatewayError> {
        self.decide(&Input::from_json(input))
    }
}

/// Reads the decision object the rule produced, without a round trip through JSON (that cost
/// as much as a third of the evaluation). The shape is the one [`Decision`] deserializes:
/// `allow` required, the rest optional; anything else is malformed, never an allow.
fn decision_of(out: &regorus::Value) -> Result<Decision, String> {
    use regorus::Value as V;
    let obj = match out {
        V::Object(o) => o,
        V::Undefined | V::Null => return Err("policy decision undefined".into()),
        other => return Err(format!("malformed decision: expected an object, got {other}")),
    };
    let field = |name: &str| obj.get(&V::from(name)).filter(|v| !matches!(v, V::Undefined));
    let flag = |name: &str, required: bool| match field(name) {
        Some(V::Bool(b)) => Ok(*b),
        None if !required => Ok(false),
        Some(other) => Err(format!("malformed decision: `{name}` is {other}, not a boolean")),
        None => Err(format!("malformed decision: no `{name}`")),
    };
    let allow = flag("allow", true)?;
    let require_confirmation = flag("require_confirmation", false)?;
    let text = |v: &V| match v {
        V::String(s) => Ok(s.to_string()),
        other => Err(format!("malformed decision: reason {other} is not a string")),
    };
    let reasons = match field("reasons") {
        None | Some(V::Null) => Vec::new(),
        Some(V::Array(a)) => a.iter().map(text).collect::<Result<_, _>>()?,
        Some(V::Set(s)) => s.iter().map(text).collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("malformed decision: `reasons` is {other}")),
    };
    let rate_limit = match field("rate_limit") {
        None | Some(V::Null) => None,
        Some(V::Object(rl)) => {
            let num = |k: &str| rl.get(&V::from(k)).and_then(|v| v.as_f64().ok());
            let rps = num("rps").ok_or("malformed decision: rate_limit.rps is not a number")?;
            let burst = rl
                .get(&V::from("burst"))
                .and_then(|v| v.as_u64().ok())
                .ok_or("malformed decision: rate_limit.burst is not a whole number")?;
            Some(RateOverride { rps, burst })
        }
        Some(other) => return Err(format!("malformed decision: `rate_limit` is {other}")),
    };
    Ok(Decision { allow, require_confirmation, reasons, rate_limit })
}

/// Compiles the decision rule to RVM bytecode and checks it agrees with the interpreter.
fn rvm_program(
    engine: &regorus::Engine,
    data: &regorus::Value,
    probes: &[(regorus::Value, regorus::Value)],
) -> Result<Arc<Program>, String> {
    let compiled = engine.clone().compile_with_entrypoint(&DECISION_RULE.into()).map_err(|e| e.to_string())?;
    let program = Compiler::compile_from_policy(&compiled, &[DECISION_RULE]).map_err(|e| e.to_string())?;
    let mut vm = RegoVM::new();
    vm.load_program(program.clone());
    vm.set_data(data.clone()).map_err(|e| e.to_string())?;
    for (input, expected) in probes {
        vm.set_input(input.clone());
        let got = vm.execute().map_err(|e| e.to_string())?;
        if &got != expected {
            return Err(format!("RVM and interpreter disagree on probe {input}: {got} vs {expected}"));
        }
    }
    Ok(program)
}

/// Inputs that exercise the rules of `data`: an empty one, and for every tool id, provider and
/// action the rules name, a request by each role with and without arguments.
fn probe_inputs(data: &Value) -> Vec<Value> {
    let rules = data.pointer("/policies/rules").and_then(Value::as_array).cloned().unwrap_or_default();
    let named = |key: &str| -> Vec<Value> {
        let mut v: Vec<Value> = rules
            .iter()
            .filter_map(|r| r.pointer(&format!("/when/{key}")).cloned())
            .flat_map(|w| match w {
                Value::Array(items) => items,
                Value::String(s) if !s.starts_with("!= ") => vec![Value::String(s)],
                _ => vec![],
            })
            .collect();
        v.dedup();
        v
    };
    let roles: Vec<Value> = data
        .pointer("/policies/roles")
        .and_then(Value::as_object)
        .map(|m| m.keys().map(|k| Value::from(k.as_str())).collect())
        .unwrap_or_default();
    let mut out = vec![serde_json::json!({})];
    let mut tools = named("resource.toolId");
    tools.push(Value::from("mcp:probe:tool"));
    let mut providers = named("resource.provider_id");
    providers.push(Value::from("mcp"));
    for (tool, provider) in tools.iter().zip(providers.iter().cycle()) {
        for role in roles.iter().chain(std::iter::once(&Value::from("none"))) {
            for args in [None, Some(serde_json::json!({"budget": 5000, "query": "SELECT 1"}))] {
                let mut input = serde_json::json!({
                    "subject": {"sub": "probe", "tenant": "acme", "roles": [role], "scopes": []},
                    "action": "tools.invoke",
                    "resource": {"toolId": tool, "provider_id": provider, "tenant": "public",
                                 "safety_tags": ["destructive"], "required_scopes": []},
                });
                if let Some(a) = args {
                    input["request"] = serde_json::json!({"arguments": a});
                }
                out.push(input);
            }
        }
    }
    out
}

/// The policy one request is decided by, fixed for the request's lifetime (a reload does not
/// change the rules under an in-flight request). `None` when policy is disabled by config.
/// The second field is the shadow candidate, if one is loaded: its decisions are only
/// compared, never served.
#[derive(Clone)]
pub struct PolicySnapshot(Option<Arc<CompiledPolicy>>, Option<Arc<shadow::Shadow>>);

impl PolicySnapshot {
    /// The shadow candidate to hand this request's decisions to (`None`: no extra work).
    #[inline]
    pub fn shadow(&self) -> Option<&shadow::Shadow> {
        self.1.as_deref()
    }

    /// Policy is off by config and no shadow compares: every decision is `policy_disabled`,
    /// so callers need not build an input.
    pub fn is_off(&self) -> bool {
        self.0.is_none() && self.1.is_none()
    }

    pub fn revision(&self) -> &str {
        self.0.as_ref().map(|p| p.revision.as_str()).unwrap_or("disabled")
    }

    /// Of a decision's `reasons`, the rules that ask for confirmation; all of them when none
    /// is such a rule (a hand-written Rego decision names its own reasons).
    pub fn confirming_rules(&self, reasons: &[String]) -> Vec<String> {
        let Some(p) = &self.0 else { return reasons.to_vec() };
        let asking: Vec<String> = reasons.iter().filter(|r| p.confirm_rules.contains(*r)).cloned().collect();
        if asking.is_empty() {
            reasons.to_vec()
        } else {
            asking
        }
    }

    /// Does `principal` hold `scope`, from its token or its roles (a held `x.*` covers `x.y`)?
    /// Mirrors authz.rego's `scope_held`, for providers that enforce access themselves (the
    /// database opens read-only connections unless the caller holds `database.write`).
    pub fn holds_scope(&self, scopes: &[String], roles: &[String], scope: &str) -> bool {
        let covers = |held: &str| held == scope || held.strip_suffix('*').is_some_and(|p| scope.starts_with(p));
        let Some(p) = &self.0 else {
            return true;
        };
        scopes.iter().any(|s| covers(s))
            || roles.iter().filter_map(|r| p.role_scopes.get(r)).flatten().any(|s| covers(s))
    }

    pub fn decide(&self, input: &Input) -> Result<Decision, GatewayError> {
        match &self.0 {
            Some(p) => p.decide(input),
            None => Ok(Self::disabled_decision()),
        }
    }

    /// The answer when policy is off: allow, without building an input.
    pub fn disabled_decision() -> Decision {
        Decision { allow: true, reasons: vec!["policy_disabled".into()], ..Default::default() }
    }
}

/// The serving policy; [`PolicyEngine::swap`] replaces it atomically (hot reload).
pub struct PolicyEngine {
    current: RwLock<PolicySnapshot>,
}

impl PolicyEngine {
    pub fn enabled(policy: CompiledPolicy) -> Self {
        Self { current: RwLock::new(PolicySnapshot(Some(Arc::new(policy)), None)) }
    }

    pub fn disabled() -> Self {
        Self { current: RwLock::new(PolicySnapshot(None, None)) }
    }

    pub fn is_enabled(&self) -> bool {
        self.current.read().0.is_some()
    }

    /// The policy to decide a new request with.
    pub fn snapshot(&self) -> PolicySnapshot {
        self.current.read().clone()
    }

    pub fn revision(&self) -> String {
        self.current.read().revision().to_string()
    }

    /// Serves `policy` from now on; requests already running keep their snapshot. A loaded
    /// shadow stays (it is compared with the new live policy).
    pub fn swap(&self, policy: CompiledPolicy) {
        self.current.write().0 = Some(Arc::new(policy));
    }

    /// Serves the shadow candidate from now on and drops the shadow, in one step: no request
    /// sees the candidate both live and as its shadow. `None` when no shadow is loaded.
    pub fn promote_shadow(&self) -> Option<Arc<CompiledPolicy>> {
        let mut current = self.current.write();
        let candidate = current.1.take()?.candidate();
        current.0 = Some(candidate.clone());
        Some(candidate)
    }

    /// Loads (replacing any) or drops (`None`) the shadow candidate. Returns whether one was
    /// loaded before.
    pub fn set_shadow(&self, shadow: Option<shadow::Shadow>) -> bool {
        let mut current = self.current.write();
        let had = current.1.is_some();
        current.1 = shadow.map(Arc::new);
        had
    }

    /// The loaded shadow, if any.
    pub fn shadow(&self) -> Option<Arc<shadow::Shadow>> {
        self.current.read().1.clone()
    }
}

#[cfg(test)]
mod tests;
