//! Google Ads REST: `ads:createCampaign` through `CampaignService.MutateCampaigns`
//! (`POST {base}/{version}/customers/{customerId}/campaigns:mutate`).
//!
//! Input → campaign mapping (REST JSON field names):
//! - `name` (required) → `name`
//! - `status` (`ENABLED` | `PAUSED`, default `PAUSED`) → `status`
//! - `advertising_channel_type` (enum name, default `SEARCH`) → `advertisingChannelType`
//! - `campaign_budget` (resource name `customers/{id}/campaignBudgets/{id}`) → `campaignBudget`
//! - `contains_eu_political_advertising` (bool) → `containsEuPoliticalAdvertising` enum; not
//!   defaulted: that declaration is the advertiser's to make, not the gateway's
//! - `validate_only` (bool) → request-level `validateOnly`
//! - `budget` (number, currency units) is accepted and validated because policies read it,
//!   but it is NOT sent: budgets are separate `CampaignBudget` resources, and creating one is
//!   a different call. Only a `campaign_budget` resource name links a budget.
//! - bidding is always `manualCpc: {}`; `SEARCH` campaigns get Google Search + Search Network
//!   `networkSettings`.

use super::encode::{self, header_value, path_segment};
use super::input::{account_digits, object, only_fields, optional_amount, optional_bool, optional_str, required_str};
use super::{endpoint, Credential, Destination, HttpProvidersConfig, ProviderError, UpstreamRequest};
use ::http::Method;
use serde_json::{json, Map, Value};

/// Tool id of the one Google Ads tool.
pub const CREATE_CAMPAIGN: &str = "ads:createCampaign";

const FIELDS: &[&str] = &[
    "name",
    "status",
    "advertising_channel_type",
    "campaign_budget",
    "budget",
    "customer_id",
    "contains_eu_political_advertising",
    "validate_only",
];

/// Builds the `campaigns:mutate` request.
pub(crate) fn build(
    input: &Value,
    cfg: &HttpProvidersConfig,
    credential: Credential<'_>,
) -> Result<UpstreamRequest, ProviderError> {
    let obj = object(input)?;
    only_fields(obj, FIELDS)?;
    let customer_id = customer_id(obj, cfg)?;
    let body = mutate_body(obj)?;

    let endpoint = endpoint::parse(&cfg.google_ads_base_url)?;
    let version = &cfg.google_ads_api_version;
    if version.len() < 2 || !version.starts_with('v') || !version[1..].bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProviderError::misconfigured("google ads api version must look like v21"));
    }
    let path_and_query = format!(
        "{}/{version}/customers/{}/campaigns:mutate",
        endpoint.path,
        path_segment("customer_id", &customer_id)?
    );

    let token = match credential {
        Credential::Bearer(t) if !t.is_empty() => header_value("access token", t)?,
        _ => return Err(ProviderError::misconfigured("google ads needs an OAuth bearer credential")),
    };
    let dev_token = cfg.google_ads_developer_token.0.trim();
    if dev_token.is_empty() {
        return Err(ProviderError::misconfigured("google ads developer token is not configured"));
    }
    let mut headers = vec![
        ("authorization".to_owned(), format!("Bearer {token}")),
        ("developer-token".to_owned(), header_value("developer token", dev_token)?),
    ];
    if let Some(login) = cfg.google_ads_login_customer_id.as_deref().filter(|s| !s.trim().is_empty()) {
        let digits = account_digits(login, 10)
            .ok_or_else(|| ProviderError::misconfigured("google ads login customer id must be 10 digits"))?;
        headers.push(("login-customer-id".to_owned(), digits));
    }
    headers.push(("content-type".to_owned(), "application/json".to_owned()));
    headers.push(("accept".to_owned(), "application/json".to_owned()));

    Ok(UpstreamRequest {
        endpoint,
        method: Method::POST,
        path_and_query,
        headers,
        body: Some(encode::json_body(&body)?),
        secret_names: vec!["authorization".to_owned(), "developer-token".to_owned()],
        destination: Destination::Operator,
    })
}

/// `customer_id` from the input (dashes stripped, 10 digits) or the configured default.
fn customer_id(obj: &Map<String, Value>, cfg: &HttpProvidersConfig) -> Result<String, ProviderError> {
    if let Some(v) = super::input::present(obj, "customer_id") {
        let raw = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(ProviderError::validation("customer_id must be a string of 10 digits")),
        };
        return account_digits(&raw, 10)
            .ok_or_else(|| ProviderError::validation("customer_id must be 10 digits (dashes allowed)"));
    }
    match cfg.google_ads_customer_id.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(default) => account_digits(default, 10)
            .ok_or_else(|| ProviderError::misconfigured("configured google ads customer id must be 10 digits")),
        None => Err(ProviderError::validation("customer_id is required (no default configured)")),
    }
}

