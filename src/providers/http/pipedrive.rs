//! Pipedrive v1 REST: deals and persons.
//!
//! The API token travels only as the `api_token` query parameter (Pipedrive's documented
//! scheme for API tokens); it is never put in a header and never echoed in errors.

use super::encode::{self, path_segment, query_string};
use super::input::{
    object, only_fields, optional_amount, optional_choice, optional_positive_int, optional_str, positive_int, present,
    required_str,
};
use super::{endpoint, Credential, Destination, Endpoint, HttpProvidersConfig, ProviderError, UpstreamRequest};
use ::http::Method;
use serde_json::{Map, Value};

/// Tool id prefix of this provider.
pub const PREFIX: &str = "pipedrive:";

/// Deal fields accepted by `createDeal` / `updateDeal` (plus `id` for the latter).
const DEAL_FIELDS: &[&str] = &["title", "value", "currency", "person_id", "org_id", "stage_id", "status"];
/// Deal statuses a tool may set; `deleted` is deliberately not one of them.
const DEAL_STATUSES: &[&str] = &["open", "won", "lost"];
/// Person fields accepted by `createContact`.
const PERSON_FIELDS: &[&str] = &["name", "email", "phone", "org_id"];

/// The Pipedrive endpoint: `base_url_override` when given, otherwise
/// `https://{company_domain}.pipedrive.com/api/v1`. The domain must be one DNS label.
pub fn endpoint(company_domain: &str, base_url_override: Option<&str>) -> Result<Endpoint, ProviderError> {
    if let Some(base) = base_url_override.filter(|b| !b.trim().is_empty()) {
        return endpoint::parse(base.trim());
    }
    let domain = company_domain.trim().to_ascii_lowercase();
    let label_ok = !domain.is_empty()
        && domain.len() <= 63
        && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !domain.starts_with('-')
        && !domain.ends_with('-');
    if !label_ok {
        return Err(ProviderError::misconfigured("pipedrive company domain is missing or not a DNS label"));
    }
    endpoint::parse(&format!("https://{domain}.pipedrive.com/api/v1"))
}

/// Builds the request for `op` (the tool id without `pipedrive:`); `None` when the operation
/// is unknown.
pub(crate) fn build(
    op: &str,
    input: &Value,
    cfg: &HttpProvidersConfig,
    credential: Credential<'_>,
) -> Option<Result<UpstreamRequest, ProviderError>> {
    let built = match op {
        "createDeal" => create_deal(input).map(|body| (Method::POST, "/deals".to_owned(), Some(body))),
        "getDeal" => deal_path(input).map(|path| (Method::GET, path, None)),
        "updateDeal" => update_deal(input),
        "createContact" => create_person(input).map(|body| (Method::POST, "/persons".to_owned(), Some(body))),
        _ => return None,
    };
    Some(built.and_then(|(method, path, body)| assemble(cfg, method, &path, body, credential)))
}

fn assemble(
    cfg: &HttpProvidersConfig,
    method: Method,
    path: &str,
    body: Option<Value>,
    credential: Credential<'_>,
) -> Result<UpstreamRequest, ProviderError> {
    let token = match credential {
        Credential::ApiTokenQuery(t) if !t.is_empty() => t,
        _ => return Err(ProviderError::misconfigured("pipedrive needs an api_token credential")),
    };
    let endpoint = endpoint(&cfg.pipedrive_company_domain, cfg.pipedrive_base_url.as_deref())?;
    let path_and_query = format!("{}{path}{}", endpoint.path, query_string(&[("api_token", token)]));
    let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
    let body = match body {
        Some(b) => {
            headers.push(("content-type".to_owned(), "application/json".to_owned()));
            Some(encode::json_body(&b)?)
        }
        None => None,
    };
    Ok(UpstreamRequest {
        endpoint,
        method,
        path_and_query,
        headers,
        body,
        secret_names: vec!["api_token".to_owned()],
        destination: Destination::Operator,
    })
}

/// `createDeal`: `title` required, the other deal fields optional.
fn create_deal(input: &Value) -> Result<Value, ProviderError> {
    let obj = object(input)?;
    only_fields(obj, DEAL_FIELDS)?;
    required_str(obj, "title")?;
    deal_body(obj)
}

/// `updateDeal`: `id` plus at least one deal field.
fn update_deal(input: &Value) -> Result<(Method, String, Option<Value>), ProviderError> {
    let obj = object(input)?;
    let mut allowed = DEAL_FIELDS.to_vec();
    allowed.push("id");
    only_fields(obj, &allowed)?;
    let path = deal_path(input)?;
    let body = deal_body(obj)?;
    if body.as_object().is_some_and(Map::is_empty) {
        return Err(ProviderError::validation("updateDeal needs at least one field to change"));
    }
    Ok((Method::PUT, path, Some(body)))
}

