//! Generic manifest-described HTTP tools ([`HttpToolSpec`]).

use super::encode::{self, header_value, query_string};
use super::spec::{AuthKind, BodyMode, BodySpec, ResponseKind};
use super::template::{self, lookup, render, sole_var};
use super::{endpoint, Credential, Destination, HttpToolSpec, ProviderError, UpstreamRequest};
use serde_json::{Map, Value};

/// Builds the request a spec describes for `input`.
pub(crate) fn build(
    spec: &HttpToolSpec,
    input: &Value,
    credential: Credential<'_>,
) -> Result<UpstreamRequest, ProviderError> {
    spec.validate()?;
    if !input.is_object() {
        return Err(ProviderError::validation("input must be a JSON object"));
    }
    let endpoint = endpoint::parse(&spec.base_url)?;
    let path = render_path(&spec.path, input)?;
    let mut query = render_query(spec, input)?;
    let mut headers = Vec::new();
    let mut secret_names = Vec::new();
    apply_auth(spec, credential, &mut headers, &mut query, &mut secret_names)?;
    if spec.response == ResponseKind::Json {
        headers.push(("accept".to_owned(), "application/json".to_owned()));
    }
    let body = match spec.effective_body() {
        BodySpec::Mode(BodyMode::None) => None,
        BodySpec::Mode(BodyMode::Input) => Some(encode::json_body(input)?),
        BodySpec::Mapping { mapping } => Some(encode::json_body(&map_value(&Value::Object(mapping), input)?)?),
    };
    if body.is_some() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    Ok(UpstreamRequest {
        path_and_query: format!("{}{path}{}", endpoint.path, query_string(&query)),
        endpoint,
        method: spec.parsed_method()?,
        headers,
        body,
        secret_names,
        destination: Destination::Manifest,
    })
}

/// Fills path placeholders, each encoded inside its segment, and re-checks that no segment
/// became a dot segment (`{a}{b}` with `.` and `.`).
fn render_path(path: &str, input: &Value) -> Result<String, ProviderError> {
    let parts = template::parse(path).map_err(ProviderError::misconfigured)?;
    let rendered = render(&parts, input, |field, v| {
        if v.is_empty() {
            return Err(ProviderError::validation(format!("{field} must not be empty")));
        }
        Ok(encode::component(v))
    })?;
    if rendered.split('/').skip(1).any(|s| s == "." || s == "..") {
        return Err(ProviderError::validation("path parameters must not form dot segments"));
    }
    Ok(rendered)
}

fn render_query(spec: &HttpToolSpec, input: &Value) -> Result<Vec<(String, String)>, ProviderError> {
    let mut out = Vec::new();
    for (name, value) in &spec.query {
        let parts = template::parse(value).map_err(ProviderError::misconfigured)?;
        if let Some(path) = sole_var(&parts) {
            if lookup(input, path).is_none() {
                continue;
            }
        }
        out.push((name.clone(), render(&parts, input, |_, v| Ok(v.to_owned()))?));
    }
    Ok(out)
}

/// Places the credential as the spec says, or as the credential's own kind says when the spec
/// has no `auth`.
fn apply_auth(
    spec: &HttpToolSpec,
    credential: Credential<'_>,
    headers: &mut Vec<(String, String)>,
    query: &mut Vec<(String, String)>,
    secret_names: &mut Vec<String>,
) -> Result<(), ProviderError> {
    let Some(auth) = &spec.auth else {
        match credential {
            Credential::Bearer(t) => {
                headers.push(("authorization".into(), format!("Bearer {}", header_value("token", t)?)))
            }
            Credential::ApiTokenQuery(t) => query.push(("api_token".into(), t.to_owned())),
            Credential::Header { name, value } => {
                let name = encode::header_name(name)?;
                secret_names.push(name.clone());
                headers.push((name, header_value("credential", value)?));
            }
            Credential::None => {}
        }
        return Ok(());
    };
    let secret = credential
        .secret()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ProviderError::misconfigured("http tool needs a credential but none was brokered"))?;
    let name = auth.name.clone().unwrap_or_default().to_ascii_lowercase();
    match auth.kind {
        AuthKind::Bearer => {
            headers.push(("authorization".into(), format!("Bearer {}", header_value("token", secret)?)))
        }
        AuthKind::Header => {
            secret_names.push(name.clone());
            headers.push((name, header_value("credential", secret)?));
        }
        AuthKind::Query => {
            let raw = auth.name.clone().unwrap_or_default();
            secret_names.push(name);
            query.push((raw, secret.to_owned()));
        }
    }
    Ok(())
}

/// Applies a body mapping: exact placeholders take the input value as-is (key dropped when
/// missing), other strings are interpolated, everything else is literal.
fn map_value(template: &Value, input: &Value) -> Result<Value, ProviderError> {
    match template {
        Value::String(s) => {
            let parts = template::parse(s).map_err(ProviderError::misconfigured)?;
            if let Some(path) = sole_var(&parts) {
                return Ok(lookup(input, path).cloned().unwrap_or(Value::Null));
            }
            Ok(Value::String(render(&parts, input, |_, v| Ok(v.to_owned()))?))
        }
        Value::Array(items) => items.iter().map(|i| map_value(i, input)).collect::<Result<_, _>>().map(Value::Array),
        Value::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                let mapped = map_value(v, input)?;
                let dropped = mapped.is_null() && v.is_string();
                if !dropped {
                    out.insert(k.clone(), mapped);
                }
            }
            Ok(Value::Object(out))
        }
        literal => Ok(literal.clone()),
    }
}

/// Maps the answer: non-2xx → [`ProviderError::Upstream`] with the service's own error text
/// when it sent JSON; 2xx → JSON (or text when the spec says so), otherwise
/// [`ProviderError::Garbage`].
pub(crate) fn parse_response(
    spec: &HttpToolSpec,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, ProviderError> {
    if !encode::is_success(status) {
        let message = encode::parse_json(body)
            .as_ref()
            .and_then(error_text)
            .map(encode::scrub_message)
            .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
        return Err(ProviderError::Upstream { status, message });
    }
    match spec.response {
        ResponseKind::Json => encode::parse_json(body).ok_or_else(|| encode::garbage(status, content_type, body)),
        ResponseKind::Text => std::str::from_utf8(body)
            .map(|s| Value::String(s.to_owned()))
            .map_err(|_| encode::garbage(status, content_type, body)),
    }
}

/// `error` (string), `error.message`, or `message`.
fn error_text(json: &Value) -> Option<&str> {
    let err = json.get("error");
    err.and_then(Value::as_str)
        .or_else(|| err.and_then(|e| e.get("message")).and_then(Value::as_str))
        .or_else(|| json.get("message").and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
}
