//! Confirmation holds: a call that needs confirmation is parked behind a single-use action
//! token. The token is random (≥ 24 bytes, URL-safe), stored only as its SHA-256, and bound to
//! subject, tenant, tool and the canonical hash of the arguments.
//!
//! Held inputs are bounded: per hold (`holds.max_input_bytes`), per caller and in total
//! (`holds.max_bytes_per_subject`, `holds.max_bytes_total`, checked by the state store in the
//! same step that stores the hold). Past a bound the call is refused with 413 and nothing is
//! held.

pub mod notify;
mod view;
mod watch;

pub use view::{agent_of, shown_arguments, HoldView};
pub use watch::HoldEvents;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand::RngCore;
use serde_json::{json, Value};

use crate::auth::Principal;
use crate::canonical;
use crate::config::HoldsConfig;
use crate::error::GatewayError;
use crate::state::{Hold, HoldConsume, HoldPut, HoldQuota, Redeemer, StateStore};

/// A freshly created hold, as the caller is told about it.
pub struct IssuedHold {
    pub action_token: String,
    pub expires_at: String,
    pub confirm_url: String,
    pub hold_id: String,
}

impl IssuedHold {
    /// The JSON-RPC error `data` (and REST 202 body fields).
    pub fn data(&self, corr_id: &str) -> Value {
        json!({
            "code": "CONFIRMATION_REQUIRED",
            "message": "this call needs confirmation: re-send it with the action token",
            "corr_id": corr_id,
            "requires_confirmation": true,
            "action_token": self.action_token,
            "expires_at": self.expires_at,
            "confirm_url": self.confirm_url,
        })
    }
}

/// The hold id of `action_token`: the first 16 hex digits of its SHA-256 (what the admin
/// API and the console name a hold by).
pub fn hold_id(action_token: &str) -> String {
    id_of_hash(&canonical::sha256_hex(action_token.as_bytes()))
}

/// The hold id within a token's SHA-256 hex.
fn id_of_hash(token_hash: &str) -> String {
    token_hash.get(..16).unwrap_or(token_hash).to_string()
}

/// SHA-256 over the things a confirmation must match.
pub fn binding(principal: &Principal, tool_id: &str, args_hash: &str) -> String {
    canonical::hash(&json!([principal.sub, principal.tenant, tool_id, args_hash]))
}

/// What a new hold is for.
pub struct HoldSpec<'a> {
    pub tool_id: &'a str,
    pub args_hash: &'a str,
    /// The input (canonical JSON) kept for a confirm that omits it.
    pub input: Option<String>,
    /// Approver mode: an approval is required before the caller's confirm.
    pub needs_approval: bool,
    /// What the approvals console shows.
    pub view: HoldView,
}

/// Creates and stores a hold for this call (no stored input, no approval needed).
pub async fn issue(
    cfg: &HoldsConfig,
    state: &dyn StateStore,
    principal: &Principal,
    tool_id: &str,
    args_hash: &str,
) -> Result<(IssuedHold, Hold), GatewayError> {
    let spec = HoldSpec { tool_id, args_hash, input: None, needs_approval: false, view: HoldView::default() };
    issue_with(cfg, state, principal, spec).await
}

/// Creates and stores a hold as `spec` says: the caller is told the [`IssuedHold`]; the
/// stored [`Hold`] (without its token) is returned for notifications.
pub async fn issue_with(
    cfg: &HoldsConfig,
    state: &dyn StateStore,
    principal: &Principal,
    spec: HoldSpec<'_>,
) -> Result<(IssuedHold, Hold), GatewayError> {
    let HoldSpec { tool_id, args_hash, input, needs_approval, view } = spec;
    // Refused before anything is stored: a hold whose input cannot be kept cannot be confirmed.
    if let Some(len) = input.as_ref().map(String::len).filter(|len| *len > cfg.max_input_bytes) {
        return Err(GatewayError::QuotaExceeded {
            message: format!(
                "this call needs confirmation, but its input ({len} bytes) is larger than a hold keeps \
                 (holds.max_input_bytes); nothing was held"
            ),
            limit: cfg.max_input_bytes,
        });
    }
    let mut raw = vec![0u8; cfg.token_bytes.max(24)];
    rand::thread_rng().fill_bytes(&mut raw);
    let token = URL_SAFE_NO_PAD.encode(&raw);
    let token_hash = canonical::sha256_hex(token.as_bytes());
    let expires = chrono::Utc::now() + chrono::Duration::seconds(cfg.ttl_seconds as i64);
    let hold = Hold {
        id: id_of_hash(&token_hash),
        sub: principal.sub.clone(),
        tenant: principal.tenant.clone(),
        tool_id: tool_id.to_string(),
        args_hash: args_hash.to_string(),
        binding: binding(principal, tool_id, args_hash),
        expires_at: expires.timestamp(),
        input,
        needs_approval,
        approved_by: None,
        view,
    };
    let hold_id = hold.id.clone();
    let stored = Hold { input: None, binding: String::new(), ..hold.clone() };
    let quota = HoldQuota { per_subject_bytes: cfg.max_bytes_per_subject, total_bytes: cfg.max_bytes_total };
    let put = state
        .put_hold(&token_hash, hold, quota)
        .await
        .map_err(|e| GatewayError::Unavailable { message: format!("hold store unavailable: {}", e.0) })?;
    let (message, limit) = match put {
        HoldPut::Stored => (None, 0),
        HoldPut::SubjectFull => (
            Some(
                "this call needs confirmation, but the caller's pending holds fill its share \
                  (holds.max_bytes_per_subject); confirm or let some expire; nothing was held",
            ),
            cfg.max_bytes_per_subject,
        ),
        HoldPut::TotalFull => (
            Some(
                "this call needs confirmation, but pending holds fill the gateway's hold store \
                  (holds.max_bytes_total); nothing was held",
            ),
            cfg.max_bytes_total,
        ),
    };
    if let Some(message) = message {
        return Err(GatewayError::QuotaExceeded { message: message.into(), limit });
    }
    let issued = IssuedHold {
        action_token: token,
        expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        confirm_url: format!("/tools/{tool_id}/confirm"),
        hold_id,
    };
    Ok((issued, stored))
}

