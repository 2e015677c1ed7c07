//! Acceptance for the REST tool API (issue 5): the seed's four tests ported (happy path with
//! confirm and audit, policy denial, confirmation errors, idempotent replay), each DESIGN §11
//! hole on these routes closed, and the HTTP providers against local fake Pipedrive, Google
//! Ads and OAuth token servers that check exactly what they receive.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// What a fake provider saw: request heads and bodies.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(String, String)>>,
    count: AtomicUsize,
}

impl Seen {
    fn all(&self) -> Vec<(String, String)> {
        self.requests.lock().unwrap().clone()
    }
}

fn reply(s: &mut std::net::TcpStream, status: &str, body: &Value) {
    use std::io::Write;
    let b = body.to_string();
    let _ = write!(s, "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
}

/// A fake provider answering `answer(head, body)` and recording every request.
fn fake(answer: impl Fn(&str, &str) -> (String, Value) + Send + Sync + 'static) -> (u16, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let rec = seen.clone();
    let port = fake_upstream(move |head, body, s| {
        let body = String::from_utf8_lossy(&body).to_string();
        rec.requests.lock().unwrap().push((head.clone(), body.clone()));
        rec.count.fetch_add(1, Ordering::SeqCst);
        let (status, v) = answer(&head, &body);
        reply(s, &status, &v);
    });
    (port, seen)
}

struct Env {
    gw: Gateway,
    pipedrive: Arc<Seen>,
    ads: Arc<Seen>,
    oauth: Arc<Seen>,
}

fn start(tag: &str, extra_yaml: &str) -> Env {
    start_with(tag, extra_yaml, "", &[])
}

/// Starts the gateway in front of the fake providers. `extra_yaml` is more top-level config,
/// `extra_credentials` more YAML lines under `providers.credentials`, `env` extra variables.
fn start_with(tag: &str, extra_yaml: &str, extra_credentials: &str, env: &[(&str, &str)]) -> Env {
    let (pd_port, pipedrive) = fake(|head, _| {
        if head.starts_with("GET /api/v1/deals/404") {
            return ("404 Not Found".into(), json!({"success": false, "error": "Deal not found"}));
        }
        ("201 Created".into(), json!({"success": true, "data": {"id": 7, "title": "Big deal"}}))
    });
    let (ads_port, ads) =
        fake(|_, _| ("200 OK".into(), json!({"results": [{"resourceName": "customers/1234567890/campaigns/42"}]})));
    let (tok_port, oauth) = fake(|_, _| {
        ("200 OK".into(), json!({"access_token": "ya29.brokered-access", "token_type": "Bearer", "expires_in": 3600}))
    });
    let yaml = format!(
        r#"
providers:
  http:
    pipedrive_base_url: "http://127.0.0.1:{pd_port}/api/v1"
    google_ads_base_url: "http://127.0.0.1:{ads_port}"
    google_ads_developer_token: "dev-token-123"
    google_ads_customer_id: "1234567890"
  credentials:
    pipedrive: {{kind: static, secret: "pd-secret-token"}}
    ads:
      kind: refresh_token
      token_url: "http://127.0.0.1:{tok_port}/token"
      client_id: "ads-client"
      client_secret: "ads-client-secret"
      refresh_token: "ads-refresh-token"
{extra_credentials}
{extra_yaml}
"#
    );
    let mut builder = Gateway::builder(tag).config(&yaml);
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    let gw = builder.start();
    Env { gw, pipedrive, ads, oauth }
}

fn post(gw: &Gateway, path: &str, token: &str, body: &Value, extra: &[(&str, &str)]) -> Resp {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("authorization", auth.as_str()), ("content-type", "application/json")];
    headers.extend_from_slice(extra);
    http("POST", &gw.url(path), &headers, body.to_string().as_bytes())
}