/// The `MutateCampaignsRequest` body with one `create` operation.
fn mutate_body(obj: &Map<String, Value>) -> Result<Value, ProviderError> {
    let name = required_str(obj, "name")?;
    let status = super::input::optional_choice(obj, "status", &["ENABLED", "PAUSED"])?.unwrap_or("PAUSED");
    let channel = match optional_str(obj, "advertising_channel_type")? {
        None => "SEARCH".to_owned(),
        Some(c) if c.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') => c.to_ascii_uppercase(),
        Some(_) => return Err(ProviderError::validation("advertising_channel_type must be an enum name like SEARCH")),
    };
    optional_amount(obj, "budget")?;

    let mut campaign = Map::new();
    campaign.insert("name".into(), Value::from(name));
    campaign.insert("status".into(), Value::from(status));
    campaign.insert("advertisingChannelType".into(), Value::from(channel.as_str()));
    if let Some(budget) = optional_str(obj, "campaign_budget")? {
        if !is_budget_resource_name(budget) {
            return Err(ProviderError::validation(
                "campaign_budget must be a resource name like customers/1234567890/campaignBudgets/42",
            ));
        }
        campaign.insert("campaignBudget".into(), Value::from(budget));
    }
    campaign.insert("manualCpc".into(), json!({}));
    if channel == "SEARCH" {
        campaign.insert(
            "networkSettings".into(),
            json!({
                "targetGoogleSearch": true,
                "targetSearchNetwork": true,
                "targetContentNetwork": false,
                "targetPartnerSearchNetwork": false
            }),
        );
    }
    if let Some(eu) = optional_bool(obj, "contains_eu_political_advertising")? {
        let value = if eu { "CONTAINS_EU_POLITICAL_ADVERTISING" } else { "DOES_NOT_CONTAIN_EU_POLITICAL_ADVERTISING" };
        campaign.insert("containsEuPoliticalAdvertising".into(), Value::from(value));
    }

    let mut body = Map::new();
    body.insert("operations".into(), json!([{ "create": Value::Object(campaign) }]));
    if let Some(validate_only) = optional_bool(obj, "validate_only")? {
        body.insert("validateOnly".into(), Value::Bool(validate_only));
    }
    Ok(Value::Object(body))
}

/// `customers/{digits}/campaignBudgets/{digits}`.
fn is_budget_resource_name(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = s.split('/').collect();
    matches!(parts.as_slice(), ["customers", c, "campaignBudgets", b] if digits(c) && digits(b))
}

/// Maps a Google Ads answer: 2xx JSON → the body (`{"results":[{"resourceName":…}]}`);
/// `{"error":{"code","message","status",…}}` → [`ProviderError::Upstream`] with the gRPC
/// status name, the message and the first detailed `GoogleAdsFailure` message if any.
pub(crate) fn parse_response(status: u16, content_type: Option<&str>, body: &[u8]) -> Result<Value, ProviderError> {
    let Some(json) = encode::parse_json(body) else {
        if !encode::is_success(status) {
            return Err(ProviderError::Upstream { status, message: format!("google ads returned HTTP {status}") });
        }
        return Err(encode::garbage(status, content_type, body));
    };
    if encode::is_success(status) && json.get("error").is_none() {
        return Ok(json);
    }
    Err(ProviderError::Upstream { status, message: error_message(&json, status) })
}

fn error_message(json: &Value, status: u16) -> String {
    let err = json.get("error");
    let grpc_status = err.and_then(|e| e.get("status")).and_then(Value::as_str);
    let message = err.and_then(|e| e.get("message")).and_then(Value::as_str);
    let detail = err
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .and_then(|d| d.iter().find_map(|x| x.get("errors")?.as_array()?.first()?.get("message")?.as_str()));
    let mut parts: Vec<&str> = Vec::new();
    parts.extend(grpc_status);
    parts.extend(message);
    parts.extend(detail.filter(|d| Some(*d) != message));
    if parts.is_empty() {
        return format!("google ads returned HTTP {status}");
    }
    encode::scrub_message(&parts.join(": "))
}
