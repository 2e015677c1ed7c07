use super::*;
use serde_json::json;

fn engine() -> CompiledPolicy {
    CompiledPolicy::compile(&PolicySources::embedded()).unwrap()
}

fn input(roles: &[&str], tool: &str, provider: &str, tags: &[&str], scopes: &[&str], tenant: &str) -> Value {
    json!({
        "subject": {"sub": "a", "tenant": "acme", "roles": roles, "scopes": []},
        "action": "tools.invoke",
        "resource": {"toolId": tool, "provider_id": provider, "tenant": tenant,
                     "safety_tags": tags, "required_scopes": scopes},
    })
}

#[test]
fn shipped_rego_tests_pass() {
    let results = testrunner::run(&PolicySources::embedded()).unwrap();
    assert!(results.len() >= 5, "found {} tests", results.len());
    for r in &results {
        assert!(r.passed, "{}::{} failed: {}", r.file, r.rule, r.detail);
    }
}

#[test]
fn failing_rego_test_is_reported_by_name() {
    let mut s = PolicySources::embedded();
    s.rego.push((
        "extra_test.rego".into(),
        "package extra_test\nimport rego.v1\ntest_fails if { 1 == 2 }\ntest_passes if { 1 == 1 }\n".into(),
    ));
    let results = testrunner::run(&s).unwrap();
    let failed: Vec<_> = results.iter().filter(|r| !r.passed).map(|r| r.rule.as_str()).collect();
    assert_eq!(failed, vec!["test_fails"]);
}

#[test]
fn seed_outcomes() {
    let p = engine();
    let d =
        p.decide_json(&input(&["mcp-admin"], "mcp:demo:x", "mcp", &["read_only"], &["mcp.demo"], "public")).unwrap();
    assert!(d.allow && !d.require_confirmation, "{d:?}");
    let d = p.decide_json(&input(&["mcp-user"], "mcp:demo:x", "mcp", &["read_only"], &["mcp.demo"], "public")).unwrap();
    assert!(!d.allow, "mcp-user lacks mcp.demo: {d:?}");
    assert!(d.reasons.contains(&"missing_scope:mcp.demo".to_string()));
    let d = p.decide_json(&input(&["mcp-user"], "mcp:git:x", "mcp", &["destructive"], &["mcp.git"], "public")).unwrap();
    assert!(d.allow && d.require_confirmation);
    let d = p.decide_json(&input(&["agent"], "mcp:git:x", "mcp", &["destructive"], &[], "public")).unwrap();
    assert!(!d.allow, "obligation rule must not grant: {d:?}");
    let d = p.decide_json(&input(&["mcp-admin"], "mcp:git:x", "mcp", &[], &["mcp.git"], "globex")).unwrap();
    assert!(!d.allow && d.reasons.contains(&"tenant-isolation".to_string()));
    let mut q = input(&["data-analyst"], "database:executeQuery", "database", &[], &[], "public");
    q["request"] = json!({"arguments": {"query": "SELECT 1"}});
    assert!(p.decide_json(&q).unwrap().allow, "a read-only query");
    q["request"] = json!({"arguments": {"query": "DELETE FROM t"}});
    assert!(!p.decide_json(&q).unwrap().allow, "a write needs database.write");
}

#[test]
fn garbage_input_is_denied_not_allowed() {
    let p = engine();
    let d = p.decide_json(&json!({"action": 5})).unwrap();
    assert!(!d.allow);
}

#[test]
fn disabled_engine_allows() {
    assert!(PolicyEngine::disabled().snapshot().decide(&Input::from_json(&json!({}))).unwrap().allow);
}

