//! Acceptance (issue 11): every real MCP client works through every door. Four client
//! libraries (tests/common/clients.rs) × three doors (`/mcp/demo`, `/mcp/everything`, the
//! federated `/mcp`) × the cases a user meets: connect, the filtered list, an allowed call, a
//! denied call (rule names surfaced, the session survives), a held call confirmed natively
//! (runs exactly once) or declined (does not run), the action token without elicitation (runs
//! once), the hold's `error.message` (it names the action token and the confirm URL), the
//! token's replay (a readable error, the session survives), progress, a 500 KiB argument,
//! resources, prompts, no token (401, no hang) and no scope for the server (403
//! `insufficient_scope` at connect).
//!
//! Expectations are the target semantics of issue 11: a refusal of one call is HTTP 200 with
//! a JSON-RPC error whose `data` is the DESIGN error shape. Every cell is checked; the test
//! prints the client × door × case table with totals and fails at the end listing every
//! failing cell. A cell a door cannot offer is "n/a" with its reason.

mod common;

use common::clients::{self, Client, Elicit, MatrixEnv};
use serde_json::{json, Value};

/// One tools/call the matrix makes and the text it must answer.
#[derive(Clone)]
struct Call {
    name: String,
    args: Value,
    text: String,
}

fn call(name: &str, args: Value, text: &str) -> Call {
    Call { name: name.into(), args, text: text.into() }
}

/// A door and what it offers the matrix user (`mcp-user`, tests/fixtures/client_matrix_policies.yml).
struct Door {
    label: &'static str,
    path: &'static str,
    /// `serverInfo.name` the client sees at connect.
    server_name: &'static str,
    federated: bool,
    listed: Vec<&'static str>,
    hidden: Vec<&'static str>,
    allowed: Call,
    denied: (Call, &'static str),
    /// The held (destructive) call for a given item.
    held: fn(&str) -> Call,
    /// The demo tool whose calls file counts the held call (runs exactly once), if it is one.
    held_counted: Option<&'static str>,
    /// The tool and argument that echo a big text, and the prefix of the echo.
    big: (&'static str, &'static str, &'static str),
    progress: Option<Call>,
    resources: bool,
    prompt: Option<(&'static str, &'static str)>,
}

const NO_DEMO_EXTRAS: &str = "the demo server has no progress tool, resources or prompts (on /mcp/everything and /mcp)";
const PROGRESS_STEPS: u64 = 3;
const SIMPLE_PROMPT: &str = "This is a simple prompt without arguments.";

fn doors() -> Vec<Door> {
    let long = |name: &str| {
        call(
            name,
            json!({"duration": 1, "steps": PROGRESS_STEPS}),
            "Long running operation completed. Duration: 1 seconds, Steps: 3.",
        )
    };
    vec![
        Door {
            label: "/mcp/demo",
            path: "/mcp/demo",
            server_name: "demo",
            federated: false,
            listed: vec!["echo", "add", "delete_item"],
            hidden: vec!["read_secret"],
            allowed: call("echo", json!({"text": "hi"}), "hi"),
            denied: (call("read_secret", json!({"name": "db"}), ""), "deny-secrets-to-users"),
            held: |item| call("delete_item", json!({"item": item}), &format!("deleted {item}")),
            held_counted: Some("delete_item"),
            big: ("echo", "text", ""),
            progress: None,
            resources: false,
            prompt: None,
        },
        Door {
            label: "/mcp/everything",
            path: "/mcp/everything",
            server_name: "mcp-servers/everything",
            federated: false,
            listed: vec!["echo", "get-sum", "trigger-long-running-operation"],
            hidden: vec!["get-env"],
            allowed: call("echo", json!({"message": "hi"}), "Echo: hi"),
            denied: (call("get-env", json!({}), ""), "deny-env-to-users"),
            // get-sum is tagged destructive for this test (FASTMCP__MCP__SERVERS__EVERYTHING__TOOL_TAGS).
            held: |item| {
                let n = item.len();
                call("get-sum", json!({"a": n, "b": 1}), &format!("The sum of {n} and 1 is {}.", n + 1))
            },
            held_counted: None,
            big: ("echo", "message", "Echo: "),
            progress: Some(long("trigger-long-running-operation")),
            resources: true,
            prompt: Some(("simple-prompt", SIMPLE_PROMPT)),
        },
        Door {
            label: "/mcp",
            path: "/mcp",
            server_name: "fastmcp-gateway",
            federated: true,
            listed: vec!["demo__echo", "demo__add", "demo__delete_item", "everything__echo", "everything__get-sum"],
            hidden: vec!["demo__read_secret", "everything__get-env"],
            allowed: call("demo__echo", json!({"text": "hi"}), "hi"),
            denied: (call("demo__read_secret", json!({"name": "db"}), ""), "deny-secrets-to-users"),
            held: |item| call("demo__delete_item", json!({"item": item}), &format!("deleted {item}")),
            held_counted: Some("delete_item"),
            big: ("demo__echo", "text", ""),
            progress: Some(long("everything__trigger-long-running-operation")),
            resources: true,
            prompt: Some(("everything__simple-prompt", SIMPLE_PROMPT)),
        },
    ]
}

const CASES: [&str; 15] = [
    "connect",
    "list",
    "allowed",
    "denied",
    "hold-accept",
    "hold-decline",
    "token-once",
    "hold-message",
    "replay",
    "progress",
    "500KiB",
    "resources",
    "prompts",
    "no-token",
    "no-scope",
];

/// A cell's outcome.
enum Outcome {
    Pass,
    Fail(String),
    NotApplicable(String),
}

struct Cell {
    client: Client,
    door: &'static str,
    case: &'static str,
    outcome: Outcome,
}

/// Collects the problems of one cell.
#[derive(Default)]
struct Check(Vec<String>);

impl Check {
    fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }
    fn outcome(self) -> Outcome {
        if self.0.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail(self.0.join("; "))
        }
    }
}

