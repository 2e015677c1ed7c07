//! The manifest description of a generic HTTP tool (`{"http": {…}}`).

use super::encode::header_value;
use super::template::{self, Part};
use super::{endpoint, ProviderError};
use ::http::Method;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// How one manifest-described tool maps onto an HTTP call. Deserialised from the value of the
/// manifest's `http` key.
///
/// Templates: `{input.a.b}` (or the short `{a.b}`) stands for the input field at that dotted
/// path. Literal braces are not supported.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpToolSpec {
    /// HTTP method: `GET`, `POST`, `PUT`, `PATCH` or `DELETE` (case-insensitive).
    pub method: String,
    /// Path template appended to the base URL's path, starting with `/`, e.g. `/items/{id}`.
    /// Each placeholder is filled from the input and percent-encoded as part of a single
    /// segment; a missing value, or one that is empty, `.` or `..`, is a validation error.
    pub path: String,
    /// Query parameters: literal names mapped to value templates. A value that is exactly one
    /// placeholder is left out when the input lacks the field (or it is `null`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// What to send as the body. Default: `"none"` for `GET` / `DELETE`, `"input"` otherwise.
    #[serde(default)]
    pub body: Option<BodySpec>,
    /// Base URL of the service, `http[s]://host[:port][/base/path]`.
    pub base_url: String,
    /// Where the brokered credential goes. When absent, the credential is applied as its own
    /// kind says (bearer header, `api_token` query, named header).
    #[serde(default)]
    pub auth: Option<AuthSpec>,
    /// How to read a successful answer: `"json"` (default) or `"text"`.
    #[serde(default)]
    pub response: ResponseKind,
}

/// The body of a generic HTTP tool call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum BodySpec {
    /// `"input"` (the whole tool input as JSON) or `"none"`.
    Mode(BodyMode),
    /// `{"mapping": {…}}`: a JSON object whose string values are templates. A string that is
    /// exactly one placeholder takes the input value as-is (any JSON type; the key is left out
    /// when the input lacks it); other strings are interpolated; non-strings are literal.
    Mapping {
        /// The body template.
        mapping: Map<String, Value>,
    },
}

/// The fixed body modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyMode {
    /// Send the tool input as the JSON body.
    Input,
    /// Send no body.
    None,
}

/// Where the credential goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSpec {
    /// `bearer` (`Authorization: Bearer …`), `header` (named header) or `query` (named query
    /// parameter).
    pub kind: AuthKind,
    /// Header or query parameter name; required for `header` and `query`.
    #[serde(default)]
    pub name: Option<String>,
}

/// Credential placements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// `Authorization: Bearer <secret>`.
    Bearer,
    /// `<name>: <secret>`.
    Header,
    /// `?<name>=<secret>`.
    Query,
}

/// How a successful response body becomes the tool result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseKind {
    /// Parse as JSON; anything else is [`ProviderError::Garbage`].
    #[default]
    Json,
    /// Return the body as a JSON string (must be UTF-8).
    Text,
}

/// Headers a manifest may not set through `auth.name`: the gateway owns them.
const RESERVED_HEADERS: &[&str] =
    &["host", "content-length", "content-type", "transfer-encoding", "connection", "te", "upgrade", "accept"];

impl HttpToolSpec {
    /// Checks the spec on its own (at manifest load time, and again on every build):
    /// method, base URL, path template, query names and auth. Errors are
    /// [`ProviderError::Misconfigured`]: a bad manifest is not the caller's fault.
    pub fn validate(&self) -> Result<(), ProviderError> {
        self.parsed_method()?;
        endpoint::parse(&self.base_url)?;
        let bad = |why: String| ProviderError::misconfigured(format!("http tool spec: {why}"));
        if !self.path.starts_with('/') || self.path.contains(['?', '#']) {
            return Err(bad("path must start with / and carry no query or fragment".into()));
        }
        for part in template::parse(&self.path).map_err(bad)? {
            if let Part::Lit(lit) = part {
                if !lit.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b)) {
                    return Err(bad(format!("path literal {lit:?} has characters that need encoding")));
                }
                if lit.split('/').any(|s| s == "." || s == "..") {
                    return Err(bad("path has dot segments".into()));
                }
            }
        }
        for (name, value) in &self.query {
            if name.is_empty() {
                return Err(bad("empty query parameter name".into()));
            }
            template::parse(value).map_err(bad)?;
        }
        if let Some(BodySpec::Mapping { mapping }) = &self.body {
            check_mapping(&Value::Object(mapping.clone())).map_err(bad)?;
        }
        if let Some(auth) = &self.auth {
            self.check_auth(auth)?;
        }
        Ok(())
    }

    /// The method, if it is one of the supported ones.
    pub fn parsed_method(&self) -> Result<Method, ProviderError> {
        match self.method.to_ascii_uppercase().as_str() {
            "GET" => Ok(Method::GET),
            "POST" => Ok(Method::POST),
            "PUT" => Ok(Method::PUT),
            "PATCH" => Ok(Method::PATCH),
            "DELETE" => Ok(Method::DELETE),
            other => Err(ProviderError::misconfigured(format!("http tool spec: unsupported method {other:?}"))),
        }
    }

    /// The body mode after defaults.
    pub fn effective_body(&self) -> BodySpec {
        match &self.body {
            Some(b) => b.clone(),
            None if matches!(self.method.to_ascii_uppercase().as_str(), "GET" | "DELETE") => {
                BodySpec::Mode(BodyMode::None)
            }
            None => BodySpec::Mode(BodyMode::Input),
        }
    }

    fn check_auth(&self, auth: &AuthSpec) -> Result<(), ProviderError> {
        let name = auth.name.as_deref().unwrap_or("");
        let bad = |why: &str| ProviderError::misconfigured(format!("http tool spec auth: {why}"));
        match auth.kind {
            AuthKind::Bearer => Ok(()),
            AuthKind::Query if name.is_empty() => Err(bad("query auth needs a name")),
            AuthKind::Query => Ok(()),
            AuthKind::Header => {
                let token = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                if !token || RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(bad("header auth needs a plain, non-reserved header name"));
                }
                header_value("auth header name", name).map(|_| ())
            }
        }
    }
}

/// Every string in a mapping must be a well-formed template.
fn check_mapping(v: &Value) -> Result<(), String> {
    match v {
        Value::String(s) => template::parse(s).map(|_| ()),
        Value::Array(a) => a.iter().try_for_each(check_mapping),
        Value::Object(o) => o.values().try_for_each(check_mapping),
        _ => Ok(()),
    }
}
