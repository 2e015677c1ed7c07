//! Rewriting upstream results byte-faithfully: a `tools/list` result filtered down to the
//! tools the caller may call, and a 2025-11-25 result given the `resultType` a 2026-07-28
//! client requires.
//!
//! The raw functions splice the upstream's bytes instead of re-serialising them: a kept
//! tool's bytes (its key order, whitespace, number spelling) and everything outside the
//! tools array reach the client exactly as the upstream sent them. Parsing goes through
//! serde_json's strict parser, so a message with duplicate `result` or `tools` keys (which
//! different clients would read differently) is an error, not a guess.

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Value;

/// Why a message could not be rewritten; the caller must not pass it on unchecked.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("not valid JSON-RPC JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a JSON-RPC batch: the gateway never sends one, so it cannot be an answer")]
    Batch,
    #[error("a parsed value lies outside its message")]
    Layout,
}

/// The top level of a message; other members are checked as JSON and skipped.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
}

/// The `tools` member of a result object.
#[derive(Deserialize)]
struct ToolsResult<'a> {
    #[serde(borrow, default)]
    tools: Option<&'a RawValue>,
}

/// Whether a result object has `resultType` (with any value, `null` included).
#[derive(Deserialize)]
struct ResultType {
    #[serde(rename = "resultType", default)]
    present: Seen,
}

#[derive(Default)]
struct Seen(bool);

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Seen(true))
    }
}

/// Keeps the tools for which `allowed(tool)` is true. `Ok(Some(bytes))`: `msg` with the other
/// tool objects (and their separators) cut out; `Ok(None)`: not a `tools/list` result
/// (a notification, an error, another result), to pass on as it is.
pub fn filter_raw(msg: &[u8], allowed: &mut dyn FnMut(&Value) -> bool) -> Result<Option<Vec<u8>>, FilterError> {
    let Some(result) = result_object(msg)? else {
        return Ok(None);
    };
    let tools = match serde_json::from_str::<ToolsResult>(result.get())?.tools {
        Some(t) if t.get().starts_with('[') => t,
        _ => return Ok(None),
    };
    let items: Vec<&RawValue> = serde_json::from_str(tools.get())?;
    let mut spans = Vec::with_capacity(items.len());
    let mut kept = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        spans.push(span(msg, item.get())?);
        if allowed(&serde_json::from_str::<Value>(item.get())?) {
            kept.push(i);
        }
    }
    let (Some(first), Some(last)) = (spans.first(), spans.last()) else {
        return Ok(Some(msg.to_vec())); // an empty list: nothing to hide
    };
    let mut out = Vec::with_capacity(msg.len());
    out.extend_from_slice(&msg[..first.0]);
    for (n, &k) in kept.iter().enumerate() {
        let (start, end) = spans[k];
        out.extend_from_slice(&msg[start..end]);
        if n + 1 < kept.len() {
            // The separator that followed this tool (`,` and its whitespace).
            out.extend_from_slice(&msg[end..spans[k + 1].0]);
        }
    }
    out.extend_from_slice(&msg[last.1..]);
    Ok(Some(out))
}

/// [`mark_complete`] on raw bytes: `"resultType":"complete"` inserted as the result object's
/// first member, every other byte unchanged. `Ok(None)` when there is nothing to mark.
pub fn mark_complete_raw(msg: &[u8]) -> Result<Option<Vec<u8>>, FilterError> {
    let Some(result) = result_object(msg)? else {
        return Ok(None);
    };
    if serde_json::from_str::<ResultType>(result.get())?.present.0 {
        return Ok(None);
    }
    let (start, _) = span(msg, result.get())?;
    let empty = result.get()[1..].trim_start().starts_with('}');
    let member: &[u8] = if empty { br#""resultType":"complete""# } else { br#""resultType":"complete","# };
    let mut out = Vec::with_capacity(msg.len() + member.len());
    out.extend_from_slice(&msg[..=start]);
    out.extend_from_slice(member);
    out.extend_from_slice(&msg[start + 1..]);
    Ok(Some(out))
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

/// The message's `result` when it is an object. The whole message is checked as JSON first:
/// `Ok(None)` only for valid messages without one.
fn result_object(msg: &[u8]) -> Result<Option<&RawValue>, FilterError> {
    match msg.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(b'[') => {
            serde_json::from_slice::<serde::de::IgnoredAny>(msg)?;
            return Err(FilterError::Batch);
        }
        _ => {
            serde_json::from_slice::<serde::de::IgnoredAny>(msg)?;
            return Ok(None);
        }
    }
    let envelope: Envelope = serde_json::from_slice(msg)?;
    Ok(envelope.result.filter(|r| r.get().starts_with('{')))
}

/// Where `inner` (borrowed from `outer` by the parser) lies in `outer`.
fn span(outer: &[u8], inner: &str) -> Result<(usize, usize), FilterError> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize).ok_or(FilterError::Layout)?;
    let end = start.checked_add(inner.len()).filter(|&e| e <= outer.len()).ok_or(FilterError::Layout)?;
    Ok((start, end))
}

#[cfg(test)]
mod tests;
