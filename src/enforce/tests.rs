//! The chain without sockets: decide → limit → hold/redeem → record, on the embedded policy.

use serde_json::{json, Value};

use super::*;
use crate::gateway::testing::{principal, records, test_gateway};
use crate::gateway::Gateway;

fn who(sub: &str, roles: &[&str]) -> Principal {
    principal(sub, roles)
}

const ORIGIN: Origin<'static> =
    Origin { protocol: "mcp", path: "/mcp/demo", http_method: "POST", client_ip: "127.0.0.1", corr_id: "c1" };

/// A `tools/call` of `tool` on server `demo` (safety tags from `tags`).
fn call<'a>(
    gw: &Gateway,
    policy: &'a PolicySnapshot,
    p: &'a Principal,
    tool: &str,
    args: &'a Value,
    tags: &[&str],
) -> Call<'a> {
    let server = gw.catalog.server("demo").unwrap();
    let mut resource = gw.catalog.tool_resource(&server, tool, None);
    resource["safety_tags"] = json!(tags);
    let mut c = Call::new(policy, p, "tools.invoke", resource, args, MessageKind::Request, ORIGIN);
    c.tool_id = Some(format!("mcp:demo:{tool}"));
    c.args_hash = Some(crate::canonical::hash(args));
    c.rate_key = Some(ratelimit::bucket_key(&p.tenant, &p.sub, &format!("mcp:demo:{tool}")));
    c.server = Some("demo".into());
    c.write_class = true;
    c
}

fn decisions(gw: &Gateway) -> Vec<Value> {
    records(gw).into_iter().filter(|r| r["phase"] == "decision").collect()
}

#[tokio::test]
async fn denied_calls_are_recorded_and_use_no_quota() {
    let gw = test_gateway("enforce-quota", &[("RATE_BUCKET_BURST", "1"), ("RATE_LIMIT_DEFAULT_RPS", "0.001")]);
    let policy = gw.policy.snapshot();
    let (agent, admin) = (who("a", &["agent"]), who("b", &["mcp-admin"]));
    let args = json!({});
    for _ in 0..3 {
        let r = gw.enforce.authorize(call(&gw, &policy, &agent, "x", &args, &[])).await.err().unwrap();
        assert_eq!(r.outcome, Outcome::Denied);
    }
    let p = gw.enforce.authorize(call(&gw, &policy, &admin, "x", &args, &[])).await.unwrap();
    let mut admitted = gw.enforce.admit(p, None).await.unwrap();
    assert_eq!(admitted.outcome(), Outcome::Allowed);
    admitted.wait_durable().await;
    let r = gw.enforce.authorize(call(&gw, &policy, &admin, "x", &args, &[])).await.err().unwrap();
    assert_eq!(r.outcome, Outcome::RateLimited);
    gw.enforce.complete(admitted, Completion { status: Some(200), ..Default::default() }).await;
    let results: Vec<String> =
        decisions(&gw).iter().map(|r| r["decision"]["result"].as_str().unwrap().to_string()).collect();
    assert_eq!(results, ["deny", "deny", "deny", "allow", "rate_limited"], "one decision record per call");
    let done = records(&gw).into_iter().filter(|r| r["phase"] == "completion").count();
    assert_eq!(done, 1);
}

#[tokio::test]
async fn a_hold_is_redeemed_once_by_its_caller_for_its_arguments() {
    let gw = test_gateway("enforce-hold", &[]);
    let policy = gw.policy.snapshot();
    let (alice, mallory) = (who("alice", &["mcp-admin"]), who("mallory", &["mcp-admin"]));
    let args = json!({"item": 1});
    let p = gw.enforce.authorize(call(&gw, &policy, &alice, "rm", &args, &["destructive"])).await.unwrap();
    assert!(p.will_hold());
    let Err(Stop::Held(held)) = gw.enforce.admit(p, Some(args.to_string())).await else { panic!("held") };
    let token = held.issued.action_token.clone();
    let present = |c: &mut Call<'_>| c.presented = Some(Presented { token: token.clone() });

    let mut c = call(&gw, &policy, &mallory, "rm", &args, &["destructive"]);
    present(&mut c);
    let Err(Stop::Refused(r)) = gw.enforce.admit(gw.enforce.authorize(c).await.unwrap(), None).await else { panic!() };
    assert_eq!(r.error.status(), 403, "another caller");
    let other = json!({"item": 2});
    let mut c = call(&gw, &policy, &alice, "rm", &other, &["destructive"]);
    present(&mut c);
    let Err(Stop::Refused(r)) = gw.enforce.admit(gw.enforce.authorize(c).await.unwrap(), None).await else { panic!() };
    assert_eq!(r.error.status(), 403, "other arguments");
    let mut c = call(&gw, &policy, &alice, "rm", &args, &["destructive"]);
    present(&mut c);
    let admitted = gw.enforce.admit(gw.enforce.authorize(c).await.unwrap(), None).await.unwrap();
    assert_eq!(admitted.outcome(), Outcome::Confirmed);
    let mut c = call(&gw, &policy, &alice, "rm", &args, &["destructive"]);
    present(&mut c);
    let Err(Stop::Refused(r)) = gw.enforce.admit(gw.enforce.authorize(c).await.unwrap(), None).await else { panic!() };
    assert_eq!(r.outcome, Outcome::Conflict, "single use");
    let recs = decisions(&gw);
    let confirmed = recs.iter().find(|r| r["decision"]["result"] == "confirmed").unwrap();
    assert_eq!(confirmed["action"], "tools.confirm");
    assert_eq!(recs.len(), 5, "hold, two mismatches, confirmed, conflict");
}

