//! The fully formed upstream request and the credential that goes into it, with `Debug`
//! output that never shows secrets.

use super::Endpoint;
use ::http::Method;

/// One upstream HTTP request, fully formed. The gateway sets `host` from
/// [`Endpoint::authority`] and `content-length` from `body`; everything else is in `headers`.
#[derive(Clone, PartialEq, Eq)]
pub struct UpstreamRequest {
    /// Where to send it.
    pub endpoint: Endpoint,
    /// The HTTP method.
    pub method: Method,
    /// Origin-form target: the endpoint's base path, the tool path and the encoded query.
    pub path_and_query: String,
    /// Header names (lowercase) and values, in sending order.
    pub headers: Vec<(String, String)>,
    /// The request body, if any (JSON for every built-in tool).
    pub body: Option<Vec<u8>>,
    /// Lowercase names of headers and query parameters that carry secrets; `Debug` redacts
    /// them on top of the built-in list (`authorization`, `developer-token`, `api_token`, …).
    pub secret_names: Vec<String>,
    /// Who chose `endpoint`: decides whether the sender applies the egress address policy.
    pub destination: Destination,
}

/// Who chose where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Operator configuration: a built-in provider's base URL, or a URL the attached brokered
    /// credential is bound to (`allowed_urls`). Connected to as configured.
    Operator,
    /// A manifest's `http.base_url` and nothing else: the sender checks the resolved
    /// addresses against `providers.http.egress` and connects to the checked one.
    Manifest,
}

/// Header and query parameter names redacted by `Debug` whatever `secret_names` says.
const ALWAYS_SECRET: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "developer-token",
    "cookie",
    "x-api-key",
    "api_token",
    "api_key",
    "apikey",
    "access_token",
    "key",
    "token",
];

impl UpstreamRequest {
    /// Whether `name` (header or query parameter) carries a secret.
    pub fn is_secret_name(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        ALWAYS_SECRET.contains(&name.as_str()) || self.secret_names.iter().any(|s| s.eq_ignore_ascii_case(&name))
    }

    /// `path_and_query` with the values of secret query parameters replaced by `***`.
    pub fn redacted_path_and_query(&self) -> String {
        let Some((path, query)) = self.path_and_query.split_once('?') else {
            return self.path_and_query.clone();
        };
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if self.is_secret_name(&decode_name(k)) => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        format!("{path}?{}", pairs.join("&"))
    }
}

fn decode_name(name: &str) -> String {
    percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned()
}

impl std::fmt::Debug for UpstreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), if self.is_secret_name(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("UpstreamRequest")
            .field("endpoint", &self.endpoint)
            .field("method", &self.method)
            .field("path_and_query", &self.redacted_path_and_query())
            .field("headers", &headers)
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .field("destination", &self.destination)
            .finish()
    }
}

/// A per-call credential from the broker. Borrowed: the request builder copies it into the
/// request and nowhere else.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// `Authorization: Bearer <token>` (Google OAuth access token, generic `bearer` auth).
    Bearer(&'a str),
    /// Pipedrive-style `api_token` query parameter.
    ApiTokenQuery(&'a str),
    /// A named header carrying the secret verbatim.
    Header {
        /// Header name.
        name: &'a str,
        /// Header value (secret).
        value: &'a str,
    },
    /// No credential.
    None,
}

impl Credential<'_> {
    /// The secret value, whatever its placement; `None` for [`Credential::None`].
    pub fn secret(&self) -> Option<&str> {
        match self {
            Credential::Bearer(s) | Credential::ApiTokenQuery(s) => Some(s),
            Credential::Header { value, .. } => Some(value),
            Credential::None => None,
        }
    }
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Bearer(_) => f.write_str("Bearer(***)"),
            Credential::ApiTokenQuery(_) => f.write_str("ApiTokenQuery(***)"),
            Credential::Header { name, .. } => write!(f, "Header {{ name: {name:?}, value: *** }}"),
            Credential::None => f.write_str("None"),
        }
    }
}
