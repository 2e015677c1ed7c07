//! The OAuth 2.0 token endpoint client: one form-encoded POST, the answer parsed into a
//! [`TokenResponse`] or mapped to a [`BrokerError`] that carries no secret and no body.
//!
//! Blocking (ureq); the broker calls it through `tokio::task::spawn_blocking`. Redirects are
//! not followed (a token request is never re-sent elsewhere) and bodies are capped at 64 KiB.

use std::io::ErrorKind;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::config::ClientAuth;
use super::error::BrokerError;
use super::secret::Secret;

/// `grant_type` of the client credentials grant (RFC 6749 §4.4.2).
pub const GRANT_CLIENT_CREDENTIALS: &str = "client_credentials";
/// `grant_type` of the refresh token grant (RFC 6749 §6).
pub const GRANT_REFRESH_TOKEN: &str = "refresh_token";
/// `grant_type` of token exchange (RFC 8693 §2.1).
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// Token type URI of a JWT (RFC 8693 §3).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// Token type URI of an access token (RFC 8693 §3).
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

const MAX_BODY: u64 = 64 * 1024;

/// The client's credentials at a token endpoint.
pub(crate) struct Client {
    pub id: String,
    pub secret: Secret,
    pub auth: ClientAuth,
}

/// A token request: form parameters (values may be secrets, so no `Debug`).
pub(crate) struct TokenRequest {
    pub url: String,
    pub params: Vec<(&'static str, String)>,
}

impl TokenRequest {
    /// A request to `url` with `grant_type`.
    pub fn new(url: &str, grant_type: &str) -> TokenRequest {
        TokenRequest { url: url.to_string(), params: vec![("grant_type", grant_type.to_string())] }
    }

    /// Adds a form parameter.
    pub fn param(&mut self, name: &'static str, value: impl Into<String>) {
        self.params.push((name, value.into()));
    }

    /// Adds `scope` (space-separated) unless `scopes` is empty.
    pub fn scopes(&mut self, scopes: &[String]) {
        if !scopes.is_empty() {
            self.param("scope", scopes.join(" "));
        }
    }
}

/// A successful token response (RFC 6749 §5.1, RFC 8693 §2.2.1).
pub(crate) struct TokenResponse {
    pub access_token: Secret,
    pub token_type: String,
    pub expires_in: Option<u64>,
    pub refresh_token: Option<Secret>,
}

/// A configured HTTP agent for token requests; HTTPS is verified against the gateway's one
/// root set ([`crate::upstream::tls`]).
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    crate::upstream::tls::ureq_agent_config()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent("fastmcp-credential-broker")
        .build()
        .new_agent()
}

/// POSTs `req` with `client` authentication and parses the answer. `known_secrets` are values
/// that must never come back inside an error (client secret, refresh token, subject token).
pub(crate) fn request_token(
    agent: &ureq::Agent,
    provider: &str,
    client: &Client,
    mut req: TokenRequest,
    known_secrets: &[&str],
) -> Result<TokenResponse, BrokerError> {
    let mut http = agent.post(&req.url).header("Accept", "application/json");
    // Under a caller's trace (the broker's token span, carried onto this thread).
    for (k, v) in crate::otel::current_headers() {
        http = http.header(k, v);
    }
    match client.auth {
        ClientAuth::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded before base64.
            let pair = format!("{}:{}", form_urlencode(&client.id), form_urlencode(client.secret.expose()));
            http = http.header("Authorization", format!("Basic {}", STANDARD.encode(pair)));
        }
        ClientAuth::Post => {
            req.param("client_id", client.id.clone());
            req.param("client_secret", client.secret.expose());
        }
    }
    let mut response =
        http.send_form(req.params.iter().map(|(k, v)| (*k, v.as_str()))).map_err(|e| transport_error(provider, &e))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| transport_error(provider, &e))?;
    if !(200..300).contains(&status) {
        let oauth_error = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(String::from))
            .filter(|code| plausible_error_code(code, known_secrets));
        return Err(BrokerError::Upstream { provider: provider.to_string(), status, oauth_error });
    }
    parse_token_response(provider, &body)
}

/// Parses a 2xx token endpoint body.
pub(crate) fn parse_token_response(provider: &str, body: &str) -> Result<TokenResponse, BrokerError> {
    let invalid =
        |problem: &str| BrokerError::InvalidResponse { provider: provider.to_string(), problem: problem.to_string() };
    let json: Value = serde_json::from_str(body).map_err(|_| invalid("body is not JSON"))?;
    let access_token = json
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid("no access_token"))?;
    let token_type = match json.get("token_type").and_then(Value::as_str) {
        None => "Bearer".to_string(),
        Some(t) if t.eq_ignore_ascii_case("bearer") => "Bearer".to_string(),
        Some(t) if t.eq_ignore_ascii_case("n_a") => return Err(invalid("token_type N_A is not an access token")),
        Some(t) if t.len() <= 32 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
            t.to_string()
        }
        Some(_) => return Err(invalid("malformed token_type")),
    };
    // Some providers send expires_in as a string.
    let expires_in = match json.get("expires_in") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)).unwrap_or(0)),
        Some(Value::String(s)) => Some(s.trim().parse::<u64>().map_err(|_| invalid("malformed expires_in"))?),
        Some(_) => return Err(invalid("malformed expires_in")),
    };
    let refresh_token = json.get("refresh_token").and_then(Value::as_str).filter(|t| !t.is_empty()).map(Secret::new);
    Ok(TokenResponse { access_token: Secret::new(access_token), token_type, expires_in, refresh_token })
}

/// True for a string that looks like an OAuth error code (RFC 6749 §5.2: `%x20-21 / %x23-5B /
/// %x5D-7E`, kept short) and contains none of the request's secrets.
fn plausible_error_code(code: &str, known_secrets: &[&str]) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        && !known_secrets.iter().any(|s| !s.is_empty() && (code.contains(s) || (s.contains(code) && code.len() >= 8)))
}

/// Maps a ureq error to `Timeout` or `Unreachable` with a fixed reason (ureq messages can
/// carry URLs or header values).
fn transport_error(provider: &str, e: &ureq::Error) -> BrokerError {
    let provider = provider.to_string();
    let reason = match e {
        ureq::Error::Timeout(_) => return BrokerError::Timeout { provider },
        ureq::Error::Io(io) if matches!(io.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            return BrokerError::Timeout { provider };
        }
        ureq::Error::Io(io) => format!("i/o error ({})", io.kind()),
        ureq::Error::HostNotFound => "host not found".to_string(),
        ureq::Error::ConnectionFailed => "connection failed".to_string(),
        ureq::Error::Tls(_) => "TLS error".to_string(),
        ureq::Error::BodyExceedsLimit(_) => "response too large".to_string(),
        ureq::Error::BadUri(_) => "bad token_url".to_string(),
        ureq::Error::Protocol(_) => "HTTP protocol error".to_string(),
        _ => "request failed".to_string(),
    };
    BrokerError::Unreachable { provider, reason }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub(crate) fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
