//! Gateway-minted JWTs: the [`Signer`] and the claims of `gateway_jwt` credentials and of
//! token-exchange subject tokens.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::secret::Secret;

/// The gateway's signing key for minted JWTs. `Debug` shows the algorithm and kid only.
pub struct Signer {
    key: EncodingKey,
    alg: Algorithm,
    kid: String,
}

impl Signer {
    /// A signer for `alg` with `key`, advertising `kid` in the JWT header (empty: no `kid`).
    /// Fails when the key does not fit the algorithm (checked by signing a probe token).
    pub fn new(key: EncodingKey, alg: Algorithm, kid: impl Into<String>) -> Result<Signer, String> {
        let signer = Signer { key, alg, kid: kid.into() };
        let probe = serde_json::json!({ "probe": true });
        jsonwebtoken::encode(&signer.header(), &probe, &signer.key)
            .map_err(|e| format!("signing key does not work with {:?}: {e}", signer.alg))?;
        Ok(signer)
    }

    /// The signing algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id put in the JWT header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    fn header(&self) -> Header {
        let mut header = Header::new(self.alg);
        if !self.kid.is_empty() {
            header.kid = Some(self.kid.clone());
        }
        header
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// Claims of a minted JWT.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    tenant: &'a str,
    scopes: &'a [String],
    iat: u64,
    exp: u64,
    jti: String,
}

/// What to put in a minted JWT.
pub(crate) struct MintRequest<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub sub: &'a str,
    pub tenant: &'a str,
    pub scopes: &'a [String],
    pub ttl_seconds: u64,
}

/// Mints a JWT issued at `now`; returns it with its `exp` time.
pub(crate) fn mint(signer: &Signer, req: &MintRequest<'_>, now: SystemTime) -> Result<(Secret, SystemTime), String> {
    let iat = now.duration_since(UNIX_EPOCH).map_err(|_| "clock is before 1970".to_string())?.as_secs();
    let exp = iat.saturating_add(req.ttl_seconds);
    let claims = Claims {
        iss: req.issuer,
        aud: req.audience,
        sub: req.sub,
        tenant: req.tenant,
        scopes: req.scopes,
        iat,
        exp,
        jti: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
    };
    let token = jsonwebtoken::encode(&signer.header(), &claims, &signer.key).map_err(|e| e.to_string())?;
    Ok((Secret::new(token), UNIX_EPOCH + std::time::Duration::from_secs(exp)))
}