/// A step result, shortened for a failure message.
fn brief(v: &Value) -> String {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in ["raw", "tool_objects", "text_sha256"] {
            o.remove(k);
        }
    }
    let s = v.to_string();
    if s.len() > 400 {
        format!("{}…", &s[..s.char_indices().nth(400).map(|(i, _)| i).unwrap_or(s.len())])
    } else {
        s
    }
}

/// An allowed call answered with the expected text, without error.
fn call_ok(c: &mut Check, what: &str, r: &Value, expect: &Call) {
    c.that(r["ok"] == true && r["is_error"] == false, || format!("{what} failed: {}", brief(r)));
    c.that(r["ok"] != true || r["text"] == expect.text.as_str(), || {
        format!("{what} answered {:?}, want {:?}", r["text"], expect.text)
    });
}

/// A call refused as one JSON-RPC error, HTTP 200, with the DESIGN error shape.
fn refused(c: &mut Check, what: &str, r: &Value, code: &str) {
    c.that(r["kind"] == "jsonrpc", || format!("{what}: not surfaced as a JSON-RPC error: {}", brief(r)));
    c.that(r["data"]["code"] == code, || format!("{what}: error.data.code is not {code}: {}", brief(r)));
    c.that(r["data"]["corr_id"].is_string() && r["data"]["message"].is_string(), || {
        format!("{what}: error.data lacks message/corr_id: {}", brief(r))
    });
    c.that(r["http_status"].is_null() || r["http_status"] == 200, || {
        format!("{what}: HTTP {} (want 200 with the JSON-RPC error)", r["http_status"])
    });
}

/// The step after a refusal ran in the same session and worked.
fn survives(c: &mut Check, before: &Value, next: &Value, expect: &Call) {
    c.that(next["session"] == before["session"] && !next["session"].is_null(), || {
        format!("the session did not survive (session {} then {})", before["session"], next["session"])
    });
    call_ok(c, "the next call", next, expect);
}

