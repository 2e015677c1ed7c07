//! Credential sources: configuration resolved at startup, and one fetch per kind.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::config::{check_nonempty, check_url, resolve_secret, CredentialConfig, SubjectTokenConfig};
use super::error::BrokerError;
use super::mint::{mint, MintRequest, Signer};
use super::oauth::{
    request_token, Client, TokenRequest, TokenResponse, GRANT_CLIENT_CREDENTIALS, GRANT_REFRESH_TOKEN,
    GRANT_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN,
};
use super::secret::Secret;
use super::{Caller, Credential};

/// A provider's resolved configuration.
pub(crate) enum Source {
    Static(Credential),
    ClientCredentials {
        url: String,
        client: Arc<Client>,
        scopes: Vec<String>,
        audience: Option<String>,
    },
    RefreshToken {
        url: String,
        client: Arc<Client>,
        /// The current refresh token; replaced when the endpoint rotates it. Held for the
        /// whole request so rotations of one provider never race.
        refresh_token: Arc<parking_lot::Mutex<Secret>>,
        scopes: Vec<String>,
    },
    TokenExchange {
        url: String,
        client: Arc<Client>,
        audience: String,
        scopes: Vec<String>,
        subject: Subject,
    },
    GatewayJwt {
        issuer: String,
        audience: String,
        ttl_seconds: u64,
    },
}

/// The subject token of a token exchange.
pub(crate) enum Subject {
    Minted { issuer: String, audience: String, ttl_seconds: u64 },
    Static { token: Secret, token_type: String },
}

/// What a fetch needs besides the source.
pub(crate) struct FetchContext<'a> {
    pub provider: &'a str,
    pub who: &'a Caller,
    pub scopes: &'a [String],
    pub signer: Option<Arc<Signer>>,
    pub http: &'a ureq::Agent,
}

fn client(
    provider: &str,
    client_id: &str,
    secret: (Option<&Secret>, Option<&str>, Option<&std::path::Path>),
    auth: super::config::ClientAuth,
) -> Result<Arc<Client>, BrokerError> {
    check_nonempty(provider, "client_id", client_id)?;
    let secret = resolve_secret(provider, "client_secret", secret.0, secret.1, secret.2)?;
    Ok(Arc::new(Client { id: client_id.to_string(), secret, auth }))
}

fn check_ttl(provider: &str, field: &str, ttl: u64) -> Result<(), BrokerError> {
    if ttl == 0 || ttl > 86_400 {
        return Err(BrokerError::config(provider, format!("{field} must be between 1 and 86400")));
    }
    Ok(())
}

