//! Broker configuration: one [`CredentialConfig`] per provider, keyed by provider name.
//!
//! Every secret can be given inline (`client_secret`), by environment variable name
//! (`client_secret_env`) or by file path (`client_secret_file`, content trimmed) — exactly one
//! of the three. Secrets are resolved once, when the [`Broker`](super::Broker) is built; a
//! missing variable or unreadable file fails startup with an error naming the provider and the
//! field, never the value.
//!
//! ```yaml
//! google_ads:
//!   kind: refresh_token
//!   token_url: https://oauth2.googleapis.com/token
//!   client_id: 1234.apps.googleusercontent.com
//!   client_secret_env: GOOGLE_ADS_CLIENT_SECRET
//!   refresh_token_file: /run/secrets/google_ads_refresh_token
//! billing:
//!   kind: client_credentials
//!   token_url: https://auth.example.com/oauth/token
//!   client_id: fastmcp
//!   client_secret_env: BILLING_CLIENT_SECRET
//!   scopes: [invoices.read]
//!   audience: https://billing.example.com
//!   allowed_urls: [https://billing.example.com/api]   # where this credential may be sent
//! ```
//!
//! Every kind takes `allowed_urls`: a credential is bound to its destinations, and the
//! request builder attaches it to nothing else (`providers::http::Destinations`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::BrokerError;
use super::secret::Secret;

/// How to obtain the credential for one provider. The `kind` field selects the variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialConfig {
    /// A fixed secret (an API key or a long-lived token).
    Static(StaticConfig),
    /// OAuth 2.0 client credentials grant (RFC 6749 §4.4).
    ClientCredentials(ClientCredentialsConfig),
    /// OAuth 2.0 refresh token grant (RFC 6749 §6), e.g. Google APIs.
    RefreshToken(RefreshTokenConfig),
    /// OAuth 2.0 token exchange (RFC 8693) of a gateway-minted JWT describing the caller.
    TokenExchange(TokenExchangeConfig),
    /// A short-lived JWT minted and signed by the gateway itself, for internal services.
    GatewayJwt(GatewayJwtConfig),
}

impl CredentialConfig {
    /// The `kind` name of this configuration (for logs).
    pub fn kind(&self) -> &'static str {
        match self {
            CredentialConfig::Static(_) => "static",
            CredentialConfig::ClientCredentials(_) => "client_credentials",
            CredentialConfig::RefreshToken(_) => "refresh_token",
            CredentialConfig::TokenExchange(_) => "token_exchange",
            CredentialConfig::GatewayJwt(_) => "gateway_jwt",
        }
    }

    /// The configured `allowed_urls`, if any (see [`StaticConfig::allowed_urls`]).
    pub fn allowed_urls(&self) -> Option<&[String]> {
        match self {
            CredentialConfig::Static(c) => c.allowed_urls.as_deref(),
            CredentialConfig::ClientCredentials(c) => c.allowed_urls.as_deref(),
            CredentialConfig::RefreshToken(c) => c.allowed_urls.as_deref(),
            CredentialConfig::TokenExchange(c) => c.allowed_urls.as_deref(),
            CredentialConfig::GatewayJwt(c) => c.allowed_urls.as_deref(),
        }
    }
}

/// `kind: static` — a fixed secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// The secret itself (prefer `secret_env` or `secret_file`).
    #[serde(default)]
    pub secret: Option<Secret>,
    /// Name of the environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// Path of a file holding the secret (surrounding whitespace is trimmed).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The token type reported with the credential (`Bearer` by default).
    #[serde(default = "default_token_type")]
    pub token_type: String,
    /// URL prefixes this credential may be sent to (`https://api.example.com/v2`: scheme,
    /// host, port and a path prefix matched at segment boundaries). Unset: the built-in
    /// provider's configured base URL (`pipedrive`, `ads`), and nowhere for any other
    /// provider. The request builder refuses to attach the credential to any other URL,
    /// whatever a manifest says.
    #[serde(default)]
    pub allowed_urls: Option<Vec<String>>,
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic: `Authorization: Basic base64(urlencode(id):urlencode(secret))`.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// `kind: client_credentials` — RFC 6749 §4.4.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCredentialsConfig {
    /// The token endpoint (`https://…`).
    pub token_url: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret (prefer `client_secret_env` or `client_secret_file`).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Name of the environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Path of a file holding the client secret (trimmed).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Client authentication: `basic` (default) or `post`.
    #[serde(default = "default_basic")]
    pub client_auth: ClientAuth,
    /// Scopes requested when the caller asks for none (sent space-separated as `scope`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Sent as the `audience` form parameter (Auth0-style APIs), when set.
    #[serde(default)]
    pub audience: Option<String>,
    /// URL prefixes this credential may be sent to (`https://api.example.com/v2`: scheme,
    /// host, port and a path prefix matched at segment boundaries). Unset: the built-in
    /// provider's configured base URL (`pipedrive`, `ads`), and nowhere for any other
    /// provider. The request builder refuses to attach the credential to any other URL,
    /// whatever a manifest says.
    #[serde(default)]
    pub allowed_urls: Option<Vec<String>>,
}

