//! Authentication: bearer JWT → [`Principal`].
//!
//! `iss`, `aud` and `exp` are required, `nbf` honoured, leeway configurable; the algorithm is
//! pinned by the key. Verified tokens are cached by their SHA-256 until `exp`, so a repeated
//! token costs a hash and a map lookup instead of a signature check. Unknown kids trigger a
//! JWKS refetch at most once per configured interval (single-flight).

pub mod devkeys;
pub mod keys;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Algorithm, Validation};
use parking_lot::{Mutex, RwLock};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::AuthConfig;
use crate::error::GatewayError;
use keys::{KeySet, VerifyKey};

/// The authenticated caller, as the policy sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub sub: String,
    pub tenant: String,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// All JWT claims (for ABAC rules).
    pub claims: Value,
    /// `exp` in Unix seconds (0 for the anonymous principal).
    pub exp: i64,
}

impl Principal {
    /// The caller when authentication is disabled (benchmarks only).
    pub fn anonymous() -> Principal {
        Principal {
            sub: "anonymous".into(),
            tenant: "public".into(),
            roles: vec![],
            scopes: vec![],
            claims: Value::Object(Default::default()),
            exp: 0,
        }
    }

    fn from_claims(claims: Value) -> Result<Principal, GatewayError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| GatewayError::unauthorized("missing_claim", "token has no sub"))?
            .to_string();
        let tenant = claims.get("tenant").and_then(Value::as_str).unwrap_or("public").to_string();
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(String::from)).collect(),
                Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
                _ => Vec::new(),
            }
        };
        let roles = strings(claims.get("roles"));
        let mut scopes = strings(claims.get("scopes"));
        scopes.extend(strings(claims.get("scope")));
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        Ok(Principal { sub, tenant, roles, scopes, claims, exp })
    }
}

/// Where verification keys come from.
pub enum KeySource {
    /// Fixed keys (dev key or JWKS file).
    Static,
    /// A JWKS URL, refetched on unknown kids.
    Url(String),
}

/// Verifies bearer tokens.
pub struct Authenticator {
    cfg: AuthConfig,
    default_alg: Algorithm,
    keys: RwLock<Arc<KeySet>>,
    source: KeySource,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    cache: Mutex<HashMap<[u8; 32], Arc<Principal>>>,
}