fn audit_lines(gw: &Gateway) -> Vec<Value> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(gw.audit_dir()).unwrap().flatten() {
        for l in std::fs::read_to_string(f.path()).unwrap_or_default().lines() {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

// ---------------------------------------------------------------- the seed's four tests

#[test]
fn seed_happy_path_catalog_invoke_confirm_and_audit() {
    let Env { gw, ads, oauth, .. } = start("rest-happy", "");
    let fin = gw.mint("fin-agent", "acme", "finance-write");

    // The catalog shows what the caller may invoke (and nothing it may not).
    let cat = http("GET", &gw.url("/tool-catalog"), &[("authorization", &format!("Bearer {fin}"))], b"").json();
    assert_eq!(cat["tenant"], "acme");
    let ids: Vec<&str> = cat["tools"].as_array().unwrap().iter().filter_map(|t| t["toolId"].as_str()).collect();
    assert!(ids.contains(&"ads:createCampaign"), "{ids:?}");
    assert!(!ids.contains(&"database:executeQuery"), "finance cannot query the database: {ids:?}");

    // A financial tool is held: 202 with an action token; nothing reaches Google Ads.
    let input = json!({"name": "Spring", "budget": 5000});
    let r = post(&gw, "/tools/ads:createCampaign/invoke", &fin, &input, &[]);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let held = r.json();
    assert_eq!(held["requires_confirmation"], true);
    assert!(held["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(held["confirm_url"], "/tools/ads:createCampaign/confirm");
    let token = held["action_token"].as_str().unwrap().to_string();
    assert_eq!(ads.count.load(Ordering::SeqCst), 0);

    // Confirm (input omitted: the held one runs), exactly once.
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let done = r.json();
    assert_eq!(done["toolId"], "ads:createCampaign");
    assert_eq!(done["result"]["results"][0]["resourceName"], "customers/1234567890/campaigns/42");
    assert_eq!(done["token_meta"]["token_type"], "Bearer");
    assert!(!r.json().to_string().contains("ya29"), "the provider token never reaches the agent");

    // Google Ads got the brokered OAuth token, the developer token, the exact path and body.
    let seen = ads.all();
    assert_eq!(seen.len(), 1);
    let (head, body) = &seen[0];
    assert!(head.starts_with("POST /v21/customers/1234567890/campaigns:mutate HTTP/1.1"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("authorization: bearer ya29.brokered-access"), "{head}");
    assert!(lower.contains("developer-token: dev-token-123"), "{head}");
    assert!(!head.contains(&fin), "the agent's JWT never reaches the provider");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["operations"][0]["create"]["name"], "Spring");
    // The OAuth refresh-token grant, once.
    let tok = oauth.all();
    assert_eq!(tok.len(), 1);
    assert!(tok[0].1.contains("grant_type=refresh_token") && tok[0].1.contains("refresh_token=ads-refresh-token"));

    // A second confirm with the spent token: 409, and no second campaign.
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 409);
    assert_eq!(ads.count.load(Ordering::SeqCst), 1);

    // Audit: hold, confirmed decision and its completion, the refused second confirm; chain intact.
    let log = audit_lines(&gw);
    let results: Vec<(String, String)> = log
        .iter()
        .filter(|e| e["toolId"] == "ads:createCampaign")
        .map(|e| (e["decision"]["result"].as_str().unwrap().into(), e["phase"].as_str().unwrap().into()))
        .collect();
    for want in [("hold", "decision"), ("confirmed", "decision"), ("confirmed", "completion"), ("conflict", "decision")]
    {
        assert!(results.contains(&(want.0.into(), want.1.into())), "{want:?} missing in {results:?}");
    }
    let completion = log.iter().find(|e| e["phase"] == "completion" && e["toolId"] == "ads:createCampaign").unwrap();
    assert_eq!(completion["outcome"]["status"], 200);
    assert!(completion["result_hash"].as_str().is_some_and(|h| h.len() == 64));
    let text = log.iter().map(Value::to_string).collect::<String>();
    assert!(
        !text.contains("ya29") && !text.contains("dev-token-123") && !text.contains("Spring"),
        "no secrets or raw input"
    );
    let out = gw.cli(&["audit", "verify", &gw.audit_dir().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn seed_policy_denial() {
    let Env { gw, pipedrive, .. } = start("rest-deny", "");
    let agent = gw.mint("a1", "acme", "agent");
    let r = post(&gw, "/tools/pipedrive:createDeal/invoke", &agent, &json!({"title": "x"}), &[]);
    assert_eq!(r.status, 403);
    let e = r.json();
    assert_eq!(e["error"]["code"], "FORBIDDEN");
    assert!(e["error"]["corr_id"].as_str().is_some());
    assert!(e["error"]["details"]["reasons"].as_array().unwrap().contains(&json!("default_deny")));
    // Missing scope: an analyst may not write.
    let analyst = gw.mint("d1", "acme", "data-analyst");
    let r = post(&gw, "/tools/database:executeQuery/invoke", &analyst, &json!({"query": "DELETE FROM orders"}), &[]);
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]["details"]["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!("missing_scope:database.write")));
    // Unknown tool, bad body, bad input.
    let sales = gw.mint("s1", "acme", "sales-write");
    assert_eq!(post(&gw, "/tools/nope:tool/invoke", &sales, &json!({}), &[]).status, 404);
    let r = http(
        "POST",
        &gw.url("/tools/pipedrive:createDeal/invoke"),
        &[("authorization", &format!("Bearer {sales}"))],
        b"[1,2]",
    );
    assert_eq!(r.status, 422);
    let r =
        post(&gw, "/tools/pipedrive:createContact/invoke", &sales, &json!({"name": "A", "email": "not-an-email"}), &[]);
    assert_eq!(r.status, 422, "format: email is enforced");
    assert_eq!(r.json()["error"]["code"], "VALIDATION_ERROR");
    assert_eq!(pipedrive.count.load(Ordering::SeqCst), 0, "nothing denied reached the provider");
    // No token at all.
    let r = http("POST", &gw.url("/tools/pipedrive:createDeal/invoke"), &[], b"{}");
    assert_eq!(r.status, 401);
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(r.json()["error"]["code"], "UNAUTHORIZED", "REST errors in the REST shape");
}

#[test]
fn seed_confirmation_errors() {
    let Env { gw, ads, .. } = start("rest-confirm-errors", "");
    let fin = gw.mint("fin-agent", "acme", "finance-write");
    let held = post(&gw, "/tools/ads:createCampaign/invoke", &fin, &json!({"name": "A", "budget": 10}), &[]).json();
    let token = held["action_token"].as_str().unwrap().to_string();
    // Missing and unknown tokens.
    assert_eq!(post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({}), &[]).status, 422);
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": "bogus"}), &[]);
    assert_eq!(r.status, 409);
    // Another payload, another subject, another tool: refused, and the hold stays usable.
    let other = json!({"action_token": token, "input": {"name": "A", "budget": 999999}});
    assert_eq!(post(&gw, "/tools/ads:createCampaign/confirm", &fin, &other, &[]).status, 403);
    let mallory = gw.mint("mallory", "acme", "finance-write");
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &mallory, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 403);
    let sales = gw.mint("fin-agent", "acme", "sales-write,finance-write");
    let r = post(
        &gw,
        "/tools/pipedrive:createDeal/confirm",
        &sales,
        &json!({"action_token": token, "input": {"name": "A", "budget": 10}}),
        &[],
    );
    assert_eq!(r.status, 403, "a token for one tool does not confirm another");
    assert_eq!(ads.count.load(Ordering::SeqCst), 0);
    // The header form works; then the token is spent.
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({}), &[("x-action-token", &token)]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": token}), &[]).status, 409);
    assert_eq!(ads.count.load(Ordering::SeqCst), 1);
}

#[test]
fn seed_idempotent_replay() {
    let Env { gw, pipedrive, .. } = start("rest-idem", "");
    let sales = gw.mint("s1", "acme", "sales-write");
    let deal = json!({"title": "Big deal", "value": 100});
    let first = post(&gw, "/tools/pipedrive:createDeal/invoke", &sales, &deal, &[("idempotency-key", "k-1")]);
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    assert!(first.header("x-idempotent-replay").is_none());
    let again = post(&gw, "/tools/pipedrive:createDeal/invoke", &sales, &deal, &[("idempotency-key", "k-1")]);
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-idempotent-replay"), Some("true"));
    assert_eq!(again.json(), first.json(), "the stored body is replayed");
    assert_eq!(pipedrive.count.load(Ordering::SeqCst), 1, "the deal was created once");
    // Same key, other payload: 422, not a silent re-run.
    let changed = json!({"title": "Other deal"});
    let r = post(&gw, "/tools/pipedrive:createDeal/invoke", &sales, &changed, &[("idempotency-key", "k-1")]);
    assert_eq!(r.status, 422);
    // DESIGN §11: keys are scoped to the subject; another agent with the same key gets its own call.
    let other = gw.mint("s2", "acme", "sales-write");
    let r = post(&gw, "/tools/pipedrive:createDeal/invoke", &other, &deal, &[("idempotency-key", "k-1")]);
    assert_eq!(r.status, 200);
    assert!(r.header("x-idempotent-replay").is_none(), "no cross-subject replay");
    assert_eq!(pipedrive.count.load(Ordering::SeqCst), 2);

    // Pipedrive got the brokered api_token as a query parameter, never the agent's JWT.
    let (head, body) = &pipedrive.all()[0];
    assert!(head.starts_with("POST /api/v1/deals?api_token=pd-secret-token HTTP/1.1"), "{head}");
    assert!(!head.to_ascii_lowercase().contains("authorization"), "{head}");
    assert!(!head.contains(&sales));
    assert_eq!(serde_json::from_str::<Value>(body).unwrap()["title"], "Big deal");
}

// ---------------------------------------------------------------- DESIGN §11 holes

#[test]
fn sql_bypasses_are_refused_with_the_database_unchanged() {
    let Env { gw, .. } = start("rest-sql", "");
    let admin = gw.mint("dba", "acme", "data-admin");
    let tables =
        |gw: &Gateway| post(gw, "/tools/database:listTables/invoke", &admin, &json!({}), &[]).json()["result"].clone();
    let before = tables(&gw);
    assert_eq!(
        before["tables"],
        json!([
            {"name": "customers", "row_count": 4},
            {"name": "orders", "row_count": 4},
            {"name": "products", "row_count": 5},
        ])
    );
    let copy = gw.dir.join("copy.db");
    let attach = gw.dir.join("x.db");
    for sql in [
        "DROP/**/TABLE customers".to_string(),
        format!("VACUUM INTO '{}'", copy.display()),
        format!("ATTACH DATABASE '{}' AS x", attach.display()),
        "SELECT 1; DROP TABLE customers".to_string(),
    ] {
        let r = post(&gw, "/tools/database:executeQuery/invoke", &admin, &json!({"query": sql}), &[]);
        assert!(matches!(r.status, 403 | 422), "{sql}: {} {}", r.status, String::from_utf8_lossy(&r.body));
    }
    assert_eq!(tables(&gw), before);
    assert!(!copy.exists() && !attach.exists(), "no file written");
    let count = post(
        &gw,
        "/tools/database:executeQuery/invoke",
        &admin,
        &json!({"query": "SELECT count(*) FROM customers"}),
        &[],
    );
    assert_eq!(count.json()["result"]["rows"], json!([[4]]));
    // Parameters are bound, never spliced.
    let r = post(
        &gw,
        "/tools/database:executeQuery/invoke",
        &admin,
        &json!({"query": "SELECT count(*) FROM customers WHERE name = ?", "params": ["x' OR '1'='1"]}),
        &[],
    );
    assert_eq!(r.json()["result"]["rows"], json!([[0]]));
}

#[test]
fn twenty_concurrent_confirms_run_the_tool_once() {
    let Env { gw, ads, .. } = start("rest-race", "");
    let fin = gw.mint("fin-agent", "acme", "finance-write");
    let held = post(&gw, "/tools/ads:createCampaign/invoke", &fin, &json!({"name": "R", "budget": 1}), &[]).json();
    let token = held["action_token"].as_str().unwrap().to_string();
    let url = gw.url("/tools/ads:createCampaign/confirm");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..20)
            .map(|_| {
                let (url, fin, token) = (url.clone(), fin.clone(), token.clone());
                s.spawn(move || {
                    let body = json!({"action_token": token}).to_string();
                    http("POST", &url, &[("authorization", &format!("Bearer {fin}"))], body.as_bytes()).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 19, "{statuses:?}");
    assert_eq!(ads.count.load(Ordering::SeqCst), 1, "exactly one execution");
}

#[test]
fn manifests_cannot_be_taken_over_across_tenants_or_lose_their_tags() {
    let Env { gw, .. } = start("rest-register", "");
    let acme = gw.mint("admin-a", "acme", "tenant-admin");
    let globex = gw.mint("admin-g", "globex", "tenant-admin");
    let platform = gw.mint("root", "platform", "platform-admin");
    let manifest = |tenant: &str, tags: Value| {
        json!({"toolId": "crm:lookup", "name": "Lookup", "provider_id": "crm", "tenant": tenant,
               "inputs": {"type": "object"}, "safety_tags": tags, "required_scopes": ["crm.read"],
               "http": {"method": "GET", "path": "/lookup", "base_url": "https://crm.example.com"}})
    };
    let r = post(&gw, "/manifests/register", &acme, &manifest("acme", json!(["destructive"])), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["created"], true);
    // Another tenant cannot overwrite it (not even by claiming its own tenant).
    let r = post(&gw, "/manifests/register", &globex, &manifest("globex", json!(["destructive"])), &[]);
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]["details"]["reasons"].as_array().unwrap().contains(&json!("register-foreign-manifest")));
    // Its own admin cannot drop its safety tags.
    let r = post(&gw, "/manifests/register", &acme, &manifest("acme", json!([])), &[]);
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]["details"]["reasons"].as_array().unwrap().contains(&json!("register-drops-safety-tags")));
    // Only a platform admin registers public tools; agents register nothing.
    assert_eq!(post(&gw, "/manifests/register", &acme, &manifest("public", json!([])), &[]).status, 403);
    let agent = gw.mint("a", "acme", "agent");
    assert_eq!(post(&gw, "/manifests/register", &agent, &manifest("acme", json!(["destructive"])), &[]).status, 403);
    // A seeded public tool is not overwritable by a tenant admin.
    let seeded = json!({"toolId": "database:executeQuery", "name": "x", "provider_id": "database", "inputs": {"type": "object"}});
    assert_eq!(post(&gw, "/manifests/register", &acme, &seeded, &[]).status, 403);
    let mut global = manifest("public", json!([]));
    global["toolId"] = json!("crm:global");
    let r = post(&gw, "/manifests/register", &platform, &global, &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // A tenant admin sees the public tool in its catalog only if it may invoke it (no crm.read).
    let cat = http("GET", &gw.url("/tool-catalog"), &[("authorization", &format!("Bearer {acme}"))], b"").json();
    assert!(!cat.to_string().contains("crm:global"), "{cat}");
    // Every attempt is audited.
    let n = audit_lines(&gw).iter().filter(|e| e["action"] == "manifests.register").count();
    assert_eq!(n, 7);
}

#[test]
fn confirm_after_losing_the_role_is_forbidden() {
    let Env { gw, ads, .. } = start("rest-lost-role", "");
    let fin = gw.mint("fin-agent", "acme", "finance-write");
    let held = post(&gw, "/tools/ads:createCampaign/invoke", &fin, &json!({"name": "L", "budget": 5}), &[]).json();
    let token = held["action_token"].as_str().unwrap().to_string();
    let demoted = gw.mint("fin-agent", "acme", "agent");
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &demoted, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 403);
    assert_eq!(ads.count.load(Ordering::SeqCst), 0);
}

#[test]
fn approver_mode_needs_an_approver_or_the_admin_api() {
    let Env { gw, ads, .. } = start("rest-approver", "rest:\n  approver_roles: [approver]\n");
    let fin = gw.mint("fin-agent", "acme", "finance-write");
    let invoke = |name: &str| {
        post(&gw, "/tools/ads:createCampaign/invoke", &fin, &json!({"name": name, "budget": 5}), &[]).json()
    };
    let first = invoke("A");
    assert_eq!(first["approval_required"], true);
    let token = first["action_token"].as_str().unwrap().to_string();
    // The agent cannot approve its own financial action.
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 403);
    assert!(r.json()["error"]["details"]["reasons"].as_array().unwrap().contains(&json!("awaiting_approval")));
    // A human approver of the same tenant can.
    let boss = gw.mint("boss", "acme", "approver");
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &boss, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Or the admin API approves, then the agent's confirm runs it.
    let second = invoke("B");
    let token = second["action_token"].as_str().unwrap().to_string();
    let pending = gw.admin("GET", "/admin/holds").json();
    let hold = pending["holds"].as_array().unwrap().iter().find(|h| h["id"] == second["hold_id"]).unwrap().clone();
    assert_eq!(hold["needs_approval"], true);
    assert!(!pending.to_string().contains(&token), "the admin API never shows action tokens");
    let id = hold["id"].as_str().unwrap();
    assert_eq!(gw.admin("POST", &format!("/admin/holds/{id}/approve")).status, 200);
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(ads.count.load(Ordering::SeqCst), 2);
}

#[test]
fn provider_down_is_502_and_too_slow_is_504_both_audited() {
    let dead = free_port();
    let slow = fake_upstream(|_, _, _| std::thread::sleep(Duration::from_secs(5)));
    let yaml = format!(
        "limits:\n  upstream_timeout_seconds: 1\nproviders:\n  http:\n    pipedrive_base_url: \"http://127.0.0.1:{dead}/api/v1\"\n    google_ads_base_url: \"http://127.0.0.1:{slow}\"\n    google_ads_developer_token: \"d\"\n    google_ads_customer_id: \"1234567890\"\n  credentials:\n    pipedrive: {{kind: static, secret: \"pd\"}}\n    ads: {{kind: static, secret: \"at\"}}\n"
    );
    let gw = Gateway::builder("rest-failures").config(&yaml).env("RATE_BUCKET_BURST", "100").start();
    let sales = gw.mint("s", "acme", "sales-write");
    let r = post(&gw, "/tools/pipedrive:createDeal/invoke", &sales, &json!({"title": "t"}), &[]);
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["code"], "PROVIDER_ERROR");
    let fin = gw.mint("f", "acme", "finance-write");
    let token = post(&gw, "/tools/ads:createCampaign/invoke", &fin, &json!({"name": "s", "budget": 1}), &[]).json()
        ["action_token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": token}), &[]);
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "PROVIDER_TIMEOUT");
    // A provider failure after consumption leaves the token spent.
    assert_eq!(post(&gw, "/tools/ads:createCampaign/confirm", &fin, &json!({"action_token": token}), &[]).status, 409);
    let log = audit_lines(&gw);
    let codes: Vec<&str> =
        log.iter().filter(|e| e["phase"] == "completion").filter_map(|e| e["outcome"]["error_code"].as_str()).collect();
    assert!(codes.contains(&"PROVIDER_ERROR") && codes.contains(&"PROVIDER_TIMEOUT"), "{codes:?}");
}

