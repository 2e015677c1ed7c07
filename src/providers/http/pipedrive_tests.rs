//! Pipedrive request shapes and response mapping.

use super::*;
use ::http::Method;
use serde_json::{json, Value};

const TOKEN: &str = "tok en/+&=?";
const ENCODED: &str = "tok%20en%2F%2B%26%3D%3F";

fn cfg() -> HttpProvidersConfig {
    HttpProvidersConfig { pipedrive_company_domain: "acme".into(), ..HttpProvidersConfig::default() }
}

fn req(tool: &str, input: Value) -> Result<UpstreamRequest, ProviderError> {
    assemble(tool, &input, &cfg(), Credential::ApiTokenQuery(TOKEN), None)
}

fn body(r: &UpstreamRequest) -> Value {
    serde_json::from_slice(r.body.as_deref().unwrap()).unwrap()
}

fn assert_no_token_header(r: &UpstreamRequest) {
    for (k, v) in &r.headers {
        assert!(!v.contains("tok") && k != "authorization", "{k}: {v}");
    }
}

#[test]
fn create_deal_exact_request() {
    let r = req(
        "pipedrive:createDeal",
        json!({"title": "Big", "value": 1500.5, "currency": "eur", "person_id": 3, "org_id": "4", "stage_id": 5}),
    )
    .unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.endpoint, super::endpoint::parse("https://acme.pipedrive.com/api/v1").unwrap());
    assert_eq!(r.path_and_query, format!("/api/v1/deals?api_token={ENCODED}"));
    assert_eq!(
        r.headers,
        vec![("accept".into(), "application/json".into()), ("content-type".into(), "application/json".into())]
    );
    assert_eq!(
        body(&r),
        json!({"title": "Big", "value": 1500.5, "currency": "EUR", "person_id": 3, "org_id": 4, "stage_id": 5})
    );
    assert_no_token_header(&r);
}

#[test]
fn create_deal_validation() {
    for input in [
        json!({}),
        json!({"title": ""}),
        json!({"title": 3}),
        json!({"title": "t", "value": "lots"}),
        json!({"title": "t", "value": -1}),
        json!({"title": "t", "currency": "EURO"}),
        json!({"title": "t", "person_id": 0}),
        json!({"title": "t", "status": "deleted"}),
        json!({"title": "t", "visible_to": 3}),
        json!(["title"]),
    ] {
        let err = req("pipedrive:createDeal", input.clone()).unwrap_err();
        assert_eq!(err.status(), 422, "{input}: {err:?}");
    }
    let r = req("pipedrive:createDeal", json!({"title": "t", "value": "12.5", "status": "WON"})).unwrap();
    assert_eq!(body(&r), json!({"title": "t", "value": 12.5, "status": "won"}));
}

#[test]
fn get_deal_exact_request() {
    let r = req("pipedrive:getDeal", json!({"id": "42"})).unwrap();
    assert_eq!(r.method, Method::GET);
    assert_eq!(r.path_and_query, format!("/api/v1/deals/42?api_token={ENCODED}"));
    assert_eq!(r.headers, vec![("accept".into(), "application/json".into())]);
    assert_eq!(r.body, None);
    assert_no_token_header(&r);
}

#[test]
fn deal_ids_must_be_positive_integers() {
    for id in [json!("1/../../admin"), json!("../x"), json!("1.5"), json!(1.5), json!(-1), json!(0), json!("0x1f")] {
        for tool in ["pipedrive:getDeal", "pipedrive:updateDeal"] {
            let err = req(tool, json!({"id": id, "title": "t"})).unwrap_err();
            assert!(matches!(err, ProviderError::Validation(_)), "{tool} {id}: {err:?}");
        }
    }
    assert!(matches!(req("pipedrive:getDeal", json!({})), Err(ProviderError::Validation(_))));
}

#[test]
fn update_deal_exact_request() {
    let r = req("pipedrive:updateDeal", json!({"id": 9, "stage_id": 2, "value": 10})).unwrap();
    assert_eq!(r.method, Method::PUT);
    assert_eq!(r.path_and_query, format!("/api/v1/deals/9?api_token={ENCODED}"));
    assert_eq!(body(&r), json!({"stage_id": 2, "value": 10}));
    let err = req("pipedrive:updateDeal", json!({"id": 9})).unwrap_err();
    assert_eq!(err.status(), 422);
}