/// Consumes `action_token` for this exact call. Exactly one concurrent caller succeeds.
pub async fn redeem(
    state: &dyn StateStore,
    principal: &Principal,
    tool_id: &str,
    args_hash: &str,
    action_token: &str,
) -> Result<Hold, GatewayError> {
    let b = binding(principal, tool_id, args_hash);
    redeem_as(state, action_token, Redeemer::Caller { binding: &b }).await
}

/// Consumes `action_token` for `who` (the caller, or an approver in approver mode).
pub async fn redeem_as(state: &dyn StateStore, action_token: &str, who: Redeemer<'_>) -> Result<Hold, GatewayError> {
    let token_hash = canonical::sha256_hex(action_token.as_bytes());
    let outcome = state
        .consume_hold(&token_hash, who)
        .await
        .map_err(|e| GatewayError::Unavailable { message: format!("hold store unavailable: {}", e.0) })?;
    match outcome {
        HoldConsume::Consumed(h) => Ok(*h),
        HoldConsume::NotFound => Err(GatewayError::Conflict { message: "action token unknown or already used".into() }),
        HoldConsume::Expired => Err(GatewayError::Conflict { message: "action token expired".into() }),
        HoldConsume::Mismatch => Err(GatewayError::Forbidden {
            message: "action token was issued for another caller, tool or arguments".into(),
            reasons: vec!["action_token_mismatch".into()],
        }),
        HoldConsume::AwaitingApproval => Err(GatewayError::Forbidden {
            message: "this call needs an approver's approval first".into(),
            reasons: vec!["awaiting_approval".into()],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::memory::MemoryState;

    fn who(sub: &str) -> Principal {
        Principal { sub: sub.into(), ..Principal::anonymous() }
    }

    #[tokio::test]
    async fn issue_then_redeem_once_for_the_same_call_only() {
        let s = MemoryState::default();
        let cfg = HoldsConfig {
            ttl_seconds: 60,
            token_bytes: 24,
            max_input_bytes: 1 << 20,
            max_bytes_per_subject: 1 << 20,
            max_bytes_total: 1 << 20,
            notify: Default::default(),
        };
        let (h, _) = issue(&cfg, &s, &who("a"), "mcp:demo:rm", "h1").await.unwrap();
        assert!(h.action_token.len() >= 32);
        assert_eq!(hold_id(&h.action_token), h.hold_id);
        let err = redeem(&s, &who("b"), "mcp:demo:rm", "h1", &h.action_token).await.unwrap_err();
        assert_eq!(err.status(), 403);
        let err = redeem(&s, &who("a"), "mcp:demo:rm", "h2", &h.action_token).await.unwrap_err();
        assert_eq!(err.status(), 403);
        redeem(&s, &who("a"), "mcp:demo:rm", "h1", &h.action_token).await.unwrap();
        let err = redeem(&s, &who("a"), "mcp:demo:rm", "h1", &h.action_token).await.unwrap_err();
        assert_eq!(err.status(), 409);
    }

    #[tokio::test]
    async fn inputs_over_a_bound_are_refused_with_413_and_nothing_is_held() {
        let spec = |input: Option<String>| HoldSpec {
            tool_id: "t",
            args_hash: "h",
            input,
            needs_approval: false,
            view: HoldView::default(),
        };
        let s = MemoryState::default();
        let cfg = HoldsConfig {
            ttl_seconds: 60,
            token_bytes: 24,
            max_input_bytes: 100,
            max_bytes_per_subject: 2000,
            max_bytes_total: 1 << 20,
            notify: Default::default(),
        };
        let input = |n: usize| Some("x".repeat(n));
        let err = issue_with(&cfg, &s, &who("a"), spec(input(101))).await.err().unwrap();
        assert_eq!((err.status(), err.code()), (413, "PAYLOAD_TOO_LARGE"));
        assert_eq!(err.shape("c")["details"]["limit_bytes"], 100);
        assert_eq!(s.pending_holds().await.unwrap(), 0);
        let mut held = 0;
        let refused = loop {
            match issue_with(&cfg, &s, &who("a"), spec(input(100))).await {
                Ok(_) => held += 1,
                Err(e) => break e,
            }
            assert!(held < 100, "the per-subject bound never applied");
        };
        assert_eq!(refused.status(), 413);
        assert!(refused.message().contains("max_bytes_per_subject"), "{}", refused.message());
        assert_eq!(s.pending_holds().await.unwrap(), held);
        issue_with(&cfg, &s, &who("b"), spec(input(100))).await.unwrap();
    }
}
