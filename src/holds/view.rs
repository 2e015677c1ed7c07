//! What the approvals console shows of a hold: who asked, where, why, and the arguments as
//! they may be shown. Kept with the hold when it is made (so every instance of a shared
//! store shows the same), never used to decide anything.
//!
//! Redaction: the policy has no redaction obligation, so the arguments are shown with the
//! value of every field whose name looks like a secret (`secret`, `token`, `password`,
//! `passwd`, `credential`, `api_key`/`apikey`, `authorization`, `private_key`, `cookie`,
//! `session`; case-insensitive, at any depth) replaced by `sha256:<first 16 hex>` of its
//! canonical JSON — enough to compare two holds, not to read the value. Arguments over
//! [`SHOWN_MAX_BYTES`] are not shown at all.

use serde_json::{json, Map, Value};

use crate::auth::Principal;
use crate::canonical;

/// Largest shown arguments (canonical JSON bytes of the redacted form).
pub const SHOWN_MAX_BYTES: usize = 16 << 10;

/// Words that make a field name secret.
const SECRET_WORDS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "private_key",
    "privatekey",
    "cookie",
    "session",
];

/// The console's view of one hold.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HoldView {
    /// The calling client: the token's `client_id` or `azp` claim, else the client
    /// certificate's SPIFFE ID; empty when none says.
    #[serde(default)]
    pub agent: String,
    /// MCP server name, when the tool is an MCP server's.
    #[serde(default)]
    pub server: Option<String>,
    /// Provider (`mcp`, `database`, an HTTP provider id).
    #[serde(default)]
    pub provider: Option<String>,
    /// The rules that asked for confirmation (the decision's reasons).
    #[serde(default)]
    pub rules: Vec<String>,
    /// The tool's safety tags.
    #[serde(default)]
    pub risk_tags: Vec<String>,
    /// The arguments as shown (redacted), or `null` when too large.
    #[serde(default)]
    pub arguments: Value,
    /// Unix seconds when the hold was made.
    #[serde(default)]
    pub created_at: i64,
}

impl HoldView {
    /// Bytes this view adds to its hold's cost.
    pub fn cost(&self) -> usize {
        serde_json::to_string(self).map_or(0, |s| s.len())
    }
}

/// The agent named by `principal` (see [`HoldView::agent`]).
pub fn agent_of(principal: &Principal) -> String {
    ["client_id", "azp"]
        .iter()
        .find_map(|c| principal.claims.get(*c).and_then(Value::as_str).filter(|s| !s.is_empty()))
        .map(str::to_string)
        .or_else(|| principal.peer.as_ref().and_then(|p| p.spiffe_id().map(str::to_string)))
        .unwrap_or_default()
}

/// `arguments` with secret-looking fields hashed; `null` when the result is too large.
pub fn shown_arguments(arguments: &Value) -> Value {
    let shown = redact(arguments);
    if canonical::to_string(&shown).len() > SHOWN_MAX_BYTES {
        return Value::Null;
    }
    shown
}

fn redact(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let out: Map<String, Value> = m
                .iter()
                .map(|(k, v)| if is_secret_name(k) { (k.clone(), hashed(v)) } else { (k.clone(), redact(v)) })
                .collect();
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

fn hashed(v: &Value) -> Value {
    let h = canonical::hash(v);
    json!(format!("sha256:{}", h.get(..16).unwrap_or(&h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_named_fields_are_hashed_at_any_depth() {
        let args = json!({"item": "invoice-42", "apiKey": "k-123", "nested": [{"Password": "hunter2", "n": 1}],
                          "auth": {"access_token": {"v": "x"}}});
        let shown = shown_arguments(&args);
        assert_eq!(shown["item"], "invoice-42");
        assert_eq!(shown["nested"][0]["n"], 1);
        for v in [&shown["apiKey"], &shown["nested"][0]["Password"], &shown["auth"]["access_token"]] {
            let s = v.as_str().unwrap();
            assert!(s.starts_with("sha256:") && s.len() == 23, "{s}");
        }
        let text = shown.to_string();
        assert!(!text.contains("k-123") && !text.contains("hunter2"), "{text}");
        assert_eq!(shown_arguments(&json!({"apiKey": "k-123"})), json!({"apiKey": shown["apiKey"]}));
        assert_eq!(shown_arguments(&json!({"blob": "x".repeat(SHOWN_MAX_BYTES)})), Value::Null);
    }

    #[test]
    fn the_agent_is_the_client_claim() {
        let mut p = Principal::anonymous();
        assert_eq!(agent_of(&p), "");
        p.claims = json!({"azp": "cli-7"});
        assert_eq!(agent_of(&p), "cli-7");
        p.claims = json!({"azp": "cli-7", "client_id": "bot-1"});
        assert_eq!(agent_of(&p), "bot-1");
    }
}
