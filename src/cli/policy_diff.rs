//! `fastmcp policy diff --live DIR --candidate DIR --inputs audit.jsonl`: replays recorded
//! traffic offline against two policies and prints each decision that changes (one line
//! each), then a summary. Exit 0 when the replay ran (changes are findings, not failures),
//! 2 when a policy or the inputs cannot be used.
//!
//! `--live DIR` is loaded like the gateway's sources (`DIR/policies.yml`, `*.rego` under
//! `DIR`, the embedded copy for a missing part); `--candidate DIR` is a bundle laid over the
//! live sources, as for the shadow (its `policies.yml` and/or Rego replace the live ones).
//! Both are compiled and tested like a reload.
//!
//! Every policy decision record of the audit trail (`phase: decision`, a result the policy
//! decided: allow, hold, confirmed, deny, declined, rate_limited, replay) is rebuilt into a
//! policy input as far as the record allows. Approximated, because the record does not hold
//! it: the arguments (only their hash is recorded: replayed as `{}`, so argument rules such
//! as `abac.rego`'s budget threshold do not fire), the subject's roles, scopes and claims
//! (empty, unless `--subjects FILE` maps `sub` to `{"roles": [...], "scopes": [...]}`), the
//! tool's safety tags and annotations (empty), the resource's tenant (`public`), the request
//! path and client IP (empty), and a confirmation (`tools.confirm`) is replayed as the call it
//! confirms (`tools.invoke`). MCP records get the catalog's `required_scopes`
//! (`mcp.{server}`); REST tools none. The summary says on how many records the live
//! replay agrees with the recorded decision: a measure of how faithful the replay is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::policy::bundle::Bundle;
use crate::policy::reload::compile_and_tested;
use crate::policy::shadow::Verdict;
use crate::policy::{CompiledPolicy, PolicySources};

/// The results of decisions the policy made (the rest were refused before it was asked).
const DECIDED: &[&str] = &["allow", "confirmed", "hold", "deny", "declined", "rate_limited", "replay"];

/// Roles, scopes and claims of a subject (from `--subjects`).
type Subjects = HashMap<String, Value>;

pub fn run(live: &Path, candidate: &Path, inputs: &Path, subjects: Option<&Path>) -> i32 {
    match replay(live, candidate, inputs, subjects) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

fn replay(live: &Path, candidate: &Path, inputs: &Path, subjects: Option<&Path>) -> Result<(), String> {
    // A directory without Rego (only policies.yml, or nothing) runs the embedded modules.
    let has_rego = Bundle::from_dir(live).is_ok_and(|b| !b.rego.is_empty());
    let rego_dirs = if has_rego { vec![live.to_path_buf()] } else { vec![] };
    let live_sources = PolicySources::load(&live.join("policies.yml"), &rego_dirs)?;
    let bundle = Bundle::from_dir(candidate).map_err(|e| e.to_string())?;
    let candidate_sources = bundle.over(&live_sources);
    let live_policy = compile_and_tested(&live_sources).map_err(|e| format!("--live: {e}"))?;
    let candidate_policy = compile_and_tested(&candidate_sources).map_err(|e| format!("--candidate: {e}"))?;
    let subjects: Subjects = match subjects {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
        }
        None => HashMap::new(),
    };
    let mut stats = Stats::default();
    for file in input_files(inputs)? {
        let text = std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(rec) = serde_json::from_str::<Value>(line) else {
                stats.unreadable += 1;
                continue;
            };
            if let Some(change) = stats.replay(&rec, &subjects, &live_policy, &candidate_policy) {
                println!("{change}");
            }
        }
    }
    println!(
        "replayed {} decision records (live {}, candidate {}): {} changed ({} allow->deny, {} deny->allow); \
         the live replay agrees with the recorded decision on {} of {}; {} unreadable lines skipped \
         (arguments, roles without --subjects, safety tags are approximated)",
        stats.replayed,
        live_policy.revision,
        candidate_policy.revision,
        stats.to_deny + stats.to_allow,
        stats.to_deny,
        stats.to_allow,
        stats.agree,
        stats.replayed,
        stats.unreadable
    );
    Ok(())
}