/// `kind: refresh_token` — RFC 6749 §6. A rotated refresh token (one returned by the token
/// endpoint) replaces the configured one in memory; it is not written back to the source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshTokenConfig {
    /// The token endpoint, e.g. `https://oauth2.googleapis.com/token`.
    pub token_url: String,
    /// The OAuth client id.
    pub client_id: String,
    /// The client secret (prefer `client_secret_env` or `client_secret_file`).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Name of the environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Path of a file holding the client secret (trimmed).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// The refresh token (prefer `refresh_token_env` or `refresh_token_file`).
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Name of the environment variable holding the refresh token.
    #[serde(default)]
    pub refresh_token_env: Option<String>,
    /// Path of a file holding the refresh token (trimmed).
    #[serde(default)]
    pub refresh_token_file: Option<PathBuf>,
    /// Client authentication: `post` (default; what Google expects) or `basic`.
    #[serde(default = "default_post")]
    pub client_auth: ClientAuth,
    /// Scopes sent as `scope` when the caller asks for none (empty: no `scope` parameter,
    /// i.e. the scopes of the original grant).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// URL prefixes this credential may be sent to (`https://api.example.com/v2`: scheme,
    /// host, port and a path prefix matched at segment boundaries). Unset: the built-in
    /// provider's configured base URL (`pipedrive`, `ads`), and nowhere for any other
    /// provider. The request builder refuses to attach the credential to any other URL,
    /// whatever a manifest says.
    #[serde(default)]
    pub allowed_urls: Option<Vec<String>>,
}

/// `kind: token_exchange` — RFC 8693. The subject token is never the agent's own JWT.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeConfig {
    /// The security token service's token endpoint.
    pub token_url: String,
    /// The OAuth client id of the gateway at the STS.
    pub client_id: String,
    /// The client secret (prefer `client_secret_env` or `client_secret_file`).
    #[serde(default)]
    pub client_secret: Option<Secret>,
    /// Name of the environment variable holding the client secret.
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Path of a file holding the client secret (trimmed).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Client authentication: `basic` (default) or `post`.
    #[serde(default = "default_basic")]
    pub client_auth: ClientAuth,
    /// The `audience` parameter: the service the issued token is for.
    pub audience: String,
    /// Scopes requested when the caller asks for none (sent as `scope`).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What to present as the `subject_token`.
    pub subject_token: SubjectTokenConfig,
    /// URL prefixes this credential may be sent to (`https://api.example.com/v2`: scheme,
    /// host, port and a path prefix matched at segment boundaries). Unset: the built-in
    /// provider's configured base URL (`pipedrive`, `ads`), and nowhere for any other
    /// provider. The request builder refuses to attach the credential to any other URL,
    /// whatever a manifest says.
    #[serde(default)]
    pub allowed_urls: Option<Vec<String>>,
}

/// The `subject_token` of a token exchange. `kind` selects the variant.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SubjectTokenConfig {
    /// A JWT minted per caller by the gateway (claims `iss`, `aud`, `sub`, `tenant`, `scopes`,
    /// `iat`, `exp`, `jti`), signed with the broker's signer. Issued tokens are cached per
    /// tenant + subject + scopes.
    Minted(MintedSubjectConfig),
    /// A fixed subject token (a service identity); issued tokens are cached per tenant + scopes.
    Static(StaticSubjectConfig),
}

/// `subject_token: { kind: minted }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintedSubjectConfig {
    /// `iss` of the minted JWT (the gateway's issuer name, trusted by the STS).
    pub issuer: String,
    /// `aud` of the minted JWT; defaults to the exchange's `token_url`.
    #[serde(default)]
    pub audience: Option<String>,
    /// Lifetime of the minted JWT in seconds (default 60; it is used once, immediately).
    #[serde(default = "default_subject_ttl")]
    pub ttl_seconds: u64,
}