#[test]
fn a_manifest_described_http_tool_runs_with_its_brokered_credential() {
    // The shipped policy plus one rule for the new provider.
    let dir = temp_dir("rest-generic-policy");
    let mut policy = std::fs::read_to_string(repo().join("policies/policies.yml")).unwrap();
    policy.push_str(
        "\n  - id: invoke-crm\n    effect: allow\n    when:\n      action: tools.invoke\n      resource.provider_id: \"crm\"\n      subject.roles: [\"sales-write\"]\n",
    );
    let policy_file = dir.join("policies.yml");
    std::fs::write(&policy_file, policy).unwrap();
    let (crm_port, crm) = fake(|_, _| ("200 OK".into(), json!({"id": 5, "name": "ACME Corp"})));
    // The operator binds the crm credential to the crm service (default: nowhere).
    let extra = format!(
        "    crm: {{kind: static, secret: \"crm-key-1\", allowed_urls: [\"http://127.0.0.1:{crm_port}/v2\"]}}\n"
    );
    let policy_env = policy_file.display().to_string();
    let Env { gw, .. } = start_with("rest-generic", "", &extra, &[("FASTMCP_POLICIES", &policy_env)]);
    let admin = gw.mint("admin-a", "acme", "tenant-admin");
    let manifest = json!({
        "toolId": "crm:updateCompany", "name": "Update company", "provider_id": "crm", "tenant": "acme",
        "inputs": {"type": "object", "required": ["id", "title"],
                   "properties": {"id": {"type": "string"}, "title": {"type": "string"}}},
        "safety_tags": ["write"], "required_scopes": [],
        "http": {"method": "PUT", "path": "/companies/{input.id}", "base_url": format!("http://127.0.0.1:{crm_port}/v2"),
                 "body": {"mapping": {"name": "{input.title}", "source": "fastmcp"}},
                 "auth": {"kind": "header", "name": "X-Api-Key"}}
    });
    assert_eq!(post(&gw, "/manifests/register", &admin, &manifest, &[]).status, 200);
    let sales = gw.mint("s1", "acme", "sales-write");
    let r = post(
        &gw,
        "/tools/crm:updateCompany/invoke",
        &sales,
        &json!({"id": "5/../../admin", "title": "ACME Corp"}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["name"], "ACME Corp");
    let (head, body) = &crm.all()[0];
    assert!(head.starts_with("PUT /v2/companies/5%2F..%2F..%2Fadmin HTTP/1.1"), "path stays one segment: {head}");
    assert!(head.to_ascii_lowercase().contains("x-api-key: crm-key-1"), "{head}");
    assert!(!head.contains(&sales), "the agent's JWT never reaches the provider");
    assert_eq!(serde_json::from_str::<Value>(body).unwrap(), json!({"name": "ACME Corp", "source": "fastmcp"}));
    // Another tenant's agent cannot call acme's tool.
    let other = gw.mint("s2", "globex", "sales-write");
    let r = post(&gw, "/tools/crm:updateCompany/invoke", &other, &json!({"id": "5", "title": "x"}), &[]);
    assert_eq!(r.status, 403);
    assert_eq!(crm.count.load(Ordering::SeqCst), 1);
}

#[test]
fn a_duplicate_still_in_flight_is_a_conflict() {
    // A Pipedrive that holds the first request until the test lets it go.
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let arrived = Mutex::new(arrived_tx);
    let release = Mutex::new(release_rx);
    let pd = fake_upstream(move |_, _, s| {
        let _ = arrived.lock().unwrap().send(());
        let _ = release.lock().unwrap().recv();
        reply(s, "201 Created", &json!({"success": true, "data": {"id": 1}}));
    });
    let yaml = format!(
        "providers:\n  http:\n    pipedrive_base_url: \"http://127.0.0.1:{pd}/api/v1\"\n  credentials:\n    pipedrive: {{kind: static, secret: \"pd\"}}\n"
    );
    let gw = Gateway::builder("rest-inflight").config(&yaml).start();
    let sales = gw.mint("s1", "acme", "sales-write");
    let deal = json!({"title": "slow"});
    let first = std::thread::scope(|s| {
        let first =
            s.spawn(|| post(&gw, "/tools/pipedrive:createDeal/invoke", &sales, &deal, &[("idempotency-key", "k")]));
        arrived_rx.recv().expect("the first call reached Pipedrive");
        let dup = post(&gw, "/tools/pipedrive:createDeal/invoke", &sales, &deal, &[("idempotency-key", "k")]);
        assert_eq!(dup.status, 409, "{}", String::from_utf8_lossy(&dup.body));
        assert_eq!(dup.json()["error"]["code"], "CONFLICT");
        release_tx.send(()).expect("release");
        first.join().expect("first")
    });
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    let replay = post(&gw, "/tools/pipedrive:createDeal/invoke", &sales, &deal, &[("idempotency-key", "k")]);
    assert_eq!(replay.header("x-idempotent-replay"), Some("true"));
}
