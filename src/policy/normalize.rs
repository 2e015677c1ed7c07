//! Turns the seed-format rules of `policies.yml` into a shape the Rego evaluates cheaply:
//! dotted keys split into paths and each condition tagged with its operator, once at load
//! time instead of on every decision. Only syntax is decided here; what the conditions mean
//! (deny wins, obligations never grant, scopes) stays in `authz.rego`.

use serde_json::{json, Value};

/// `data.fastmcp_rules`: `[{id, effect, require_confirmation, obligation, rate_limit?,
/// eq_pattern: {...}, eq: [{path, value}], in: [{path, value}], tags_any: [{path, value}],
/// neq_path: [{path, other}]}]`: equality conditions as one nested pattern (`eq` keeps only
/// those whose paths collide), the rest one list per operator, so the Rego needs no
/// per-condition dispatch.
pub fn normalize(policies: &Value) -> Value {
    let rules = policies.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
    let out: Vec<Value> = rules.iter().enumerate().map(|(i, r)| rule(i, r)).collect();
    Value::Array(out)
}

/// `data.fastmcp_index`: which rules an input can match, by its action and then by its tool
/// or provider, so a decision visits a handful of rules however many the policy has:
/// `{"any": [i], "by_action": {action: {"tool": {toolId: [i]}, "provider": {id: [i]},
/// "rest": [i]}}, "rate_limited": [i]}` (indices into `data.fastmcp_rules`; `rate_limited`:
/// the allow rules that name a rate limit, in policy order). A rule is filed under every action it
/// names by equality or list (`any` when it names none another way), and within an action
/// under its tool ids, else its provider ids, else `rest`. Filing is a superset: the Rego
/// still checks every condition of every candidate, and falls back to all of an action's
/// rules when the input's tool or provider is not a string.
pub fn index(policies: &Value) -> Value {
    let rules = policies.get("rules").and_then(Value::as_array).cloned().unwrap_or_default();
    let (mut any, mut rate_limited) = (Vec::new(), Vec::new());
    let mut by_action = serde_json::Map::new();
    for (i, r) in rules.iter().enumerate() {
        if r.get("effect").and_then(Value::as_str).unwrap_or("allow") == "allow" && r.get("rate_limit").is_some() {
            rate_limited.push(i);
        }
        let when = r.get("when").and_then(Value::as_object);
        let cond = |key: &str| when.and_then(|w| w.get(key)).and_then(plain_strings);
        let Some(actions) = cond("action") else {
            any.push(i);
            continue;
        };
        let filed = cond("resource.toolId")
            .map(|k| ("tool", k))
            .or_else(|| cond("resource.provider_id").map(|k| ("provider", k)));
        for action in actions {
            let slot = by_action.entry(action).or_insert_with(|| json!({"tool": {}, "provider": {}, "rest": []}));
            match &filed {
                Some((bucket, keys)) => keys.iter().for_each(|key| push(&mut slot[*bucket][key.as_str()], i)),
                None => push(&mut slot["rest"], i),
            }
        }
    }
    json!({"any": any, "by_action": by_action, "rate_limited": rate_limited})
}

/// The strings an equality or list condition names; `None` for anything else (`!= path`, a
/// number, a list with a non-string): such a rule is not filed under that key.
fn plain_strings(want: &Value) -> Option<Vec<String>> {
    match want {
        Value::String(s) if !s.starts_with("!= ") => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|v| v.as_str().map(String::from)).collect(),
        _ => None,
    }
}

/// Appends rule `i` to `list` (a missing list, `null`, becomes one) unless it ends with it.
fn push(list: &mut Value, i: usize) {
    if list.is_null() {
        *list = json!([]);
    }
    if let Some(a) = list.as_array_mut() {
        if a.last() != Some(&json!(i)) {
            a.push(json!(i));
        }
    }
}

fn split(path: &str) -> Value {
    Value::Array(path.split('.').map(|p| Value::String(p.to_string())).collect())
}

