//! MRTR `requestState` for confirmation holds (2026-07-28 clients).
//!
//! The state is attacker-controlled input that comes back on the retry, so it is sealed with
//! AES-256-GCM: the client can neither read the action token inside nor forge a state. The
//! seal binds the hold to subject, tenant, tool and argument hash and expires with the hold;
//! single use is enforced server-side by the hold store (the sealed action token is consumed
//! atomically), as the spec requires for one-time redemptions.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// Domain separation: a state sealed for another purpose never opens as a hold.
const AAD: &[u8] = b"fastmcp/mrtr-hold/v1";

/// Marks the gateway's own states. An upstream server's MRTR `requestState` (without it)
/// passes through untouched to the server that issued it.
pub const PREFIX: &str = "fastmcp1.";

/// Is `state` one the gateway issued (as opposed to an upstream server's)?
pub fn is_ours(state: &str) -> bool {
    state.starts_with(PREFIX)
}

/// What a sealed hold state carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoldState {
    /// The hold's action token (consumed on redemption).
    pub action_token: String,
    pub sub: String,
    pub tenant: String,
    pub tool_id: String,
    pub args_hash: String,
    /// Unix seconds.
    pub exp: i64,
}

/// Why a state was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StateError {
    #[error("requestState is not one this gateway issued")]
    Invalid,
    #[error("requestState expired")]
    Expired,
    #[error("requestState was issued for another caller, tool or arguments")]
    Mismatch,
}

fn aes_key(raw: &[u8]) -> Result<LessSafeKey, String> {
    let unbound = UnboundKey::new(&AES_256_GCM, raw).map_err(|_| "unusable key".to_string())?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals and opens hold states with one AES-256-GCM key.
pub struct StateSealer {
    key: parking_lot::RwLock<std::sync::Arc<LessSafeKey>>,
}

impl StateSealer {
    /// `key_b64` is a base64 32-byte key; empty means a random key for this process.
    pub fn new(key_b64: &str) -> Result<StateSealer, String> {
        let raw = if key_b64.is_empty() {
            let mut k = vec![0u8; 32];
            rand::thread_rng().fill_bytes(&mut k);
            k
        } else {
            let k = STANDARD
                .decode(key_b64.trim())
                .or_else(|_| URL_SAFE_NO_PAD.decode(key_b64.trim()))
                .map_err(|_| "not base64".to_string())?;
            if k.len() != 32 {
                return Err(format!("must decode to 32 bytes, got {}", k.len()));
            }
            k
        };
        Ok(StateSealer { key: parking_lot::RwLock::new(std::sync::Arc::new(aes_key(&raw)?)) })
    }

    /// Replaces the key with `raw` (32 bytes): the deployment's shared key, once it is known.
    /// States sealed with the old key stop opening (the client confirms again).
    pub fn rekey(&self, raw: &[u8]) -> Result<(), String> {
        if raw.len() != 32 {
            return Err(format!("must be 32 bytes, got {}", raw.len()));
        }
        *self.key.write() = std::sync::Arc::new(aes_key(raw)?);
        Ok(())
    }

    fn current(&self) -> std::sync::Arc<LessSafeKey> {
        self.key.read().clone()
    }

    /// The opaque `requestState` string for `state`.
    pub fn seal(&self, state: &HoldState) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let mut buf = serde_json::to_vec(state).map_err(|e| e.to_string())?;
        self.current()
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(AAD), &mut buf)
            .map_err(|_| "seal failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out)))
    }

    /// Opens `sealed` and checks it belongs to this caller and call and has not expired.
    pub fn open(
        &self,
        sealed: &str,
        sub: &str,
        tenant: &str,
        tool_id: &str,
        args_hash: &str,
        now: i64,
    ) -> Result<HoldState, StateError> {
        let Some(sealed) = sealed.strip_prefix(PREFIX).filter(|s| s.len() <= 4096) else {
            return Err(StateError::Invalid);
        };
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| StateError::Invalid)?;
        if raw.len() < NONCE_LEN + 16 {
            return Err(StateError::Invalid);
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StateError::Invalid)?;
        let mut buf = rest.to_vec();
        let key = self.current();
        let plain = key.open_in_place(nonce, Aad::from(AAD), &mut buf).map_err(|_| StateError::Invalid)?;
        let state: HoldState = serde_json::from_slice(plain).map_err(|_| StateError::Invalid)?;
        if state.exp < now {
            return Err(StateError::Expired);
        }
        if state.sub != sub || state.tenant != tenant || state.tool_id != tool_id || state.args_hash != args_hash {
            return Err(StateError::Mismatch);
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> HoldState {
        HoldState {
            action_token: "tok".into(),
            sub: "a".into(),
            tenant: "t".into(),
            tool_id: "mcp:demo:rm".into(),
            args_hash: "h".into(),
            exp: 100,
        }
    }

    #[test]
    fn round_trip_binds_caller_call_and_expiry() {
        let s = StateSealer::new("").unwrap();
        let sealed = s.seal(&state()).unwrap();
        assert!(!sealed.contains("tok"));
        assert_eq!(s.open(&sealed, "a", "t", "mcp:demo:rm", "h", 50).unwrap(), state());
        assert_eq!(s.open(&sealed, "b", "t", "mcp:demo:rm", "h", 50), Err(StateError::Mismatch));
        assert_eq!(s.open(&sealed, "a", "t", "mcp:demo:rm", "other", 50), Err(StateError::Mismatch));
        assert_eq!(s.open(&sealed, "a", "t", "mcp:demo:rm", "h", 101), Err(StateError::Expired));
    }

    #[test]
    fn tampered_or_foreign_states_are_invalid() {
        let s = StateSealer::new("").unwrap();
        let other = StateSealer::new("").unwrap();
        let sealed = s.seal(&state()).unwrap();
        assert_eq!(other.open(&sealed, "a", "t", "mcp:demo:rm", "h", 0), Err(StateError::Invalid));
        let mut bytes = URL_SAFE_NO_PAD.decode(sealed.strip_prefix(PREFIX).unwrap()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
        assert!(is_ours(&sealed) && !is_ours("upstream-state"));
        assert_eq!(s.open(&tampered, "a", "t", "mcp:demo:rm", "h", 0), Err(StateError::Invalid));
        assert_eq!(s.open("garbage!", "a", "t", "mcp:demo:rm", "h", 0), Err(StateError::Invalid));
    }

    #[test]
    fn configured_key_is_shared_between_instances() {
        let key = STANDARD.encode([7u8; 32]);
        let a = StateSealer::new(&key).unwrap();
        let b = StateSealer::new(&key).unwrap();
        let sealed = a.seal(&state()).unwrap();
        assert!(b.open(&sealed, "a", "t", "mcp:demo:rm", "h", 0).is_ok());
        assert!(StateSealer::new("c2hvcnQ=").is_err());
    }
}
