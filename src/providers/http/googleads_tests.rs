//! Google Ads request shape and response mapping.

use super::*;
use ::http::Method;
use serde_json::{json, Value};

fn cfg() -> HttpProvidersConfig {
    HttpProvidersConfig {
        google_ads_developer_token: Secret("DEV-TOKEN".into()),
        google_ads_login_customer_id: Some("111-222-3333".into()),
        google_ads_customer_id: Some("999-888-7777".into()),
        ..HttpProvidersConfig::default()
    }
}

fn req_with(cfg: &HttpProvidersConfig, input: Value) -> Result<UpstreamRequest, ProviderError> {
    assemble("ads:createCampaign", &input, cfg, Credential::Bearer("ya29.ACCESS"), None)
}

fn body(r: &UpstreamRequest) -> Value {
    serde_json::from_slice(r.body.as_deref().unwrap()).unwrap()
}

#[test]
fn create_campaign_exact_request() {
    let r = req_with(
        &cfg(),
        json!({
            "name": "Spring",
            "customer_id": "123-456-7890",
            "budget": 100,
            "campaign_budget": "customers/1234567890/campaignBudgets/55",
            "contains_eu_political_advertising": false
        }),
    )
    .unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.endpoint, super::endpoint::parse("https://googleads.googleapis.com").unwrap());
    assert_eq!(r.path_and_query, "/v21/customers/1234567890/campaigns:mutate");
    assert_eq!(
        r.headers,
        vec![
            ("authorization".into(), "Bearer ya29.ACCESS".into()),
            ("developer-token".into(), "DEV-TOKEN".into()),
            ("login-customer-id".into(), "1112223333".into()),
            ("content-type".into(), "application/json".into()),
            ("accept".into(), "application/json".into()),
        ]
    );
    assert_eq!(
        body(&r),
        json!({"operations": [{"create": {
            "name": "Spring",
            "status": "PAUSED",
            "advertisingChannelType": "SEARCH",
            "campaignBudget": "customers/1234567890/campaignBudgets/55",
            "manualCpc": {},
            "networkSettings": {
                "targetGoogleSearch": true,
                "targetSearchNetwork": true,
                "targetContentNetwork": false,
                "targetPartnerSearchNetwork": false
            },
            "containsEuPoliticalAdvertising": "DOES_NOT_CONTAIN_EU_POLITICAL_ADVERTISING"
        }}]})
    );
}

#[test]
fn defaults_version_and_overrides() {
    let cfg = HttpProvidersConfig {
        google_ads_base_url: "http://127.0.0.1:7000/ads".into(),
        google_ads_api_version: "v22".into(),
        google_ads_login_customer_id: None,
        ..cfg()
    };
    let r = req_with(
        &cfg,
        json!({"name": "n", "status": "enabled", "advertising_channel_type": "display", "validate_only": true}),
    )
    .unwrap();
    assert_eq!(r.endpoint.authority(), "127.0.0.1:7000");
    assert_eq!(r.path_and_query, "/ads/v22/customers/9998887777/campaigns:mutate");
    assert!(!r.headers.iter().any(|(k, _)| k == "login-customer-id"));
    assert_eq!(
        body(&r),
        json!({"operations": [{"create": {
            "name": "n", "status": "ENABLED", "advertisingChannelType": "DISPLAY", "manualCpc": {}
        }}], "validateOnly": true})
    );
}

#[test]
fn budget_number_is_not_sent() {
    let r = req_with(&cfg(), json!({"name": "n", "budget": 5000})).unwrap();
    let b = body(&r);
    let create = &b["operations"][0]["create"];
    assert!(create.get("campaignBudget").is_none() && create.get("budget").is_none(), "{b}");
    assert!(!String::from_utf8_lossy(r.body.as_deref().unwrap()).contains("5000"));
}

#[test]
fn validation_errors() {
    for input in [
        json!({}),
        json!({"name": "n", "customer_id": "123/../456"}),
        json!({"name": "n", "customer_id": "12345"}),
        json!({"name": "n", "status": "REMOVED"}),
        json!({"name": "n", "budget": "much"}),
        json!({"name": "n", "campaign_budget": "customers/1/campaignBudgets/../x"}),
        json!({"name": "n", "advertising_channel_type": "SEARCH/x"}),
        json!({"name": "n", "bidding": "max"}),
    ] {
        let err = req_with(&cfg(), input.clone()).unwrap_err();
        assert_eq!(err.status(), 422, "{input}: {err:?}");
    }
    let no_default = HttpProvidersConfig { google_ads_customer_id: None, ..cfg() };
    assert_eq!(req_with(&no_default, json!({"name": "n"})).unwrap_err().status(), 422);
}

#[test]
fn misconfiguration() {
    let cases = [
        HttpProvidersConfig { google_ads_developer_token: Secret::default(), ..cfg() },
        HttpProvidersConfig { google_ads_api_version: "21/../x".into(), ..cfg() },
        HttpProvidersConfig { google_ads_login_customer_id: Some("abc".into()), ..cfg() },
        HttpProvidersConfig { google_ads_developer_token: Secret("a\r\nx: y".into()), ..cfg() },
    ];
    for c in cases {
        assert!(matches!(req_with(&c, json!({"name": "n"})), Err(ProviderError::Misconfigured(_))), "{c:?}");
    }
    let err = assemble("ads:createCampaign", &json!({"name": "n"}), &cfg(), Credential::ApiTokenQuery("t"), None);
    assert!(matches!(err, Err(ProviderError::Misconfigured(_))));
}

fn parse(status: u16, body: &str) -> Result<Value, ProviderError> {
    parse_response("ads:createCampaign", None, status, Some("application/json; charset=UTF-8"), body.as_bytes())
}

#[test]
fn response_success() {
    let ok = r#"{"results":[{"resourceName":"customers/1234567890/campaigns/77"}]}"#;
    assert_eq!(parse(200, ok).unwrap(), json!({"results": [{"resourceName": "customers/1234567890/campaigns/77"}]}));
}

#[test]
fn response_error_shape() {
    let err = r#"{"error":{"code":400,"message":"Request contains an invalid argument.","status":"INVALID_ARGUMENT",
        "details":[{"@type":"type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
        "errors":[{"errorCode":{"campaignError":"DUPLICATE_CAMPAIGN_NAME"},"message":"Campaign name already exists."}]}]}}"#;
    assert_eq!(
        parse(400, err).unwrap_err(),
        ProviderError::Upstream {
            status: 400,
            message: "INVALID_ARGUMENT: Request contains an invalid argument.: Campaign name already exists.".into()
        }
    );
    let unauth = r#"{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}"#;
    assert_eq!(
        parse(401, unauth).unwrap_err(),
        ProviderError::Upstream {
            status: 401,
            message: "UNAUTHENTICATED: Request had invalid authentication credentials.".into()
        }
    );
    assert!(matches!(parse(200, "not json"), Err(ProviderError::Garbage(_))));
    assert!(matches!(parse(500, "<html/>"), Err(ProviderError::Upstream { status: 500, .. })));
}
