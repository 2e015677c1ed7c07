//! Acceptance (issue 11): the same client's results direct and through the gateway are
//! identical apart from policy. Each client library (tests/common/clients.rs) runs the same
//! steps against the demo server and server-everything directly, through `/mcp/{server}` and
//! through the federated `/mcp`, as `mcp-admin` (every tool kept; held tools left uncalled),
//! and every answer must be the same: the handshake, each call's result, progress, resources,
//! prompts, and the exact `tools/list` bytes of every kept tool (compared tool by tool: the
//! gateway may drop tools, never change a kept one). On `/mcp` the gateway's own renaming
//! (`{server}__{tool}`) and identity (`serverInfo`) are the only allowed differences. Prints a
//! client × door table and fails at the end listing every difference.

mod common;

use common::clients::{self, Client, Elicit, MatrixEnv};
use serde_json::{json, Value};

/// One server reached directly and through a gateway door, with the steps both get.
struct Target {
    label: String,
    direct: String,
    door: String,
    steps: Value,
    /// `steps` as the door names things (renamed on `/mcp`).
    door_steps: Value,
    /// `{server}__` on the federated `/mcp`, where tools and prompts are renamed.
    prefix: Option<String>,
}

fn targets(env: &MatrixEnv) -> Vec<Target> {
    let demo_steps = json!([
        {"op": "list_tools"},
        {"op": "call", "name": "echo", "args": {"text": "parity ü ☃ \"q\""}},
        {"op": "call", "name": "add", "args": {"a": 2, "b": 40}},
        {"op": "call", "name": "read_secret", "args": {"name": "db"}},
        // A tool error from the server itself (a missing argument).
        {"op": "call", "name": "echo", "args": {}},
    ]);
    let everything_steps = json!([
        {"op": "list_tools"},
        {"op": "call", "name": "echo", "args": {"message": "parity"}},
        {"op": "call", "name": "get-structured-content", "args": {"location": "New York"}},
        {"op": "call", "name": "get-annotated-message", "args": {"messageType": "error", "includeImage": false}},
        {"op": "call", "name": "trigger-long-running-operation", "args": {"duration": 1, "steps": 2}, "progress": true},
        {"op": "list_resources"},
        {"op": "read_resource", "first": true},
        {"op": "list_prompts"},
        {"op": "get_prompt", "name": "simple-prompt"},
        {"op": "get_prompt", "name": "args-prompt", "args": {"city": "Paris"}},
    ]);
    let mut out = Vec::new();
    for (server, direct, steps) in
        [("demo", env.demo.url(), demo_steps), ("everything", env.everything.url(), everything_steps)]
    {
        out.push(Target {
            label: format!("{server} /mcp/{server}"),
            direct: direct.clone(),
            door: env.gw.url(&format!("/mcp/{server}")),
            steps: steps.clone(),
            door_steps: steps.clone(),
            prefix: None,
        });
        let prefix = format!("{server}__");
        let mut renamed = steps.clone();
        for step in renamed.as_array_mut().into_iter().flatten() {
            if let Some(name) = step.get("name").and_then(Value::as_str).map(str::to_string) {
                step["name"] = json!(format!("{prefix}{name}"));
            }
        }
        out.push(Target {
            label: format!("{server} /mcp"),
            direct,
            door: env.gw.url("/mcp"),
            steps,
            door_steps: renamed,
            prefix: Some(prefix),
        });
    }
    out
}

/// A step result as compared: without the raw list (compared tool by tool), and on the
/// federated `/mcp` without the result's `_meta` serverInfo (there the gateway speaks) and,
/// for the gateway's side (`prefix`), with its renaming undone and only the server's own
/// tools and prompts.
fn comparable(step: &Value, federated: bool, prefix: Option<&str>) -> Value {
    let mut v = step.clone();
    let Some(o) = v.as_object_mut() else { return v };
    o.remove("raw");
    if federated {
        o.remove("meta_server");
    }
    let Some(prefix) = prefix else { return v };
    for key in ["tools", "prompts"] {
        if let Some(names) = o.get_mut(key).and_then(Value::as_array_mut) {
            names.retain(|n| n.as_str().is_some_and(|n| n.starts_with(prefix)));
            for n in names.iter_mut() {
                *n = json!(n.as_str().unwrap_or_default().trim_start_matches(prefix));
            }
        }
    }
    if let Some(objects) = o.get_mut("tool_objects").and_then(Value::as_array_mut) {
        objects.retain(|t| t["name"].as_str().is_some_and(|n| n.starts_with(prefix)));
        for t in objects.iter_mut() {
            t["name"] = json!(t["name"].as_str().unwrap_or_default().trim_start_matches(prefix));
        }
    }
    v
}

