//! Filtering a `tools/list` result down to the tools the caller may call.

use serde_json::Value;

/// Keeps the tools for which `allowed(tool)` is true. Returns the rewritten message, or `None`
/// when `msg` is not a `tools/list` result (left untouched).
pub fn filter(msg: &Value, allowed: &mut dyn FnMut(&Value) -> bool) -> Option<Value> {
    let tools = msg.get("result")?.get("tools")?.as_array()?;
    let kept: Vec<Value> = tools.iter().filter(|t| allowed(t)).cloned().collect();
    let mut out = msg.clone();
    if let Some(slot) = out.pointer_mut("/result/tools") {
        *slot = Value::Array(kept);
    }
    Some(out)
}

/// A 2025-11-25 upstream's result as a 2026-07-28 client needs it: with `resultType`.
/// `None` for anything else (notifications, errors, results that already carry it).
pub fn mark_complete(msg: &Value) -> Option<Value> {
    let result = msg.get("result")?.as_object()?;
    if result.contains_key("resultType") {
        return None;
    }
    let mut out = msg.clone();
    out["result"]["resultType"] = Value::String("complete".into());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_only_allowed_tools_and_other_fields() {
        let msg = json!({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}],"nextCursor":"c"}});
        let out = filter(&msg, &mut |t| t["name"] == "b").unwrap();
        assert_eq!(out["result"]["tools"], json!([{"name":"b"}]));
        assert_eq!(out["result"]["nextCursor"], "c");
        assert!(filter(&json!({"result":{}}), &mut |_| true).is_none());
    }

    #[test]
    fn legacy_results_are_marked_complete_once() {
        let out = mark_complete(&json!({"id":1,"result":{"content":[]}})).unwrap();
        assert_eq!(out["result"]["resultType"], "complete");
        assert!(mark_complete(&out).is_none());
        assert!(mark_complete(&json!({"method":"notifications/progress"})).is_none());
    }
}