#[tokio::test]
async fn approver_mode_holds_until_someone_else_approves() {
    let gw = test_gateway(
        "enforce-approver",
        &[("FASTMCP__REST__APPROVER_ROLES", "[approver]"), ("FASTMCP__REST__APPROVAL_TAGS", "[financial]")],
    );
    let policy = gw.policy.snapshot();
    let alice = who("alice", &["mcp-admin"]);
    let args = json!({"amount": 5000});
    let p = gw.enforce.authorize(call(&gw, &policy, &alice, "pay", &args, &["financial"])).await.unwrap();
    let Err(Stop::Held(held)) = gw.enforce.admit(p, None).await else { panic!("held") };
    assert!(held.needs_approval);
    let token = held.issued.action_token.clone();
    let attempt = || {
        let mut c = call(&gw, &policy, &alice, "pay", &args, &["financial"]);
        c.presented = Some(Presented { token: token.clone() });
        c
    };
    let Err(Stop::Refused(r)) = gw.enforce.admit(gw.enforce.authorize(attempt()).await.unwrap(), None).await else {
        panic!("self-confirmed")
    };
    assert!(r.reasons.iter().any(|x| x == "awaiting_approval"), "{:?}", r.reasons);
    assert!(gw.state.decide_hold(&held.issued.hold_id, true, "bob").await.unwrap());
    let admitted = gw.enforce.admit(gw.enforce.authorize(attempt()).await.unwrap(), None).await.unwrap();
    assert_eq!(admitted.outcome(), Outcome::Confirmed);
}

#[tokio::test]
async fn an_approver_cannot_release_its_own_hold() {
    let gw = test_gateway(
        "enforce-own-hold",
        &[("FASTMCP__REST__APPROVER_ROLES", "[approver]"), ("FASTMCP__REST__APPROVAL_TAGS", "[financial]")],
    );
    let policy = gw.policy.snapshot();
    let (alice, bob) = (who("alice", &["mcp-admin", "approver"]), who("bob", &["approver"]));
    let args = json!({"amount": 5000});
    let attempt = |p, token: &str| {
        let mut c = call(&gw, &policy, p, "pay", &args, &["financial"]);
        c.presented = Some(Presented { token: token.to_string() });
        c
    };
    let permit = gw.enforce.authorize(call(&gw, &policy, &alice, "pay", &args, &["financial"])).await.unwrap();
    let Err(Stop::Held(held)) = gw.enforce.admit(permit, None).await else { panic!("held") };
    let token = held.issued.action_token.clone();
    let Err(Stop::Refused(r)) =
        gw.enforce.admit(gw.enforce.authorize(attempt(&alice, &token)).await.unwrap(), None).await
    else {
        panic!("an approver released its own hold")
    };
    assert_eq!(r.error.status(), 403);
    assert!(r.reasons.iter().any(|x| x == "awaiting_approval"), "{:?}", r.reasons);
    assert_eq!(gw.state.pending_holds().await.unwrap(), 1, "not consumed");
    // Another approver releases it (without the right to call the tool itself).
    let admitted = gw.enforce.admit(gw.enforce.authorize(attempt(&bob, &token)).await.unwrap(), None).await.unwrap();
    assert_eq!(admitted.outcome(), Outcome::Confirmed);
}

#[tokio::test]
async fn gateway_answered_and_early_refusals_leave_one_record_each() {
    let gw = test_gateway("enforce-answered", &[]);
    let policy = gw.policy.snapshot();
    let admin = who("a", &["mcp-admin"]);
    let params = json!({});
    let server = gw.catalog.server("demo").unwrap();
    let mut c = Call::new(
        &policy,
        &admin,
        "mcp.ping",
        gw.catalog.server_resource(&server, None),
        &params,
        MessageKind::Request,
        ORIGIN,
    );
    c.tool_id = Some("mcp:demo".into());
    let p = gw.enforce.authorize(c).await.unwrap();
    gw.enforce.answered(p).await;
    let early = Early {
        corr_id: "c2",
        principal: None,
        action: "mcp.request",
        server: Some("demo"),
        tool_id: None,
        message: Some(MessageKind::Stream),
        outcome: Outcome::MethodNotAllowed,
        status: 405,
        error_code: Some("METHOD_NOT_ALLOWED"),
        reasons: vec![],
        policy_revision: policy.revision().to_string(),
    };
    gw.enforce.record_early(&early).await;
    let recs = decisions(&gw);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["decision"]["result"], "allow");
    assert_eq!(recs[0]["message"], "request");
    assert_eq!(recs[1]["decision"]["result"], "method_not_allowed");
    assert_eq!(recs[1]["message"], "stream");
    assert_eq!(recs[1]["outcome"]["status"], 405);
}