/// Steps of one run, remembering where each landed.
#[derive(Default)]
struct Steps(Vec<Value>);

impl Steps {
    fn push(&mut self, step: Value) -> usize {
        self.0.push(step);
        self.0.len() - 1
    }
    fn call(&mut self, c: &Call, extra: Value) -> usize {
        let mut step = json!({"op": "call", "name": c.name, "args": c.args});
        if let (Some(s), Some(e)) = (step.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        self.push(step)
    }
    fn value(&self) -> Value {
        Value::Array(self.0.clone())
    }
}

fn big_text() -> String {
    // 500 KiB of UTF-8 with multi-byte characters, so a re-encoding shows.
    let unit = "fastmcp client matrix 0123456789 é ☃ \"quoted\" \\ ";
    let mut s = String::with_capacity(512 * 1024 + unit.len());
    while s.len() < 500 * 1024 {
        s.push_str(unit);
    }
    s
}

fn sha256_hex(s: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

/// Runs every case of one client at one door and returns its cells.
fn client_at_door(
    env: &MatrixEnv,
    client: Client,
    door: &Door,
    big_file: &str,
    big_sha: &str,
    big_len: usize,
) -> Vec<Cell> {
    let url = env.gw.url(door.path);
    let sub = format!("{}-{}", client.label(), door.label.replace('/', "_"));
    let user = env.gw.mint(&sub, "acme", "mcp-user");
    let agent = env.gw.mint(&format!("{sub}-agent"), "acme", "agent");
    let counted = |tool: Option<&str>| tool.map(|t| env.demo.calls(t));
    let mut cells = Vec::new();
    let mut put = |case: &'static str, outcome: Outcome| cells.push(Cell { client, door: door.label, case, outcome });
    let tag = client.label();

    // Run A: elicitation declared and accepted.
    let mut a = Steps::default();
    let list = a.push(json!({"op": "list_tools"}));
    let allowed = a.call(&door.allowed, json!({}));
    let denied = a.call(&door.denied.0, json!({}));
    let after_denied = a.call(&door.allowed, json!({}));
    let held_a = (door.held)(&format!("{tag}-accept"));
    let accept = a.call(&held_a, json!({}));
    let big = a.push(json!({"op": "call", "name": door.big.0, "args_file": big_file}));
    let progress = door.progress.as_ref().map(|p| a.call(p, json!({"progress": true})));
    let resources = door
        .resources
        .then(|| (a.push(json!({"op": "list_resources"})), a.push(json!({"op": "read_resource", "first": true}))));
    let prompts = door
        .prompt
        .map(|(name, _)| (a.push(json!({"op": "list_prompts"})), a.push(json!({"op": "get_prompt", "name": name}))));
    let before = counted(door.held_counted);
    let ra = clients::run(client, &url, Some(&user), Elicit::Accept, &a.value());
    let ran_a = counted(door.held_counted).zip(before).map(|(n, b)| n - b);
    let s = |i: usize| &ra["steps"][i];

    let mut c = Check::default();
    let conn = &ra["connect"];
    c.that(conn["ok"] == true, || format!("connect failed: {}", brief(conn)));
    c.that(conn["ok"] != true || conn["server_name"] == door.server_name, || {
        format!("serverInfo.name {} (want {})", conn["server_name"], door.server_name)
    });
    c.that(ra.get("driver_hung").is_none(), || "the driver hung".into());
    put("connect", c.outcome());

    let mut c = Check::default();
    let names: Vec<&str> =
        s(list)["tools"].as_array().map(|t| t.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    c.that(s(list)["ok"] == true, || format!("tools/list failed: {}", brief(s(list))));
    for want in &door.listed {
        c.that(names.contains(want), || format!("{want} not listed"));
    }
    for hidden in &door.hidden {
        c.that(!names.contains(hidden), || format!("{hidden} listed though denied"));
    }
    if door.federated {
        c.that(names.iter().all(|n| n.contains("__")), || format!("not all {{server}}__{{tool}}: {names:?}"));
    }
    put("list", c.outcome());

    let mut c = Check::default();
    call_ok(&mut c, "allowed call", s(allowed), &door.allowed);
    if door.federated {
        let who = &s(allowed)["meta_server"];
        c.that(who.is_null() || who == "fastmcp-gateway", || format!("the result speaks as {who}, not the gateway"));
    }
    put("allowed", c.outcome());

    let mut c = Check::default();
    refused(&mut c, "denied call", s(denied), "FORBIDDEN");
    let reasons = &s(denied)["data"]["details"]["reasons"];
    c.that(reasons.as_array().is_some_and(|r| r.contains(&json!(door.denied.1))), || {
        format!("the rule {} is not in error.data.details.reasons", door.denied.1)
    });
    survives(&mut c, s(denied), s(after_denied), &door.allowed);
    put("denied", c.outcome());

    let mut c = Check::default();
    c.that(s(accept)["elicited"] == 1, || format!("not asked natively exactly once: {}", brief(s(accept))));
    call_ok(&mut c, "the confirmed call", s(accept), &held_a);
    if let Some(n) = ran_a {
        c.that(n == 1, || format!("the held call ran {n} times (want 1)"));
    }
    put("hold-accept", c.outcome());

    let mut c = Check::default();
    let r = s(big);
    let want_sha =
        if door.big.2.is_empty() { big_sha.to_string() } else { sha256_hex(&format!("{}{}", door.big.2, big_text())) };
    c.that(r["ok"] == true && r["is_error"] == false, || format!("the call failed: {}", brief(r)));
    c.that(r["ok"] != true || r["text_sha256"] == want_sha.as_str(), || {
        format!("echo differs: {} chars back, want {}", r["text_len"], big_len + door.big.2.chars().count())
    });
    put("500KiB", c.outcome());

    match progress {
        None => put("progress", Outcome::NotApplicable(NO_DEMO_EXTRAS.into())),
        Some(i) => {
            let mut c = Check::default();
            call_ok(&mut c, "the long-running call", s(i), door.progress.as_ref().expect("progress call"));
            let seen = s(i)["progress"].as_array().map(Vec::len).unwrap_or(0);
            c.that(seen as u64 == PROGRESS_STEPS, || format!("{seen} progress notifications (want {PROGRESS_STEPS})"));
            put("progress", c.outcome());
        }
    }
    match resources {
        None => put("resources", Outcome::NotApplicable(NO_DEMO_EXTRAS.into())),
        Some((l, r)) => {
            let mut c = Check::default();
            let uris = s(l)["uris"].as_array().cloned().unwrap_or_default();
            c.that(s(l)["ok"] == true && !uris.is_empty(), || format!("resources/list: {}", brief(s(l))));
            c.that(
                uris.iter().any(|u| u.as_str().is_some_and(|u| u.starts_with("demo://resource/static/document/"))),
                || "server-everything's documents are not listed".into(),
            );
            let read_len = s(r)["contents"][0]["text_len"].as_u64().unwrap_or(0);
            c.that(s(r)["ok"] == true && read_len > 0, || format!("resources/read: {}", brief(s(r))));
            put("resources", c.outcome());
        }
    }
    match (prompts, door.prompt) {
        (Some((l, g)), Some((name, text))) => {
            let mut c = Check::default();
            let listed = s(l)["prompts"].as_array().is_some_and(|p| p.contains(&json!(name)));
            c.that(s(l)["ok"] == true && listed, || format!("{name} not in prompts/list: {}", brief(s(l))));
            c.that(s(g)["ok"] == true && s(g)["messages"][0] == text, || {
                format!("prompts/get {name}: {}", brief(s(g)))
            });
            put("prompts", c.outcome());
        }
        _ => put("prompts", Outcome::NotApplicable(NO_DEMO_EXTRAS.into())),
    }

    // Run B: elicitation declared and declined.
    let mut b = Steps::default();
    let decline = b.call(&(door.held)(&format!("{tag}-decline")), json!({}));
    let after_decline = b.call(&door.allowed, json!({}));
    let before = counted(door.held_counted);
    let rb = clients::run(client, &url, Some(&user), Elicit::Decline, &b.value());
    let ran_b = counted(door.held_counted).zip(before).map(|(n, b)| n - b);
    let mut c = Check::default();
    let r = &rb["steps"][decline];
    c.that(r["elicited"] == 1, || format!("not asked natively exactly once: {}", brief(r)));
    c.that(r["ok"] == true && r["is_error"] == true, || format!("want a tool result with isError: {}", brief(r)));
    if let Some(n) = ran_b {
        c.that(n == 0, || format!("the declined call ran {n} times"));
    }
    survives(&mut c, r, &rb["steps"][after_decline], &door.allowed);
    put("hold-decline", c.outcome());

    // Run C: no elicitation: the action token, then its replay.
    let mut cs = Steps::default();
    let held_c = (door.held)(&format!("{tag}-token"));
    let hold = cs.call(&held_c, json!({}));
    let redeem = cs.call(&held_c, json!({"action_token_from": hold}));
    let replay = cs.call(&held_c, json!({"action_token_from": hold}));
    let after_replay = cs.call(&door.allowed, json!({}));
    let before = counted(door.held_counted);
    let rc = clients::run(client, &url, Some(&user), Elicit::None, &cs.value());
    let ran_c = counted(door.held_counted).zip(before).map(|(n, b)| n - b);
    let t = |i: usize| &rc["steps"][i];
    let mut c = Check::default();
    c.that(t(hold)["kind"] == "jsonrpc" && t(hold)["code"] == -32010, || format!("want -32010: {}", brief(t(hold))));
    c.that(t(hold)["data"]["action_token"].is_string(), || "no error.data.action_token".into());
    c.that(t(hold)["http_status"].is_null() || t(hold)["http_status"] == 200, || {
        format!("HTTP {}", t(hold)["http_status"])
    });
    call_ok(&mut c, "the call with the action token", t(redeem), &held_c);
    if let Some(n) = ran_c {
        c.that(n == 1, || format!("the confirmed call ran {n} times (want 1)"));
    }
    put("token-once", c.outcome());

    // A CLI that shows only error.message must still tell its user what to do.
    let mut c = Check::default();
    let message = t(hold)["message"].as_str().unwrap_or("");
    let confirm_url = t(hold)["data"]["confirm_url"].as_str().unwrap_or("?");
    c.that(message.contains("action_token") && message.contains(confirm_url), || {
        format!("error.message names not both the action token and {confirm_url}: {message:?}")
    });
    put("hold-message", c.outcome());

    let mut c = Check::default();
    refused(&mut c, "the replayed token", t(replay), "CONFLICT");
    survives(&mut c, t(replay), t(after_replay), &door.allowed);
    put("replay", c.outcome());

    // Run D: no token at all.
    let rd = clients::run(client, &url, None, Elicit::None, &json!([]));
    let mut c = Check::default();
    let conn = &rd["connect"];
    c.that(rd.get("driver_hung").is_none() && conn["kind"] != "timeout", || format!("hung: {}", brief(conn)));
    c.that(conn["ok"] == false && conn["status"] == 401, || format!("want HTTP 401 at connect: {}", brief(conn)));
    c.that(conn["www_authenticate"].as_str().is_some_and(|h| h.starts_with("Bearer")), || {
        format!("no WWW-Authenticate: Bearer challenge seen: {}", brief(conn))
    });
    put("no-token", c.outcome());

    // Run E: a token without any MCP server's scope.
    let re = clients::run(client, &url, Some(&agent), Elicit::None, &json!([{"op": "list_tools"}]));
    let mut c = Check::default();
    let conn = &re["connect"];
    c.that(re.get("driver_hung").is_none() && conn["kind"] != "timeout", || format!("hung: {}", brief(conn)));
    c.that(conn["ok"] == false && conn["status"] == 403, || {
        format!("want HTTP 403 at connect, got {} then list {}", brief(conn), brief(&re["steps"][0]))
    });
    c.that(conn["www_authenticate"].as_str().is_some_and(|h| h.contains("insufficient_scope")), || {
        format!("no insufficient_scope challenge: {}", brief(conn))
    });
    put("no-scope", c.outcome());

    cells
}

fn print_table(cells: &[Cell]) -> String {
    let cases = CASES;
    let mut out = String::new();
    out.push_str(&format!("{:<10} {:<16}", "client", "door"));
    for case in &cases {
        out.push_str(&format!(" {case:>4}"));
    }
    out.push('\n');
    let mut rows: Vec<(Client, &str)> = Vec::new();
    for cell in cells {
        if !rows.contains(&(cell.client, cell.door)) {
            rows.push((cell.client, cell.door));
        }
    }
    for (client, door) in &rows {
        out.push_str(&format!("{:<10} {:<16}", client.label(), door));
        for case in &cases {
            let mark = cells
                .iter()
                .find(|c| c.client == *client && c.door == *door && c.case == *case)
                .map(|c| match c.outcome {
                    Outcome::Pass => "ok",
                    Outcome::Fail(_) => "FAIL",
                    Outcome::NotApplicable(_) => "n/a",
                })
                .unwrap_or("-");
            out.push_str(&format!(" {mark:>width$}", width = case.len().max(4)));
        }
        out.push('\n');
    }
    let count = |f: fn(&Outcome) -> bool| cells.iter().filter(|c| f(&c.outcome)).count();
    let (ok, fail, na) = (
        count(|o| matches!(o, Outcome::Pass)),
        count(|o| matches!(o, Outcome::Fail(_))),
        count(|o| matches!(o, Outcome::NotApplicable(_))),
    );
    out.push_str(&format!("totals: {ok} ok, {fail} FAIL, {na} n/a of {} cells\n", cells.len()));
    for client in clients::ALL {
        let mine: Vec<&Cell> = cells.iter().filter(|c| c.client == client).collect();
        let ok = mine.iter().filter(|c| matches!(c.outcome, Outcome::Pass)).count();
        let fail = mine.iter().filter(|c| matches!(c.outcome, Outcome::Fail(_))).count();
        out.push_str(&format!("  {:<10} {ok} ok, {fail} FAIL\n", client.label()));
    }
    let mut seen_na = Vec::new();
    for cell in cells {
        if let Outcome::NotApplicable(why) = &cell.outcome {
            let line = format!("n/a {} {}: {why}\n", cell.door, cell.case);
            if !seen_na.contains(&line) {
                seen_na.push(line);
            }
        }
    }
    out.extend(seen_na);
    out
}

#[test]
fn every_client_through_every_door() {
    let env = MatrixEnv::start("matrix");
    let big = big_text();
    let big_file = env.dir.join("big.json");
    let mut cells = Vec::new();
    for door in doors() {
        let key = door.big.1;
        std::fs::write(&big_file, json!({ key: big }).to_string()).expect("big args");
        for client in clients::ALL {
            let file = big_file.display().to_string();
            cells.extend(client_at_door(&env, client, &door, &file, &sha256_hex(&big), big.chars().count()));
        }
    }
    let table = print_table(&cells);
    println!("\n{table}");
    let failures: Vec<String> = cells
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Fail(why) => Some(format!("{} × {} × {}: {why}", c.client.label(), c.door, c.case)),
            _ => None,
        })
        .collect();
    assert!(failures.is_empty(), "\n{table}\n{} matrix cells fail:\n{}", failures.len(), failures.join("\n"));
}