#[test]
fn create_contact_normalises_email_and_phone() {
    let r = req(
        "pipedrive:createContact",
        json!({"name": "Ann", "email": "ann@x.io", "phone": ["+1 555", {"value": "+2", "label": "work"}], "org_id": 7}),
    )
    .unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.path_and_query, format!("/api/v1/persons?api_token={ENCODED}"));
    assert_eq!(
        body(&r),
        json!({
            "name": "Ann",
            "email": [{"value": "ann@x.io", "primary": true}],
            "phone": [{"value": "+1 555", "primary": true}, {"value": "+2", "primary": false, "label": "work"}],
            "org_id": 7
        })
    );
    for input in [json!({"email": "a@b"}), json!({"name": "A", "email": []}), json!({"name": "A", "phone": 5})] {
        assert_eq!(req("pipedrive:createContact", input).unwrap_err().status(), 422);
    }
}

#[test]
fn base_url_override_and_domain_checks() {
    let cfg = HttpProvidersConfig {
        pipedrive_base_url: Some("http://127.0.0.1:9000/fake/v1".into()),
        ..HttpProvidersConfig::default()
    };
    let r = assemble("pipedrive:getDeal", &json!({"id": 1}), &cfg, Credential::ApiTokenQuery("t"), None).unwrap();
    assert_eq!(r.endpoint.authority(), "127.0.0.1:9000");
    assert_eq!(r.path_and_query, "/fake/v1/deals/1?api_token=t");
    for domain in ["", "a.b", "evil.com/x", "-a"] {
        assert!(matches!(pipedrive::endpoint(domain, None), Err(ProviderError::Misconfigured(_))), "{domain}");
    }
}

#[test]
fn needs_api_token_credential() {
    for c in [Credential::Bearer("t"), Credential::None, Credential::ApiTokenQuery("")] {
        let err = assemble("pipedrive:getDeal", &json!({"id": 1}), &cfg(), c, None).unwrap_err();
        assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
    }
}

fn parse(status: u16, body: &str) -> Result<Value, ProviderError> {
    parse_response("pipedrive:getDeal", None, status, Some("application/json"), body.as_bytes())
}

#[test]
fn response_success_is_data() {
    let v = parse(200, r#"{"success":true,"data":{"id":42,"title":"Big"},"additional_data":{}}"#).unwrap();
    assert_eq!(v, json!({"id": 42, "title": "Big"}));
    assert_eq!(parse(201, r#"{"success":true}"#).unwrap(), Value::Null);
}

#[test]
fn response_errors_are_upstream_and_scrubbed() {
    let err = parse(404, r#"{"success":false,"error":"Deal not found","error_info":"see docs","data":null}"#);
    assert_eq!(err.unwrap_err(), ProviderError::Upstream { status: 404, message: "Deal not found".into() });
    let err = parse(200, r#"{"success":false,"error":"Bad request on /v1/deals?api_token=abc123secret"}"#).unwrap_err();
    match err {
        ProviderError::Upstream { status: 200, message } => {
            assert!(!message.contains("abc123secret") && message.contains("api_token=***"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let long = format!(r#"{{"success":false,"error":"{}"}}"#, "x".repeat(5000));
    match parse(400, &long).unwrap_err() {
        ProviderError::Upstream { message, .. } => assert!(message.chars().count() <= 301),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        parse(401, "{}").unwrap_err(),
        ProviderError::Upstream { status: 401, message: "pipedrive request failed".into() }
    );
}

#[test]
fn response_non_json() {
    let err = parse_response("pipedrive:createDeal", None, 200, Some("text/html"), b"<html>api_token=x</html>");
    match err.unwrap_err() {
        ProviderError::Garbage(m) => assert!(!m.contains("api_token=x") && m.contains("text/html"), "{m}"),
        other => panic!("{other:?}"),
    }
    let err = parse_response("pipedrive:createDeal", None, 503, None, b"<html>down</html>").unwrap_err();
    assert!(matches!(err, ProviderError::Upstream { status: 503, .. }));
}