impl Source {
    /// Validates `cfg` and resolves its secrets.
    pub fn from_config(provider: &str, cfg: &CredentialConfig, have_signer: bool) -> Result<Source, BrokerError> {
        let need_signer = || {
            if have_signer {
                Ok(())
            } else {
                Err(BrokerError::config(provider, "needs the gateway signing key, but none was given"))
            }
        };
        Ok(match cfg {
            CredentialConfig::Static(c) => {
                check_nonempty(provider, "token_type", &c.token_type)?;
                let secret = resolve_secret(
                    provider,
                    "secret",
                    c.secret.as_ref(),
                    c.secret_env.as_deref(),
                    c.secret_file.as_deref(),
                )?;
                Source::Static(Credential::new(secret, c.token_type.clone(), None))
            }
            CredentialConfig::ClientCredentials(c) => {
                check_url(provider, "token_url", &c.token_url)?;
                Source::ClientCredentials {
                    url: c.token_url.clone(),
                    client: client(
                        provider,
                        &c.client_id,
                        (c.client_secret.as_ref(), c.client_secret_env.as_deref(), c.client_secret_file.as_deref()),
                        c.client_auth,
                    )?,
                    scopes: c.scopes.clone(),
                    audience: c.audience.clone(),
                }
            }
            CredentialConfig::RefreshToken(c) => {
                check_url(provider, "token_url", &c.token_url)?;
                let refresh_token = resolve_secret(
                    provider,
                    "refresh_token",
                    c.refresh_token.as_ref(),
                    c.refresh_token_env.as_deref(),
                    c.refresh_token_file.as_deref(),
                )?;
                Source::RefreshToken {
                    url: c.token_url.clone(),
                    client: client(
                        provider,
                        &c.client_id,
                        (c.client_secret.as_ref(), c.client_secret_env.as_deref(), c.client_secret_file.as_deref()),
                        c.client_auth,
                    )?,
                    refresh_token: Arc::new(parking_lot::Mutex::new(refresh_token)),
                    scopes: c.scopes.clone(),
                }
            }
            CredentialConfig::TokenExchange(c) => {
                check_url(provider, "token_url", &c.token_url)?;
                check_nonempty(provider, "audience", &c.audience)?;
                let subject = match &c.subject_token {
                    SubjectTokenConfig::Minted(m) => {
                        need_signer()?;
                        check_nonempty(provider, "subject_token.issuer", &m.issuer)?;
                        check_ttl(provider, "subject_token.ttl_seconds", m.ttl_seconds)?;
                        Subject::Minted {
                            issuer: m.issuer.clone(),
                            audience: m.audience.clone().unwrap_or_else(|| c.token_url.clone()),
                            ttl_seconds: m.ttl_seconds,
                        }
                    }
                    SubjectTokenConfig::Static(s) => {
                        check_nonempty(provider, "subject_token.token_type", &s.token_type)?;
                        Subject::Static {
                            token: resolve_secret(
                                provider,
                                "subject_token.token",
                                s.token.as_ref(),
                                s.token_env.as_deref(),
                                s.token_file.as_deref(),
                            )?,
                            token_type: s.token_type.clone(),
                        }
                    }
                };
                Source::TokenExchange {
                    url: c.token_url.clone(),
                    client: client(
                        provider,
                        &c.client_id,
                        (c.client_secret.as_ref(), c.client_secret_env.as_deref(), c.client_secret_file.as_deref()),
                        c.client_auth,
                    )?,
                    audience: c.audience.clone(),
                    scopes: c.scopes.clone(),
                    subject,
                }
            }
            CredentialConfig::GatewayJwt(c) => {
                need_signer()?;
                check_nonempty(provider, "issuer", &c.issuer)?;
                check_nonempty(provider, "audience", &c.audience)?;
                check_ttl(provider, "ttl_seconds", c.ttl_seconds)?;
                Source::GatewayJwt {
                    issuer: c.issuer.clone(),
                    audience: c.audience.clone(),
                    ttl_seconds: c.ttl_seconds,
                }
            }
        })
    }

