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
}