/// `subject_token: { kind: static }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticSubjectConfig {
    /// The subject token (prefer `token_env` or `token_file`).
    #[serde(default)]
    pub token: Option<Secret>,
    /// Name of the environment variable holding the subject token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Path of a file holding the subject token (trimmed).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// `subject_token_type` (default `urn:ietf:params:oauth:token-type:jwt`).
    #[serde(default = "default_subject_token_type")]
    pub token_type: String,
}

/// `kind: gateway_jwt` — a JWT minted by the gateway per caller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayJwtConfig {
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim: the internal service that accepts the token.
    pub audience: String,
    /// Lifetime in seconds (default 300).
    #[serde(default = "default_gateway_ttl")]
    pub ttl_seconds: u64,
    /// URL prefixes this credential may be sent to (`https://api.example.com/v2`: scheme,
    /// host, port and a path prefix matched at segment boundaries). Unset: the built-in
    /// provider's configured base URL (`pipedrive`, `ads`), and nowhere for any other
    /// provider. The request builder refuses to attach the credential to any other URL,
    /// whatever a manifest says.
    #[serde(default)]
    pub allowed_urls: Option<Vec<String>>,
}

fn default_token_type() -> String {
    "Bearer".to_string()
}
fn default_basic() -> ClientAuth {
    ClientAuth::Basic
}
fn default_post() -> ClientAuth {
    ClientAuth::Post
}
fn default_subject_ttl() -> u64 {
    60
}
fn default_gateway_ttl() -> u64 {
    300
}
fn default_subject_token_type() -> String {
    super::oauth::TOKEN_TYPE_JWT.to_string()
}

/// Resolves the one configured source of a secret: inline, `…_env` or `…_file`.
pub(crate) fn resolve_secret(
    provider: &str,
    field: &str,
    inline: Option<&Secret>,
    env: Option<&str>,
    file: Option<&Path>,
) -> Result<Secret, BrokerError> {
    let given = usize::from(inline.is_some()) + usize::from(env.is_some()) + usize::from(file.is_some());
    if given != 1 {
        return Err(BrokerError::config(
            provider,
            format!("set exactly one of {field}, {field}_env, {field}_file (found {given})"),
        ));
    }
    let value = if let Some(s) = inline {
        s.clone()
    } else if let Some(name) = env {
        let value = std::env::var(name).map_err(|e| {
            let why = match e {
                std::env::VarError::NotPresent => "is not set",
                std::env::VarError::NotUnicode(_) => "is not valid UTF-8",
            };
            BrokerError::config(provider, format!("{field}_env: environment variable {name} {why}"))
        })?;
        Secret::new(value.trim())
    } else if let Some(path) = file {
        let value = std::fs::read_to_string(path).map_err(|e| {
            BrokerError::config(provider, format!("{field}_file: cannot read {}: {}", path.display(), e.kind()))
        })?;
        Secret::new(value.trim())
    } else {
        return Err(BrokerError::config(provider, format!("{field} is missing")));
    };
    if value.is_empty() {
        return Err(BrokerError::config(provider, format!("{field} is empty")));
    }
    Ok(value)
}

/// Checks a token endpoint URL: `http(s)://host…`, no user-info (credentials in URLs end up
/// in logs and error messages).
pub(crate) fn check_url(provider: &str, field: &str, url: &str) -> Result<(), BrokerError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| BrokerError::config(provider, format!("{field} must be an http(s) URL")))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Err(BrokerError::config(provider, format!("{field} has no host")));
    }
    // Also refuse `@` later in the path: `https://user:pa/ss@host` must not slip through.
    if rest.split(['?', '#']).next().unwrap_or_default().contains('@') {
        return Err(BrokerError::config(provider, format!("{field} must not contain credentials")));
    }
    if url.starts_with("http://") {
        tracing::warn!(provider, field, "token endpoint is plain http; client secrets travel unencrypted");
    }
    Ok(())
}

/// Checks a required, non-empty string field.
pub(crate) fn check_nonempty(provider: &str, field: &str, value: &str) -> Result<(), BrokerError> {
    if value.trim().is_empty() {
        return Err(BrokerError::config(provider, format!("{field} is empty")));
    }
    Ok(())
}
