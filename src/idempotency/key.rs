//! Idempotency keys: the header value and the scoped storage key.

use sha2::{Digest, Sha256};

/// Longest accepted `Idempotency-Key` value.
pub const MAX_KEY_LEN: usize = 255;

/// The scope of one idempotency record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdemKey {
    /// Tenant of the caller.
    pub tenant: String,
    /// Subject (`sub`) of the caller.
    pub sub: String,
    /// The tool called.
    pub tool_id: String,
    /// The `Idempotency-Key` header value.
    pub key: String,
}

impl IdemKey {
    /// Builds a key scope.
    pub fn new(tenant: &str, sub: &str, tool_id: &str, key: &str) -> IdemKey {
        IdemKey { tenant: tenant.into(), sub: sub.into(), tool_id: tool_id.into(), key: key.into() }
    }

    /// `idem:v1:` and the hex SHA-256 of the length-prefixed fields: fields that contain
    /// separators cannot collide (`a:b` + `c` differs from `a` + `b:c`), and no caller data
    /// appears in the backend's key space.
    pub fn storage_key(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"fastmcp-idempotency-v1");
        for field in [&self.tenant, &self.sub, &self.tool_id, &self.key] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field.as_bytes());
        }
        format!("idem:v1:{}", hex::encode(h.finalize()))
    }
}

/// Checks an `Idempotency-Key` header value: 1 to 255 visible ASCII characters (no spaces or
/// control characters). A value in double quotes (the IETF draft's structured-field string)
/// is accepted and unquoted.
///
/// # Errors
/// A message for the 400/422 answer saying what is wrong.
pub fn parse_key(header: &str) -> Result<&str, String> {
    let key = match header.strip_prefix('"').and_then(|k| k.strip_suffix('"')) {
        Some(inner) => inner,
        None => header,
    };
    if key.is_empty() {
        return Err("Idempotency-Key must not be empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("Idempotency-Key must be at most {MAX_KEY_LEN} characters"));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("Idempotency-Key must be visible ASCII characters (no spaces)".into());
    }
    Ok(key)
}
