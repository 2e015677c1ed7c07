//! The credential broker: per provider, obtains and caches the credential the gateway injects
//! upstream, so the agent's own JWT never leaves the gateway.
//!
//! Sources ([`CredentialConfig`]): a static secret, OAuth 2.0 client credentials, a refresh
//! token, RFC 8693 token exchange of a gateway-minted subject JWT, or a JWT minted by the
//! gateway itself. Credentials are cached per provider + tenant + scopes (+ subject where the
//! token is per principal) and refreshed single-flight ([`cache`]).
//!
//! Secrets never appear in `Debug` output, errors, logs or [`Credential::meta`]; nothing here
//! implements `Serialize` over a secret. The broker is internal: no route hands tokens out.

pub mod cache;
pub mod config;
pub mod error;
pub mod mcp_header;
pub mod mint;
pub mod oauth;
pub mod secret;
mod sources;

#[cfg(test)]
mod test_fake_server;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::json;

pub use cache::DEFAULT_TTL;
pub use config::{
    ClientAuth, ClientCredentialsConfig, CredentialConfig, GatewayJwtConfig, MintedSubjectConfig, RefreshTokenConfig,
    StaticConfig, StaticSubjectConfig, SubjectTokenConfig, TokenExchangeConfig,
};
pub use error::BrokerError;
pub use mcp_header::credential;
pub use mint::Signer;
pub use secret::Secret;

use cache::{Cache, CacheKey};
use sources::Source;

/// Broker tuning.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Refresh a cached credential this many seconds before it expires (default 60; never
    /// earlier than half the token's lifetime).
    pub refresh_margin_secs: u64,
    /// Whole-request timeout of a token endpoint call (default 10 s).
    pub http_timeout: Duration,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions { refresh_margin_secs: 60, http_timeout: Duration::from_secs(10) }
    }
}

/// Who a credential is obtained for: the calling principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The principal's subject (`sub` of the agent's verified JWT).
    pub sub: String,
    /// The principal's tenant.
    pub tenant: String,
}

impl Caller {
    /// A caller.
    pub fn new(sub: impl Into<String>, tenant: impl Into<String>) -> Caller {
        Caller { sub: sub.into(), tenant: tenant.into() }
    }
}

/// A credential to inject upstream. `Debug` hides the secret; there is no `Serialize`.
#[derive(Clone)]
pub struct Credential {
    secret: Secret,
    /// The token type, e.g. `Bearer` (normalised from `bearer`).
    pub token_type: String,
    /// When the credential expires, if known.
    pub expires_at: Option<SystemTime>,
    /// The audience the credential was issued for, if known.
    pub audience: Option<String>,
}

impl Credential {
    /// A credential (the broker builds these; public for tests and custom sources).
    pub fn new(secret: Secret, token_type: impl Into<String>, expires_at: Option<SystemTime>) -> Credential {
        Credential { secret, token_type: token_type.into(), expires_at, audience: None }
    }

    /// The secret value, for the header or query parameter that carries it upstream.
    pub fn secret(&self) -> &str {
        self.secret.expose()
    }

    /// `{"token_type", "expires_in", "audience"}` — safe to show an agent; no secret.
    /// `expires_in` is whole seconds from now (`null` when unknown, 0 when past).
    pub fn meta(&self) -> serde_json::Value {
        let expires_in =
            self.expires_at.map(|exp| exp.duration_since(SystemTime::now()).map(|d| d.as_secs()).unwrap_or(0));
        json!({ "token_type": self.token_type, "expires_in": expires_in, "audience": self.audience })
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("secret", &self.secret)
            .field("token_type", &self.token_type)
            .field("expires_at", &self.expires_at)
            .field("audience", &self.audience)
            .finish()
    }
}

type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The credential broker. Built once at startup; `Send + Sync`, share it behind an `Arc`.
pub struct Broker {
    providers: BTreeMap<String, Source>,
    signer: Option<Arc<Signer>>,
    margin: Duration,
    http: ureq::Agent,
    cache: Cache,
    clock: Clock,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: BTreeMap<&str, &str> = self.providers.iter().map(|(k, v)| (k.as_str(), v.kind())).collect();
        f.debug_struct("Broker").field("providers", &kinds).field("signer", &self.signer).finish_non_exhaustive()
    }
}

impl Broker {
    /// Validates the configuration and resolves every secret (env vars, files). `signer` is
    /// required by `gateway_jwt` providers and minted token-exchange subjects. Errors name the
    /// provider and the field, never a secret value.
    pub fn new(
        providers: BTreeMap<String, CredentialConfig>,
        signer: Option<Signer>,
        opts: BrokerOptions,
    ) -> Result<Broker, BrokerError> {
        let mut sources = BTreeMap::new();
        for (name, cfg) in &providers {
            if name.trim().is_empty() {
                return Err(BrokerError::config(name, "provider name is empty"));
            }
            let source = Source::from_config(name, cfg, signer.is_some())?;
            tracing::debug!(provider = %name, kind = cfg.kind(), "credential provider configured");
            sources.insert(name.clone(), source);
        }
        if opts.http_timeout.is_zero() {
            return Err(BrokerError::config("*", "http_timeout must be positive"));
        }
        Ok(Broker {
            providers: sources,
            signer: signer.map(Arc::new),
            margin: Duration::from_secs(opts.refresh_margin_secs),
            http: oauth::agent(opts.http_timeout),
            cache: Cache::default(),
            clock: Arc::new(SystemTime::now),
        })
    }

    /// Replaces the clock (tests).
    #[cfg(test)]
    pub(crate) fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Broker {
        self.clock = Arc::new(clock);
        self
    }

    /// The configured provider names.
    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// The credential for `provider` acting for `who` with `scopes` (provider scopes; empty
    /// means the provider's configured `scopes`). Served from the cache when fresh; otherwise
    /// one caller per cache key fetches while the others wait for its result.
    pub async fn credential(&self, provider: &str, who: &Caller, scopes: &[String]) -> Result<Credential, BrokerError> {
        let source = self
            .providers
            .get(provider)
            .ok_or_else(|| BrokerError::UnknownProvider { provider: provider.to_string() })?;
        if let Some(credential) = source.fixed() {
            return Ok(credential);
        }
        let scopes = source.effective_scopes(scopes);
        let key = CacheKey {
            provider: provider.to_string(),
            tenant: who.tenant.clone(),
            sub: source.per_principal().then(|| who.sub.clone()),
            scopes,
        };
        let ctx =
            sources::FetchContext { provider, who, scopes: &key.scopes, signer: self.signer.clone(), http: &self.http };
        self.cache.get_or_fetch(&key, &*self.clock, self.margin, |now| source.fetch(ctx, now)).await
    }
}
