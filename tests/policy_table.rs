//! Table-driven decisions of the shipped policy (policies.yml + authz.rego + abac.rego): the
//! seed's intended outcomes and the corrected semantics. Also `fastmcp policy test` and
//! `fastmcp policy eval` as a user runs them.

mod common;

use std::process::Command;

use common::*;
use fastmcp::policy::{CompiledPolicy, PolicySources};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    roles: &'static [&'static str],
    tenant: &'static str,
    tool: &'static str,
    provider: &'static str,
    resource_tenant: &'static str,
    tags: &'static [&'static str],
    scopes: &'static [&'static str],
    args: Value,
    allow: bool,
    confirm: bool,
}

fn input(c: &Case) -> Value {
    json!({
        "subject": {"sub": "agent-1", "tenant": c.tenant, "roles": c.roles, "scopes": [], "claims": {}},
        "action": "tools.invoke",
        "resource": {"toolId": c.tool, "provider_id": c.provider, "tenant": c.resource_tenant,
                     "safety_tags": c.tags, "required_scopes": c.scopes},
        "request": {"protocol": "rest", "arguments": c.args},
        "context": {"time": "2026-11-25T12:00:00Z", "client_ip": "127.0.0.1", "corr_id": "t"}
    })
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let c = |name, roles, tool, provider, tags, scopes, args, allow, confirm| Case {
        name, roles, tenant: "acme", tool, provider, resource_tenant: "public", tags, scopes, args, allow, confirm,
    };
    vec![
        c("finance-write creates a campaign, with confirmation", &["finance-write"], "ads:createCampaign", "ads", &["financial"], &["ads.write"], json!({"budget": 100}), true, true),
        c("sales-write cannot create campaigns", &["sales-write"], "ads:createCampaign", "ads", &["financial"], &["ads.write"], json!({"budget": 100}), false, false),
        c("sales-write creates a deal", &["sales-write"], "pipedrive:createDeal", "pipedrive", &[], &["pipedrive.write"], json!({}), true, false),
        c("finance-write cannot touch pipedrive", &["finance-write"], "pipedrive:createDeal", "pipedrive", &[], &["pipedrive.write"], json!({}), false, false),
        c("data-analyst lists tables", &["data-analyst"], "database:listTables", "database", &[], &["database.read"], json!({}), true, false),
        c("data-analyst runs a SELECT", &["data-analyst"], "database:executeQuery", "database", &[], &["database.execute"], json!({"query": "SELECT * FROM users"}), true, false),
        c("data-analyst cannot write", &["data-analyst"], "database:executeQuery", "database", &[], &["database.execute"], json!({"query": "UPDATE users SET x = 1"}), false, false),
        c("data-admin writes", &["data-admin"], "database:executeQuery", "database", &[], &["database.execute"], json!({"query": "UPDATE users SET x = 1"}), true, false),
        c("mcp-user reads git", &["mcp-user"], "mcp:git:log", "mcp", &["read_only"], &["mcp.git"], json!({}), true, false),
        c("mcp-user uses the filesystem server", &["mcp-user"], "mcp:filesystem:read", "mcp", &["read_only"], &["mcp.filesystem"], json!({}), true, false),
        c("mcp-user queries the database server", &["mcp-user"], "mcp:database:query", "mcp", &["read_only"], &["mcp.database"], json!({}), true, false),
        c("mcp-user lacks other servers' scopes", &["mcp-user"], "mcp:slack:post", "mcp", &["read_only"], &["mcp.slack"], json!({}), false, false),
        c("mcp-admin reaches any server (mcp.*)", &["mcp-admin"], "mcp:slack:post", "mcp", &["read_only"], &["mcp.slack"], json!({}), true, false),
        c("destructive MCP tools need confirmation", &["mcp-admin"], "mcp:git:push", "mcp", &["destructive"], &["mcp.git"], json!({}), true, true),
        c("an obligation rule grants nothing", &["agent"], "mcp:git:push", "mcp", &["destructive"], &["mcp.git"], json!({}), false, false),
        c("default deny for unknown providers", &["mcp-admin"], "weather:get", "weather", &[], &[], json!({}), false, false),
        c("budget over the threshold needs confirmation even when untagged", &["finance-write"], "ads:createCampaign", "ads", &[], &["ads.write"], json!({"budget": 5000}), true, true),
        c("budget under the threshold, untagged: no confirmation", &["finance-write"], "ads:createCampaign", "ads", &[], &["ads.write"], json!({"budget": 50}), true, false),
    ]
}

