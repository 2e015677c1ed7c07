//! Authentication: bearer JWT → [`Principal`].
//!
//! `iss`, `aud` and `exp` are required, `nbf` honoured, an `iat` beyond the leeway in the
//! future refused, leeway configurable; the algorithm is pinned by the key. Verified tokens
//! are cached by their SHA-256 until `exp`, together with the fingerprint of the key that
//! verified them (`cache.rs`, `store.rs`): a repeated token costs a hash and a map lookup
//! instead of a signature check, and stops being accepted once its key leaves the key set.
//! A JWKS URL or file is reloaded periodically in the background (`refresh.rs`); an unknown
//! kid also triggers a JWKS refetch, at most once per configured interval (single-flight).

pub mod cache;
pub mod devkeys;
pub mod keys;
pub mod peer;
pub mod refresh;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::{decode, decode_header, errors::ErrorKind, Algorithm, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::AuthConfig;
use crate::error::GatewayError;
use cache::TokenCache;
use keys::{KeySet, VerifyKey};
pub use refresh::KeySource;
use refresh::Schedule;
use store::KeyStore;

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
    /// The verified client certificate of the connection the request came on (mTLS), set by
    /// the listener glue after the JWT is verified; `None` without one. `input.subject.peer`.
    pub peer: Option<Arc<peer::PeerIdentity>>,
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
            peer: None,
        }
    }

    /// This principal on a connection whose client certificate is `peer`: the token's
    /// principal (shared through the token cache) is never changed, a copy carries the peer.
    pub fn with_peer(self: &Arc<Principal>, peer: Option<Arc<peer::PeerIdentity>>) -> Arc<Principal> {
        match peer {
            None => self.clone(),
            Some(p) => Arc::new(Principal { peer: Some(p), ..(**self).clone() }),
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
        Ok(Principal { sub, tenant, roles, scopes, claims, exp, peer: None })
    }
}

/// Verifies bearer tokens.
pub struct Authenticator {
    cfg: AuthConfig,
    default_alg: Algorithm,
    /// Shared with the refresh thread (which holds it weakly).
    store: Arc<KeyStore>,
    source: KeySource,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl Authenticator {
    pub fn new(cfg: AuthConfig, keys: KeySet, source: KeySource) -> Authenticator {
        let default_alg = parse_alg(&cfg.algorithm);
        let cache = TokenCache::new(cfg.cache_entries, cfg.leeway_seconds as i64);
        Authenticator {
            default_alg,
            store: Arc::new(KeyStore::new(keys, cache)),
            source,
            last_refresh: tokio::sync::Mutex::new(None),
            cfg,
        }
    }

    /// Starts reloading the key source in the background (nothing for static keys): the
    /// first reload after `first`, then as `schedule` says.
    pub fn start_refresh(&self, schedule: Schedule, first: Duration) -> Result<(), String> {
        refresh::spawn(Arc::downgrade(&self.store), self.source.clone(), self.default_alg, schedule, first)
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
        if let Some(p) = self.store.cached(&digest, now) {
            return Ok(p);
        }
        let (principal, key, generation) = self.verify(token, now).await?;
        let principal = Arc::new(principal);
        self.store.remember(digest, principal.clone(), &key, generation, now);
        Ok(principal)
    }

    /// Verifies `token`; returns its principal, the key that verified it and the generation
    /// of the key set that key came from.
    async fn verify(&self, token: &str, now: i64) -> Result<(Principal, Arc<VerifyKey>, u64), GatewayError> {
        let header = decode_header(token).map_err(|e| map_jwt_error(e.kind()))?;
        let kid = header.kid.as_deref();
        let (key, generation) = match self.store.key_for(kid) {
            Some(k) => k,
            None => {
                self.refresh_on_unknown_kid().await;
                self.store
                    .key_for(kid)
                    .ok_or_else(|| GatewayError::unauthorized("unknown_kid", "unknown signing key"))?
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
        check_iat(&data.claims, now, self.cfg.leeway_seconds)?;
        Ok((Principal::from_claims(data.claims)?, key, generation))
    }

    /// Refetches the JWKS if it comes from a URL and the last refetch is old enough.
    async fn refresh_on_unknown_kid(&self) {
        if !matches!(self.source, KeySource::Url(_)) {
            return;
        }
        let mut last = self.last_refresh.lock().await;
        let min = Duration::from_secs(self.cfg.jwks_refresh_min_interval_seconds);
        if last.is_some_and(|t| t.elapsed() < min) {
            return;
        }
        *last = Some(Instant::now());
        let seq = self.store.begin_fetch();
        let (source, alg) = (self.source.clone(), self.default_alg);
        match tokio::task::spawn_blocking(move || source.load(alg)).await {
            Ok(Ok(Some(loaded))) => {
                self.store.install(seq, loaded.set);
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "JWKS refetch failed; keeping the old keys"),
            Err(e) => tracing::warn!(error = %e, "JWKS refetch task failed; keeping the old keys"),
        }
    }

    /// Number of keys currently loaded (readiness).
    pub fn key_count(&self) -> usize {
        self.store.key_count()
    }

    pub fn config(&self) -> &AuthConfig {
        &self.cfg
    }
}

/// Refuses a token issued more than `leeway` seconds in the future (a clock-skewed or
/// pre-minted token). `iat` is optional; when present it must be a NumericDate.
fn check_iat(claims: &Value, now: i64, leeway: u64) -> Result<(), GatewayError> {
    let Some(iat) = claims.get("iat") else {
        return Ok(());
    };
    let iat = iat.as_f64().ok_or_else(|| GatewayError::unauthorized("malformed", "token iat is not a number"))?;
    if iat > now.saturating_add(leeway as i64) as f64 {
        return Err(GatewayError::unauthorized("iat_future", "token issued in the future"));
    }
    Ok(())
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