#[test]
fn rvm_serves_the_shipped_policy_and_agrees_with_the_interpreter() {
    let sources = PolicySources::embedded();
    let p = CompiledPolicy::compile(&sources).unwrap();
    assert_eq!(p.evaluator(), "rvm");
    let mut engine = sources.engine(false).unwrap();
    let cases = [
        input(&["mcp-admin"], "mcp:demo:x", "mcp", &["read_only"], &["mcp.demo"], "public"),
        input(&["mcp-user"], "mcp:demo:x", "mcp", &["read_only"], &["mcp.demo"], "public"),
        input(&["mcp-user"], "mcp:git:x", "mcp", &["destructive"], &["mcp.git"], "public"),
        input(&["agent"], "mcp:git:x", "mcp", &["destructive"], &[], "public"),
        input(&["mcp-admin"], "mcp:git:x", "mcp", &[], &["mcp.git"], "globex"),
        input(&["finance-write"], "ads:createCampaign", "ads", &["financial"], &["ads.write"], "public"),
        json!({}),
    ];
    for case in cases {
        engine.set_input(serde_json::from_value(case.clone()).unwrap());
        let interp = serde_json::to_value(engine.eval_rule(DECISION_RULE.to_string()).unwrap()).unwrap();
        let rvm = p.decide_json(&case).unwrap();
        let want: Decision = serde_json::from_value(interp).unwrap();
        assert_eq!(rvm, want, "input {case}");
    }
}

/// A scratch directory for policy files, removed on drop.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("fastmcp-policy-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_served_file_that_disappears_is_an_error_on_reload_not_the_embedded_copy() {
    let dir = Scratch::new("gone");
    let file = dir.0.join("policies.yml");
    let no_rego = [dir.0.join("no-rego")];
    std::fs::write(&file, source::EMBEDDED_POLICIES.replace("version: 1", "version: 1\n# custom")).unwrap();
    let at_start = PolicySources::load(&file, &no_rego).unwrap();
    assert_eq!(at_start.provenance, source::Provenance { policies_file: true, rego_dir: false });
    std::fs::remove_file(&file).unwrap();
    let err = PolicySources::reload(&file, &no_rego, at_start.provenance).unwrap_err();
    assert!(err.contains("gone"), "{err}");
    // Startup (and the CLI) still fall back; so does a reload of sources that were embedded.
    assert!(PolicySources::load(&file, &no_rego).unwrap().policies_name.starts_with("(embedded)"));
    assert!(PolicySources::reload(&file, &no_rego, source::Provenance::default()).is_ok());
    // A file that appears where the embedded copy served is a valid change.
    std::fs::write(&file, source::EMBEDDED_POLICIES).unwrap();
    let appeared = PolicySources::reload(&file, &no_rego, source::Provenance::default()).unwrap();
    assert!(appeared.provenance.policies_file);
}

#[test]
fn a_served_rego_directory_that_disappears_is_an_error_on_reload() {
    let dir = Scratch::new("rego-gone");
    let rego = dir.0.join("rego");
    std::fs::create_dir_all(&rego).unwrap();
    for (name, text) in source::EMBEDDED_REGO {
        std::fs::write(rego.join(name.rsplit('/').next().unwrap()), text).unwrap();
    }
    let missing_file = dir.0.join("none.yml");
    let at_start = PolicySources::load(&missing_file, std::slice::from_ref(&rego)).unwrap();
    assert_eq!(at_start.provenance, source::Provenance { policies_file: false, rego_dir: true });
    std::fs::remove_dir_all(&rego).unwrap();
    let err = PolicySources::reload(&missing_file, std::slice::from_ref(&rego), at_start.provenance).unwrap_err();
    assert!(err.contains("Rego directory"), "{err}");
}

#[test]
fn the_reloader_keeps_serving_and_counts_a_vanished_file() {
    let dir = Scratch::new("reloader");
    let file = dir.0.join("policies.yml");
    let rego = dir.0.join("no-rego");
    std::fs::write(&file, source::EMBEDDED_POLICIES.replace("version: 1", "version: 1\n# custom")).unwrap();
    let sources = PolicySources::load(&file, std::slice::from_ref(&rego)).unwrap();
    let engine = std::sync::Arc::new(PolicyEngine::enabled(CompiledPolicy::compile(&sources).unwrap()));
    let before = engine.revision();
    let reloader = reload::Reloader::new(engine.clone(), file.clone(), rego, None).serving_from(sources.provenance);
    let errors = || crate::metrics::METRICS.policy_reloads.with_label_values(&["error"]).get();
    let counted = errors();
    std::fs::remove_file(&file).unwrap();
    assert!(matches!(reloader.reload(), reload::Reload::Refused { .. }));
    assert_eq!(engine.revision(), before, "the served policy stays");
    assert!(errors() > counted, "counted as a failed reload");
}