#[test]
fn seed_outcomes_and_corrected_semantics() {
    let policy = CompiledPolicy::compile(&PolicySources::embedded()).expect("policy");
    for case in cases() {
        let d = policy.decide_json(&input(&case)).expect("decision");
        assert_eq!((d.allow, d.require_confirmation), (case.allow, case.confirm), "{}: {d:?}", case.name);
    }
    // Tenant isolation: another tenant's tool is denied whatever the role.
    let mut other = input(&cases()[12]);
    other["resource"]["tenant"] = json!("globex");
    let d = policy.decide_json(&other).expect("decision");
    assert!(!d.allow && d.reasons.contains(&"tenant-isolation".to_string()), "{d:?}");
}

#[test]
fn rule_order_is_irrelevant_and_deny_wins() {
    let base = PolicySources::embedded();
    let mut reversed = base.clone();
    let mut doc: Value = serde_yaml_ng::from_str(&reversed.policies_yaml).expect("yaml");
    doc["rules"].as_array_mut().expect("rules").reverse();
    reversed.policies_yaml = serde_yaml_ng::to_string(&doc).expect("yaml");
    let a = CompiledPolicy::compile(&base).expect("policy");
    let b = CompiledPolicy::compile(&reversed).expect("policy");
    for case in cases() {
        assert_eq!(a.decide_json(&input(&case)).expect("a"), b.decide_json(&input(&case)).expect("b"), "{}", case.name);
    }
    // A deny placed first or last wins over a matching allow.
    for at_end in [false, true] {
        let mut doc: Value = serde_yaml_ng::from_str(&base.policies_yaml).expect("yaml");
        let deny = json!({"id": "no-git-push", "effect": "deny", "when": {"resource.toolId": "mcp:git:push"}});
        let rules = doc["rules"].as_array_mut().expect("rules");
        if at_end {
            rules.push(deny)
        } else {
            rules.insert(0, deny)
        }
        let mut s = base.clone();
        s.policies_yaml = serde_yaml_ng::to_string(&doc).expect("yaml");
        let d = CompiledPolicy::compile(&s).expect("policy").decide_json(&input(&cases()[13])).expect("d");
        assert!(!d.allow && d.reasons.contains(&"no-git-push".to_string()), "{d:?}");
    }
}

fn fastmcp(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fastmcp")).args(args).current_dir(dir).output().expect("run fastmcp")
}

#[test]
fn policy_test_cli_passes_on_shipped_rego_and_names_a_failing_rule() {
    let out = fastmcp(&repo(), &["policy", "test", "rego"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("PASS rego/fastmcp/authz_test.rego: test_default_deny"), "{stdout}");
    assert!(stdout.lines().last().unwrap_or("").ends_with(" passed, 0 failed"), "{stdout}");
    let out = fastmcp(&repo(), &["policy", "test", "--coverage", "rego"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("COVERAGE rego/fastmcp/authz.rego: "), "line coverage per module: {stdout}");

    let dir = temp_dir("policy-cli");
    std::fs::create_dir_all(dir.join("rego/fastmcp")).expect("dir");
    for f in ["authz.rego", "abac.rego", "authz_test.rego"] {
        std::fs::copy(repo().join("rego/fastmcp").join(f), dir.join("rego/fastmcp").join(f)).expect("copy");
    }
    std::fs::copy(repo().join("policies/policies.yml"), dir.join("policies.yml")).expect("copy");
    std::fs::write(
        dir.join("rego/fastmcp/broken_test.rego"),
        "package fastmcp.broken_test\nimport rego.v1\nimport data.fastmcp.authz\n\ntest_agent_may_push if {\n\td := authz.decision with input as {\"subject\": {\"roles\": [\"agent\"]}, \"action\": \"tools.invoke\", \"resource\": {\"toolId\": \"mcp:git:push\", \"provider_id\": \"mcp\"}}\n\td.allow\n}\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .args(["policy", "test", "rego"])
        .env("FASTMCP_POLICIES", dir.join("policies.yml"))
        .current_dir(&dir)
        .output()
        .expect("run");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL rego/fastmcp/broken_test.rego: test_agent_may_push"), "{stdout}");
}

#[test]
fn policy_eval_cli_prints_the_decision() {
    let dir = temp_dir("policy-eval");
    let case = &cases()[0];
    std::fs::write(dir.join("input.json"), input(case).to_string()).expect("write");
    let out = fastmcp(&dir, &["policy", "eval", "--input", "input.json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d: Value = serde_json::from_slice(&out.stdout).expect("decision JSON");
    assert_eq!((d["allow"].clone(), d["require_confirmation"].clone()), (json!(true), json!(true)));
    assert!(d["reasons"].as_array().expect("reasons").contains(&json!("invoke-ads-create")));
}