#[tokio::test]
async fn a_caller_without_the_servers_scope_reaches_no_plumbing() {
    let gw = test_gateway("enforce-plumbing", &[]);
    let policy = gw.policy.snapshot();
    let server = gw.catalog.server("demo").unwrap();
    let params = json!({});
    for (p, allowed) in [(who("n", &["nobody"]), false), (who("a", &["mcp-admin"]), true)] {
        for action in
            ["mcp.initialize", "mcp.tools/list", "mcp.notifications/initialized", "mcp.connect", "mcp.response"]
        {
            let c = Call::new(
                &policy,
                &p,
                action,
                gw.catalog.server_resource(&server, None),
                &params,
                MessageKind::Request,
                ORIGIN,
            );
            assert_eq!(gw.enforce.authorize(c).await.is_ok(), allowed, "{action} for {:?}", p.roles);
        }
    }
}

#[tokio::test]
async fn pin_facts_reach_the_policy_input_and_enforce_refuses_after_the_policy() {
    let gw = test_gateway("enforce-pins", &[("MCP_DEMO_PINNING", "enforce")]);
    let policy = gw.policy.snapshot();
    let admin = who("b", &["mcp-admin"]);
    let args = json!({});
    gw.discovered("demo", &[json!({"name": "x", "description": "v1"})]);
    let p = gw.enforce.authorize(call(&gw, &policy, &admin, "x", &args, &[])).await.unwrap();
    let hash = crate::pinning::fingerprint(&json!({"name": "x", "description": "v1"}));
    assert_eq!(p.call().resource["definition_hash"], hash.as_str());
    assert_eq!(p.call().resource["pinned"], true);
    drop(gw.enforce.admit(p, None).await.unwrap());

    // Changed upstream: refused by the core, with the reason and the pin in the record.
    gw.discovered("demo", &[json!({"name": "x", "description": "v2"})]);
    let r = gw.enforce.authorize(call(&gw, &policy, &admin, "x", &args, &[])).await.err().unwrap();
    assert_eq!((r.outcome, r.error.status()), (Outcome::Denied, 403));
    assert!(r.reasons.contains(&PIN_REASON.to_string()), "{:?}", r.reasons);
    let last = decisions(&gw).pop().unwrap();
    assert_eq!(
        last["pin"],
        json!({"definition_hash": crate::pinning::fingerprint(&json!({"name": "x", "description": "v2"})), "mode": "enforce", "pinned": false})
    );
    // A policy denial stays the policy's (its reasons, not the pin's).
    let agent = who("a", &["agent"]);
    let r = gw.enforce.authorize(call(&gw, &policy, &agent, "x", &args, &[])).await.err().unwrap();
    assert!(!r.reasons.contains(&PIN_REASON.to_string()), "{:?}", r.reasons);
    // Other actions and servers without pinning carry no pin facts.
    let mut other = Call::new(&policy, &admin, "mcp.ping", json!({}), &args, MessageKind::Request, ORIGIN);
    other.tool_id = Some("mcp:demo".into());
    gw.enforce.judge_pin(&mut other);
    assert!(other.pin.is_none() && other.resource.get("pinned").is_none());
}

#[tokio::test]
async fn a_lister_answers_each_entry_as_a_lone_visibility_check_and_records_nothing() {
    let gw = test_gateway("enforce-lister", &[]);
    let policy = gw.policy.snapshot();
    let server = gw.catalog.server("demo").unwrap();
    let before = records(&gw).len();
    for p in [who("n", &["nobody"]), who("u", &["mcp-user"]), who("a", &["mcp-admin"])] {
        let lister = gw.enforce.lister(&policy, &p, ORIGIN, "tools/list");
        for (tool, tenant) in [("x", "public"), ("y", "acme"), ("z", "globex")] {
            let mut resource = gw.catalog.tool_resource(&server, tool, None);
            resource["tenant"] = json!(tenant);
            let alone = gw.enforce.visible(&policy, &p, "tools.invoke", &resource, ORIGIN, "tools/list");
            assert_eq!(lister.visible("tools.invoke", &resource), alone, "{tool} ({tenant}) for {:?}", p.roles);
        }
    }
    let admin = who("a", &["mcp-admin"]);
    let listed = gw.enforce.lister(&policy, &admin, ORIGIN, "tools/list");
    let own = gw.catalog.tool_resource(&server, "x", None);
    assert!(listed.visible("tools.invoke", &own), "an admin sees a public tool");
    let mut foreign = own.clone();
    foreign["tenant"] = json!("globex");
    assert!(!listed.visible("tools.invoke", &foreign), "tenant isolation hides another tenant's tool");
    assert!(!gw.enforce.lister(&policy, &who("n", &["nobody"]), ORIGIN, "tools/list").visible("tools.invoke", &own));
    assert_eq!(records(&gw).len(), before, "list entries are not decisions of their own");
}