#[test]
fn the_rules_that_asked_for_confirmation_are_named() {
    let snap = PolicyEngine::enabled(engine()).snapshot();
    let reasons = vec!["invoke-mcp-tools".to_string(), "safety-destroy-requires-confirm".to_string()];
    assert_eq!(snap.confirming_rules(&reasons), ["safety-destroy-requires-confirm"]);
    assert_eq!(snap.confirming_rules(&["custom".to_string()]), ["custom"], "a Rego-only reason is kept");
    assert_eq!(PolicyEngine::disabled().snapshot().confirming_rules(&reasons), reasons);
}

#[test]
fn decisions_are_read_from_the_rule_value_and_malformed_ones_refused() {
    let read = |json: &str| super::decision_of(&regorus::Value::from_json_str(json).unwrap());
    let d = read(r#"{"allow": true, "require_confirmation": true, "reasons": ["a", "b"], "rate_limit": {"rps": 2.5, "burst": 4}}"#).unwrap();
    assert!(d.allow && d.require_confirmation);
    assert_eq!(d.reasons, ["a", "b"]);
    assert_eq!(d.rate_limit, Some(RateOverride { rps: 2.5, burst: 4 }));
    assert_eq!(read(r#"{"allow": false}"#).unwrap(), Decision::default());
    for bad in [
        r#"{"reasons": []}"#,
        r#"{"allow": "yes"}"#,
        r#"{"allow": true, "require_confirmation": 1}"#,
        r#"{"allow": true, "reasons": [1]}"#,
        r#"{"allow": true, "rate_limit": {"rps": "fast", "burst": 1}}"#,
        r#"{"allow": true, "rate_limit": {"rps": 1, "burst": 1.5}}"#,
        r#"true"#,
        r#"null"#,
    ] {
        assert!(read(bad).is_err(), "{bad} must not be read as a decision");
    }
    assert!(super::decision_of(&regorus::Value::Undefined).is_err());
}

#[test]
fn the_cost_of_a_decision_does_not_grow_with_rules_the_input_cannot_match() {
    // The index narrows the rules visited; the decision must be the same as without it.
    let dir = Scratch::new("index");
    let file = dir.0.join("policies.yml");
    let mut doc: serde_json::Value = serde_yaml_ng::from_str(&PolicySources::embedded().policies_yaml).unwrap();
    let rules = doc["rules"].as_array_mut().unwrap();
    for i in 0..200 {
        rules.push(json!({"id": format!("x-{i}"), "effect": "allow", "when": {
            "action": "tools.invoke", "resource.toolId": format!("svc{i}:tool"), "subject.roles": ["r"]}}));
    }
    // A deny filed under a provider, and a tenant deny with no action: both still apply.
    rules.push(json!({"id": "deny-mcp-acme", "effect": "deny", "when": {
        "action": "tools.invoke", "resource.provider_id": "mcp", "subject.tenant": "blocked"}}));
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let grown = CompiledPolicy::compile(&PolicySources::load(&file, &[]).unwrap()).unwrap();
    let call = |tenant: &str, tool: serde_json::Value| {
        json!({"subject": {"sub": "a", "tenant": tenant, "roles": ["mcp-admin", "r"], "scopes": []},
               "action": "tools.invoke",
               "resource": {"toolId": tool, "provider_id": "mcp", "tenant": "public", "safety_tags": [], "required_scopes": []}})
    };
    assert!(grown.decide_json(&call("acme", json!("mcp:x:y"))).unwrap().allow);
    let d = grown.decide_json(&call("blocked", json!("mcp:x:y"))).unwrap();
    assert!(!d.allow && d.reasons.contains(&"deny-mcp-acme".to_string()), "{d:?}");
    assert!(grown.decide_json(&call("acme", json!("svc7:tool"))).unwrap().reasons.contains(&"x-7".to_string()));
    // A tool id that is not a string visits every rule filed by tool: the same answer as an
    // unindexed policy (no grant by tool; the mcp grant still applies by provider).
    let d = grown.decide_json(&call("acme", json!(["svc7:tool"]))).unwrap();
    assert!(!d.reasons.contains(&"x-7".to_string()), "{d:?}");
}