fn rule(index: usize, r: &Value) -> Value {
    let when = r.get("when").and_then(Value::as_object).cloned().unwrap_or_default();
    let (mut eq, mut any_of, mut tags, mut neq) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Equality conditions become one nested object checked with `object.subset(input, ...)`:
    // a single builtin call instead of a loop over conditions.
    let mut pattern = json!({});
    for (key, want) in &when {
        if key == "resource.safety_tags_any" {
            tags.push(json!({"path": ["resource", "safety_tags"], "value": as_list(want)}));
        } else if let Some(other) = want.as_str().and_then(|s| s.strip_prefix("!= ")) {
            neq.push(json!({"path": split(key), "other": split(other.trim())}));
        } else if want.is_array() {
            any_of.push(json!({"path": split(key), "value": want}));
        } else if !insert_path(&mut pattern, key, want) {
            eq.push(json!({"path": split(key), "value": want}));
        }
    }
    let mut out = json!({
        "id": r.get("id").cloned().unwrap_or_else(|| json!(format!("rule-{index}"))),
        "effect": r.get("effect").cloned().unwrap_or_else(|| json!("allow")),
        "require_confirmation": r.get("require_confirmation").and_then(Value::as_bool).unwrap_or(false),
        // Syntactic, so computed once here: a confirmation rule without a subject condition.
        "obligation": r.get("require_confirmation").and_then(Value::as_bool).unwrap_or(false)
            && !when.keys().any(|k| k.starts_with("subject.")),
        "eq_pattern": pattern,
        "eq": eq,
        "in": any_of,
        "tags_any": tags,
        "neq_path": neq,
    });
    if let (Some(rl), Some(obj)) = (r.get("rate_limit"), out.as_object_mut()) {
        obj.insert("rate_limit".into(), rl.clone());
    }
    out
}

/// Inserts `value` at dotted `path` in `pattern`; false when the path collides with an
/// existing entry (the condition is then checked on its own).
fn insert_path(pattern: &mut Value, path: &str, value: &Value) -> bool {
    let parts: Vec<&str> = path.split('.').collect();
    let mut node = pattern;
    for (i, part) in parts.iter().enumerate() {
        let Some(obj) = node.as_object_mut() else { return false };
        if i + 1 == parts.len() {
            if obj.contains_key(*part) {
                return false;
            }
            obj.insert((*part).to_string(), value.clone());
            return true;
        }
        node = obj.entry((*part).to_string()).or_insert_with(|| json!({}));
    }
    false
}

fn as_list(v: &Value) -> Value {
    match v {
        Value::Array(_) => v.clone(),
        other => json!([other]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_typed_and_split() {
        let p = json!({"rules": [{"id": "t", "effect": "deny", "when": {
            "resource.tenant": "!= subject.tenant", "subject.roles": ["a"], "action": "x",
            "resource.safety_tags_any": "financial"}}]});
        let r = &normalize(&p)[0];
        assert_eq!(r["obligation"], false, "deny rules naming a subject are no obligations");
        assert_eq!(r["eq_pattern"], json!({"action": "x"}));
        assert_eq!(r["eq"], json!([]));
        assert_eq!(r["in"], json!([{"path": ["subject", "roles"], "value": ["a"]}]));
        assert_eq!(r["tags_any"][0]["value"], json!(["financial"]));
        assert_eq!(r["neq_path"][0]["other"], json!(["subject", "tenant"]));
    }

    #[test]
    fn rules_are_filed_by_action_then_tool_or_provider() {
        let p = json!({"rules": [
            {"id": "t", "when": {"action": "tools.invoke", "resource.toolId": ["a:x", "a:y"], "resource.provider_id": "a"}},
            {"id": "p", "when": {"action": ["tools.invoke", "catalog:list"], "resource.provider_id": "b"}},
            {"id": "r", "when": {"action": "tools.invoke"}},
            {"id": "n", "when": {"resource.tenant": "!= subject.tenant"}},
            {"id": "q", "when": {"action": "!= tools.invoke"}},
            {"id": "m", "when": {"action": "tools.invoke", "resource.toolId": ["a:x", 7]}},
        ]});
        let idx = index(&p);
        assert_eq!(idx["any"], json!([3, 4]), "no plain action condition: a candidate for every input");
        let invoke = &idx["by_action"]["tools.invoke"];
        assert_eq!(invoke["tool"], json!({"a:x": [0], "a:y": [0]}), "the tool wins over the provider");
        assert_eq!(invoke["provider"], json!({"b": [1]}));
        assert_eq!(invoke["rest"], json!([2, 5]), "a tool list with a non-string is not filed by tool");
        assert_eq!(idx["by_action"]["catalog:list"]["provider"], json!({"b": [1]}));
        let limited = json!({"rules": [
            {"id": "a", "rate_limit": {"rps": 1, "burst": 1}},
            {"id": "d", "effect": "deny", "rate_limit": {"rps": 1, "burst": 1}},
            {"id": "b"},
            {"id": "c", "effect": "allow", "rate_limit": {"rps": 2, "burst": 2}},
        ]});
        assert_eq!(index(&limited)["rate_limited"], json!([0, 3]), "allow rules naming a limit, in order");
    }
}