/// A file, or every `*.jsonl` of a directory in name order (an audit directory).
fn input_files(inputs: &Path) -> Result<Vec<PathBuf>, String> {
    if !inputs.is_dir() {
        return Ok(vec![inputs.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(inputs)
        .map_err(|e| format!("{}: {e}", inputs.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

#[derive(Default)]
struct Stats {
    replayed: u64,
    agree: u64,
    to_deny: u64,
    to_allow: u64,
    unreadable: u64,
}

impl Stats {
    /// Replays one record; the line to print when the decision changes.
    fn replay(
        &mut self,
        rec: &Value,
        subjects: &Subjects,
        live: &CompiledPolicy,
        cand: &CompiledPolicy,
    ) -> Option<String> {
        let (action, input) = rebuild(rec, subjects)?;
        self.replayed += 1;
        let input = crate::policy::Input::from_json(&input);
        let l = Verdict::of(&live.decide(&input));
        let c = Verdict::of(&cand.decide(&input));
        let recorded = rec.pointer("/decision/result").and_then(Value::as_str) != Some("deny");
        if recorded == l.allow {
            self.agree += 1;
        }
        if l.allow == c.allow {
            return None;
        }
        if l.allow {
            self.to_deny += 1;
        } else {
            self.to_allow += 1;
        }
        let text = |k: &str| rec.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
        Some(format!(
            "CHANGED seq={} corr_id={} action={action} tool={} subject={} tenant={} live={} [{}] candidate={} [{}]",
            rec.get("seq").and_then(Value::as_u64).unwrap_or(0),
            text("corr_id"),
            text("toolId"),
            text("sub"),
            text("tenant"),
            l.label(),
            l.reasons.join(","),
            c.label(),
            c.reasons.join(","),
        ))
    }
}

/// The policy input of a decision record, as far as the record allows (see the module
/// doc); `None` for records that are not policy decisions.
fn rebuild(rec: &Value, subjects: &Subjects) -> Option<(String, Value)> {
    let text = |k: &str| rec.get(k).and_then(Value::as_str);
    if text("phase") != Some("decision") || rec.get("message").is_none_or(Value::is_null) {
        return None;
    }
    let result = rec.pointer("/decision/result").and_then(Value::as_str)?;
    let recorded_action = text("action")?;
    if !DECIDED.contains(&result) || matches!(recorded_action, "mcp.request" | "rest.request") {
        return None;
    }
    let action = if recorded_action == "tools.confirm" { "tools.invoke" } else { recorded_action };
    let sub = text("sub").unwrap_or_default();
    let who = subjects.get(sub);
    let list = |k: &str| who.and_then(|w| w.get(k)).cloned().unwrap_or_else(|| json!([]));
    let server = text("server");
    let provider = text("provider").or(server.map(|_| "mcp")).unwrap_or_default();
    let required: Vec<String> = server.map(|s| format!("mcp.{s}")).into_iter().collect();
    let mcp_method = text("mcp_method");
    let protocol = if text("message") == Some("rest") { "rest" } else { "mcp" };
    let input = json!({
        "subject": {"sub": sub, "tenant": text("tenant").unwrap_or_default(), "roles": list("roles"),
                    "scopes": list("scopes"), "claims": who.and_then(|w| w.get("claims")).cloned().unwrap_or(json!({}))},
        "action": action,
        "resource": {"toolId": text("toolId"), "provider_id": provider, "server": server, "tenant": "public",
                     "safety_tags": [], "annotations": {}, "required_scopes": required},
        "request": {"protocol": protocol, "mcp_method": mcp_method, "arguments": {}, "path": "", "method": "POST"},
        "context": {"time": text("ts"), "client_ip": "", "corr_id": text("corr_id")},
    });
    Some((action.to_string(), input))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_record_is_rebuilt_and_others_are_skipped() {
        let rec = json!({"phase": "decision", "message": "request", "action": "tools.confirm", "sub": "alice",
                         "tenant": "acme", "server": "demo", "provider": null, "toolId": "mcp:demo:echo",
                         "decision": {"result": "confirmed"}, "corr_id": "c"});
        let subjects: Subjects = [("alice".to_string(), json!({"roles": ["mcp-user"]}))].into();
        let (action, input) = rebuild(&rec, &subjects).expect("rebuilt");
        assert_eq!(action, "tools.invoke");
        assert_eq!(input["subject"]["roles"], json!(["mcp-user"]));
        assert_eq!(input["resource"]["provider_id"], "mcp");
        assert_eq!(input["resource"]["required_scopes"], json!(["mcp.demo"]));
        let mut admin = rec.clone();
        admin["message"] = Value::Null;
        assert!(rebuild(&admin, &subjects).is_none(), "operator records are not decisions");
        let mut early = rec.clone();
        early["decision"]["result"] = json!("unauthenticated");
        assert!(rebuild(&early, &subjects).is_none());
    }
}