    /// The source kind (for `Debug`).
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Static(_) => "static",
            Source::ClientCredentials { .. } => "client_credentials",
            Source::RefreshToken { .. } => "refresh_token",
            Source::TokenExchange { .. } => "token_exchange",
            Source::GatewayJwt { .. } => "gateway_jwt",
        }
    }

    /// The credential of a static source (no cache needed).
    pub fn fixed(&self) -> Option<Credential> {
        match self {
            Source::Static(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// True when credentials are issued per principal, so the cache key includes `sub`.
    pub fn per_principal(&self) -> bool {
        matches!(self, Source::GatewayJwt { .. } | Source::TokenExchange { subject: Subject::Minted { .. }, .. })
    }

    /// `requested` if non-empty, else the configured scopes; sorted and deduplicated.
    pub fn effective_scopes(&self, requested: &[String]) -> Vec<String> {
        let configured: &[String] = match self {
            Source::ClientCredentials { scopes, .. }
            | Source::RefreshToken { scopes, .. }
            | Source::TokenExchange { scopes, .. } => scopes,
            Source::Static(_) | Source::GatewayJwt { .. } => &[],
        };
        let mut scopes: Vec<String> = if requested.is_empty() { configured.to_vec() } else { requested.to_vec() };
        scopes.retain(|s| !s.is_empty());
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// Obtains a new credential; `now` is when the fetch started (expiry is counted from it).
    pub async fn fetch(&self, ctx: FetchContext<'_>, now: SystemTime) -> Result<Credential, BrokerError> {
        let provider = ctx.provider;
        match self {
            Source::Static(c) => Ok(c.clone()),
            Source::ClientCredentials { url, client, audience, .. } => {
                let mut req = TokenRequest::new(url, GRANT_CLIENT_CREDENTIALS);
                req.scopes(ctx.scopes);
                if let Some(aud) = audience {
                    req.param("audience", aud.clone());
                }
                let client = client.clone();
                let response = blocking(provider, ctx.http, move |http, provider| {
                    request_token(http, provider, &client, req, &[client.secret.expose()])
                })
                .await?;
                Ok(credential(response, now, audience.clone()))
            }
            Source::RefreshToken { url, client, refresh_token, .. } => {
                let mut req = TokenRequest::new(url, GRANT_REFRESH_TOKEN);
                req.scopes(ctx.scopes);
                let client = client.clone();
                let refresh_token = refresh_token.clone();
                // The request and the rotation happen on the blocking thread, so a cancelled
                // caller cannot lose a rotated refresh token.
                let response = blocking(provider, ctx.http, move |http, provider| {
                    let mut current = refresh_token.lock();
                    req.param("refresh_token", current.expose());
                    let response =
                        request_token(http, provider, &client, req, &[client.secret.expose(), current.expose()])?;
                    if let Some(new) = &response.refresh_token {
                        if new != &*current {
                            *current = new.clone();
                            tracing::info!(provider, "refresh token rotated; using the new one from now on");
                        }
                    }
                    Ok(response)
                })
                .await?;
                Ok(credential(response, now, None))
            }
            Source::TokenExchange { url, client, audience, subject, .. } => {
                let (subject_token, subject_type) = match subject {
                    Subject::Minted { issuer, audience: sub_aud, ttl_seconds } => {
                        let signer = ctx.signer.as_deref().ok_or_else(|| signing(provider, "no signer"))?;
                        let req = MintRequest {
                            issuer,
                            audience: sub_aud,
                            sub: &ctx.who.sub,
                            tenant: &ctx.who.tenant,
                            scopes: ctx.scopes,
                            ttl_seconds: *ttl_seconds,
                        };
                        let (token, _) = mint(signer, &req, now).map_err(|e| signing(provider, &e))?;
                        (token, super::oauth::TOKEN_TYPE_JWT.to_string())
                    }
                    Subject::Static { token, token_type } => (token.clone(), token_type.clone()),
                };
                let mut req = TokenRequest::new(url, GRANT_TOKEN_EXCHANGE);
                req.param("subject_token", subject_token.expose());
                req.param("subject_token_type", subject_type);
                req.param("requested_token_type", TOKEN_TYPE_ACCESS_TOKEN);
                req.param("audience", audience.clone());
                req.scopes(ctx.scopes);
                let client = client.clone();
                let response = blocking(provider, ctx.http, move |http, provider| {
                    request_token(http, provider, &client, req, &[client.secret.expose(), subject_token.expose()])
                })
                .await?;
                Ok(credential(response, now, Some(audience.clone())))
            }
            Source::GatewayJwt { issuer, audience, ttl_seconds } => {
                let signer = ctx.signer.as_deref().ok_or_else(|| signing(provider, "no signer"))?;
                let req = MintRequest {
                    issuer,
                    audience,
                    sub: &ctx.who.sub,
                    tenant: &ctx.who.tenant,
                    scopes: ctx.scopes,
                    ttl_seconds: *ttl_seconds,
                };
                let (token, exp) = mint(signer, &req, now).map_err(|e| signing(provider, &e))?;
                Ok(Credential {
                    secret: token,
                    token_type: "Bearer".into(),
                    expires_at: Some(exp),
                    audience: Some(audience.clone()),
                })
            }
        }
    }
}

fn signing(provider: &str, reason: &str) -> BrokerError {
    BrokerError::Signing { provider: provider.to_string(), reason: reason.to_string() }
}

fn credential(response: TokenResponse, now: SystemTime, audience: Option<String>) -> Credential {
    Credential {
        secret: response.access_token,
        token_type: response.token_type,
        expires_at: response.expires_in.map(|s| now + Duration::from_secs(s)),
        audience,
    }
}

/// Runs a blocking token request on tokio's blocking pool. The request finishes even if the
/// caller is cancelled. Under a request's trace it is a child span (`broker.token`) and the
/// token endpoint gets `traceparent` naming it.
async fn blocking<F>(provider: &str, http: &ureq::Agent, f: F) -> Result<TokenResponse, BrokerError>
where
    F: FnOnce(&ureq::Agent, &str) -> Result<TokenResponse, BrokerError> + Send + 'static,
{
    let http = http.clone();
    let name = provider.to_string();
    let span = crate::otel::child("broker.token", opentelemetry::trace::SpanKind::Client);
    if let Some(s) = span.as_ref().filter(|s| s.trace().is_recording()) {
        s.set("fastmcp.provider", provider.to_string());
    }
    let trace = span.as_ref().map(|s| s.trace().clone());
    let result = crate::otel::spawn_blocking(trace, move || f(&http, &name)).await.unwrap_or_else(|_| {
        Err(BrokerError::Unreachable { provider: provider.to_string(), reason: "token request task failed".into() })
    });
    if let Err(e) = &result {
        if let Some(s) = span.as_ref() {
            s.fail("token request failed");
        }
        tracing::warn!(provider, error = %e, "token request failed");
    }
    result
}