/// On the federated `/mcp` the tool list is the gateway's own discovery session's (server-
/// everything lists tools by the client's capabilities) in the gateway's order, so only tools
/// both lists hold are compared there, by name; through `/mcp/{server}` the lists must match
/// one for one, in order.
fn keep_common(direct: &mut Value, via: &mut Value) {
    let names = |v: &Value| -> Vec<Value> { v["tools"].as_array().cloned().unwrap_or_default() };
    let (dn, vn) = (names(direct), names(via));
    for (v, other) in [(&mut *direct, &vn), (&mut *via, &dn)] {
        if let Some(t) = v.get_mut("tools").and_then(Value::as_array_mut) {
            t.retain(|n| other.contains(n));
        }
        if let Some(t) = v.get_mut("tools").and_then(Value::as_array_mut) {
            t.sort_by_key(|n| n.as_str().unwrap_or_default().to_string());
        }
        if let Some(t) = v.get_mut("tool_objects").and_then(Value::as_array_mut) {
            t.retain(|o| other.contains(&o["name"]));
            t.sort_by_key(|o| o["name"].as_str().unwrap_or_default().to_string());
        }
    }
}

/// Where two texts part, with a little context from each.
fn first_difference(direct: &str, via: &str) -> String {
    let at = direct.bytes().zip(via.bytes()).take_while(|(a, b)| a == b).count();
    let window = |s: &str| {
        let start = (0..=at.saturating_sub(30)).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        let end = (at + 50).min(s.len());
        let end = (end..=s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
        format!("…{}…", &s[start..end])
    };
    format!(
        "bytes differ at {at} (of {} direct, {} gateway): direct {} vs gateway {}",
        direct.len(),
        via.len(),
        window(direct),
        window(via)
    )
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Differences between a direct run and a gateway run of the same steps, as (aspect, problem).
fn differences(direct: &Value, via: &Value, prefix: Option<&str>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut diff = |aspect: String, problem: String| out.push((aspect, problem));
    let connect_keys: &[&str] = if prefix.is_some() { &["ok"] } else { &["ok", "protocol_version", "server_name"] };
    for key in connect_keys {
        if direct["connect"][key] != via["connect"][key] {
            diff(
                "connect".into(),
                format!("{key}: direct {} vs gateway {}", direct["connect"][key], via["connect"][key]),
            );
        }
    }
    let empty = Vec::new();
    let (ds, vs) = (direct["steps"].as_array().unwrap_or(&empty), via["steps"].as_array().unwrap_or(&empty));
    for (i, d) in ds.iter().enumerate() {
        let v = vs.get(i).cloned().unwrap_or(Value::Null);
        let aspect = format!("step {i} {}", d["op"].as_str().unwrap_or("?"));
        if d["ok"] != true {
            diff(aspect.clone(), format!("failed direct (not comparable): {}", short(d)));
            continue;
        }
        let (mut dc, mut vc) = (comparable(d, prefix.is_some(), None), comparable(&v, prefix.is_some(), prefix));
        if prefix.is_some() && d["op"] == "list_tools" {
            keep_common(&mut dc, &mut vc);
        }
        if dc != vc {
            diff(aspect.clone(), format!("direct {} vs gateway {}", short(&dc), short(&vc)));
        }
        if d["op"] == "list_tools" {
            list_bytes(d, &v, prefix, &mut diff);
        }
    }
    out
}

/// Every tool the gateway lists is, byte for byte, the server's own (but for its name on `/mcp`).
fn list_bytes(direct: &Value, via: &Value, prefix: Option<&str>, diff: &mut impl FnMut(String, String)) {
    let (Some(dt), Some(vt)) = (clients::raw_tools(direct), clients::raw_tools(via)) else {
        let seen = (clients::raw_tools(direct).is_some(), clients::raw_tools(via).is_some());
        diff("tools/list bytes".into(), format!("raw messages not captured (direct, gateway) = {seen:?}"));
        return;
    };
    let mut compared = 0;
    for (name, bytes) in &vt {
        let (own, bytes) = match prefix {
            None => (name.clone(), bytes.clone()),
            Some(p) if name.starts_with(p) => {
                let own = name.trim_start_matches(p).to_string();
                (own.clone(), bytes.replacen(&format!("\"name\":\"{name}\""), &format!("\"name\":\"{own}\""), 1))
            }
            Some(_) => continue,
        };
        match dt.iter().find(|(n, _)| *n == own) {
            None if prefix.is_some() => {}
            None => diff("tools/list bytes".into(), format!("{name} is not a tool of the server")),
            Some((_, want)) => {
                compared += 1;
                // `/mcp` lists what the gateway discovered in its own era with the server
                // (2026-07-28 where offered); the Python SDK server orders schema keys
                // differently per era, so a 2025-11-25 client's bytes can only match as JSON.
                // Through `/mcp/{server}` the bytes are the server's own, always.
                let same_json = prefix.is_some()
                    && serde_json::from_str::<Value>(want).ok() == serde_json::from_str::<Value>(&bytes).ok();
                if *want != bytes && !same_json {
                    diff("tools/list bytes".into(), format!("{name}: {}", first_difference(want, &bytes)));
                }
            }
        }
    }
    if prefix.is_none() && vt.len() != dt.len() {
        diff("tools/list bytes".into(), format!("{} tools direct, {} through the gateway", dt.len(), vt.len()));
    }
    if compared == 0 {
        diff("tools/list bytes".into(), "no tool of the server listed through the gateway".into());
    }
}

/// One client at one door: how many aspects were compared and what differed.
struct Row {
    client: Client,
    door: String,
    aspects: usize,
    diffs: Vec<(String, String)>,
}

#[test]
fn each_client_sees_the_same_server_direct_and_through_the_gateway() {
    let env = MatrixEnv::start("parity");
    let admin = env.gw.mint("parity-admin", "acme", "mcp-admin");
    let mut rows = Vec::new();
    for target in targets(&env) {
        for client in clients::ALL {
            // Elicitation declared both ways: server-everything lists more tools then.
            let direct = clients::run(client, &target.direct, None, Elicit::Accept, &target.steps);
            let via = clients::run(client, &target.door, Some(&admin), Elicit::Accept, &target.door_steps);
            // The handshake, every step, and the tools/list bytes.
            let aspects = 1 + target.steps.as_array().map(Vec::len).unwrap_or(0) + 1;
            let diffs = differences(&direct, &via, target.prefix.as_deref());
            rows.push(Row { client, door: target.label.clone(), aspects, diffs });
        }
    }
    let mut table = format!("{:<10} {:<26} {:>8} {:>6}\n", "client", "server door", "aspects", "diffs");
    for row in &rows {
        let mark = if row.diffs.is_empty() { "same".to_string() } else { row.diffs.len().to_string() };
        table.push_str(&format!("{:<10} {:<26} {:>8} {mark:>6}\n", row.client.label(), row.door, row.aspects));
    }
    let total: usize = rows.iter().map(|r| r.diffs.len()).sum();
    let same = rows.iter().filter(|r| r.diffs.is_empty()).count();
    table.push_str(&format!("totals: {same} of {} client × door runs identical, {total} differences\n", rows.len()));
    println!("\n{table}");
    let listed: Vec<String> = rows
        .iter()
        .flat_map(|r| r.diffs.iter().map(move |(a, p)| format!("{} × {} × {a}: {p}", r.client.label(), r.door)))
        .collect();
    assert!(listed.is_empty(), "\n{table}\n{}", listed.join("\n"));
}