/// `/deals/{id}` with `id` a positive integer.
fn deal_path(input: &Value) -> Result<String, ProviderError> {
    let obj = object(input)?;
    let id = present(obj, "id").ok_or_else(|| ProviderError::validation("id is required"))?;
    let id = positive_int("id", id)?;
    Ok(format!("/deals/{}", path_segment("id", &id.to_string())?))
}

/// The deal fields present in `obj`, typed and normalised.
fn deal_body(obj: &Map<String, Value>) -> Result<Value, ProviderError> {
    let mut body = Map::new();
    if let Some(title) = optional_str(obj, "title")? {
        body.insert("title".into(), Value::from(title));
    }
    if optional_amount(obj, "value")?.is_some() {
        body.insert("value".into(), numeric(&obj["value"]));
    }
    if let Some(currency) = optional_str(obj, "currency")? {
        let c = currency.trim();
        if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(ProviderError::validation("currency must be a 3-letter code"));
        }
        body.insert("currency".into(), Value::from(c.to_ascii_uppercase()));
    }
    for field in ["person_id", "org_id", "stage_id"] {
        if let Some(id) = optional_positive_int(obj, field)? {
            body.insert(field.into(), Value::from(id));
        }
    }
    if let Some(status) = optional_choice(obj, "status", DEAL_STATUSES)? {
        body.insert("status".into(), Value::from(status));
    }
    Ok(Value::Object(body))
}

/// A validated amount as a JSON number (numeric strings converted).
fn numeric(v: &Value) -> Value {
    match v {
        Value::String(s) => s.trim().parse::<f64>().ok().map(Value::from).unwrap_or(Value::Null),
        other => other.clone(),
    }
}

/// `createContact` → person: `name` required, `email` / `phone` a string or a list.
fn create_person(input: &Value) -> Result<Value, ProviderError> {
    let obj = object(input)?;
    only_fields(obj, PERSON_FIELDS)?;
    let mut body = Map::new();
    body.insert("name".into(), Value::from(required_str(obj, "name")?));
    for field in ["email", "phone"] {
        if let Some(v) = present(obj, field) {
            body.insert(field.into(), contact_list(field, v)?);
        }
    }
    if let Some(org) = optional_positive_int(obj, "org_id")? {
        body.insert("org_id".into(), Value::from(org));
    }
    Ok(Value::Object(body))
}

/// Pipedrive's `[{"value", "primary", "label"}]` shape from a string, a list of strings, or a
/// list of such objects. The first entry is primary unless the caller says otherwise.
fn contact_list(field: &str, v: &Value) -> Result<Value, ProviderError> {
    let bad = || ProviderError::validation(format!("{field} must be a string or a non-empty list"));
    let items: Vec<&Value> = match v {
        Value::String(_) => vec![v],
        Value::Array(a) if !a.is_empty() && a.len() <= 20 => a.iter().collect(),
        _ => return Err(bad()),
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let mut entry = Map::new();
        match item {
            Value::String(s) if !s.trim().is_empty() => {
                entry.insert("value".into(), Value::from(s.trim()));
                entry.insert("primary".into(), Value::Bool(i == 0));
            }
            Value::Object(o) => {
                only_fields(o, &["value", "primary", "label"])?;
                entry.insert("value".into(), Value::from(required_str(o, "value")?));
                let primary = super::input::optional_bool(o, "primary")?.unwrap_or(i == 0);
                entry.insert("primary".into(), Value::Bool(primary));
                if let Some(label) = optional_str(o, "label")? {
                    entry.insert("label".into(), Value::from(label));
                }
            }
            _ => return Err(bad()),
        }
        out.push(Value::Object(entry));
    }
    Ok(Value::Array(out))
}

/// Maps a Pipedrive answer: `{"success":true,"data":…}` with a 2xx status → `data`;
/// anything else with a JSON body → [`ProviderError::Upstream`] carrying Pipedrive's `error`
/// text, scrubbed of `api_token=` values and truncated.
pub(crate) fn parse_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Value, ProviderError> {
    let Some(json) = encode::parse_json(body).filter(|j| j.is_object()) else {
        if !encode::is_success(status) {
            return Err(ProviderError::Upstream { status, message: format!("pipedrive returned HTTP {status}") });
        }
        return Err(encode::garbage(status, content_type, body));
    };
    let success = json.get("success").and_then(Value::as_bool) == Some(true);
    if encode::is_success(status) && success {
        return Ok(json.get("data").cloned().unwrap_or(Value::Null));
    }
    let message = json
        .get("error")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(encode::scrub_message)
        .unwrap_or_else(|| "pipedrive request failed".to_owned());
    Err(ProviderError::Upstream { status, message })
}