impl Authenticator {
    pub fn new(cfg: AuthConfig, keys: KeySet, source: KeySource) -> Authenticator {
        let default_alg = parse_alg(&cfg.algorithm);
        Authenticator {
            cfg,
            default_alg,
            keys: RwLock::new(Arc::new(keys)),
            source,
            last_refresh: tokio::sync::Mutex::new(None),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies the `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&[u8]>) -> Result<Arc<Principal>, GatewayError> {
        let header = header.ok_or_else(|| GatewayError::unauthorized("missing", "missing bearer token"))?;
        let token = bearer_token(header)?;
        if token.len() > self.cfg.max_token_bytes {
            return Err(GatewayError::unauthorized("too_large", "token too large"));
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = chrono::Utc::now().timestamp();
        if let Some(p) = self.cache.lock().get(&digest) {
            if now <= p.exp.saturating_add(self.cfg.leeway_seconds as i64) {
                return Ok(p.clone());
            }
        }
        let principal = Arc::new(self.verify(token).await?);
        let mut cache = self.cache.lock();
        if cache.len() >= self.cfg.cache_entries {
            let leeway = self.cfg.leeway_seconds as i64;
            cache.retain(|_, p| now <= p.exp.saturating_add(leeway));
            if cache.len() >= self.cfg.cache_entries {
                cache.clear();
            }
        }
        if self.cfg.cache_entries > 0 {
            cache.insert(digest, principal.clone());
        }
        Ok(principal)
    }

    async fn verify(&self, token: &str) -> Result<Principal, GatewayError> {
        let header = decode_header(token).map_err(|e| map_jwt_error(e.kind()))?;
        let kid = header.kid.as_deref();
        let key = match self.key_for(kid) {
            Some(k) => k,
            None => {
                self.refresh_on_unknown_kid().await;
                self.key_for(kid).ok_or_else(|| GatewayError::unauthorized("unknown_kid", "unknown signing key"))?
            }
        };
        if header.alg != key.alg {
            return Err(GatewayError::unauthorized("bad_algorithm", "token algorithm does not match the key"));
        }
        let mut v = Validation::new(key.alg);
        v.leeway = self.cfg.leeway_seconds;
        v.validate_nbf = true;
        v.validate_exp = true;
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = decode::<Value>(token, &key.key, &v).map_err(|e| map_jwt_error(e.kind()))?;
        Principal::from_claims(data.claims)
    }

    fn key_for(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        self.keys.read().get(kid)
    }

    /// Refetches the JWKS if it comes from a URL and the last refetch is old enough.
    async fn refresh_on_unknown_kid(&self) {
        let KeySource::Url(url) = &self.source else {
            return;
        };
        let mut last = self.last_refresh.lock().await;
        let min = Duration::from_secs(self.cfg.jwks_refresh_min_interval_seconds);
        if last.is_some_and(|t| t.elapsed() < min) {
            return;
        }
        *last = Some(Instant::now());
        match fetch_jwks(url.clone(), self.default_alg).await {
            Ok(set) => *self.keys.write() = Arc::new(set),
            Err(e) => tracing::warn!(error = %e, "JWKS refetch failed; keeping the old keys"),
        }
    }

    /// Number of keys currently loaded (readiness).
    pub fn key_count(&self) -> usize {
        self.keys.read().len()
    }

    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }
}

/// Fetches and parses a JWKS over HTTP(S) off the async runtime; HTTPS is verified against
/// the gateway's one root set ([`crate::upstream::tls`]).
pub async fn fetch_jwks(url: String, default_alg: Algorithm) -> Result<KeySet, String> {
    tokio::task::spawn_blocking(move || {
        let agent =
            crate::upstream::tls::ureq_agent_config().timeout_global(Some(Duration::from_secs(5))).build().new_agent();
        let body = agent
            .get(&url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let (set, skipped) = KeySet::from_jwks_json(&body, default_alg)?;
        for s in skipped {
            tracing::warn!(reason = %s, "JWKS key skipped");
        }
        Ok(set)
    })
    .await
    .map_err(|e| format!("JWKS fetch task: {e}"))?
}

pub fn parse_alg(name: &str) -> Algorithm {
    match name {
        "ES256" => Algorithm::ES256,
        _ => Algorithm::RS256,
    }
}

fn bearer_token(header: &[u8]) -> Result<&str, GatewayError> {
    let s = std::str::from_utf8(header)
        .map_err(|_| GatewayError::unauthorized("malformed", "malformed authorization header"))?;
    let (scheme, token) =
        s.trim().split_once(' ').ok_or_else(|| GatewayError::unauthorized("malformed", "expected a Bearer token"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(GatewayError::unauthorized("malformed", "expected a Bearer token"));
    }
    Ok(token.trim())
}

fn map_jwt_error(kind: &ErrorKind) -> GatewayError {
    let (reason, message) = match kind {
        ErrorKind::ExpiredSignature => ("expired", "token expired"),
        ErrorKind::ImmatureSignature => ("not_yet_valid", "token not yet valid"),
        ErrorKind::InvalidAudience => ("bad_audience", "token audience not accepted"),
        ErrorKind::InvalidIssuer => ("bad_issuer", "token issuer not accepted"),
        ErrorKind::InvalidSignature => ("bad_signature", "token signature invalid"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            ("bad_algorithm", "token algorithm not accepted")
        }
        ErrorKind::MissingRequiredClaim(_) => ("missing_claim", "token lacks a required claim"),
        _ => ("malformed", "malformed token"),
    };
    GatewayError::unauthorized(reason, message)
}

#[cfg(test)]
mod tests;
