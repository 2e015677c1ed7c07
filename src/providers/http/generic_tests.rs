//! Manifest-described HTTP tools.

use super::*;
use ::http::Method;
use serde_json::{json, Value};

fn spec(v: Value) -> HttpToolSpec {
    serde_json::from_value(v).unwrap()
}

fn items_spec() -> HttpToolSpec {
    spec(json!({
        "method": "POST",
        "path": "/items/{id}",
        "query": {"q": "{input.q}", "tag": "t-{input.tag}"},
        "body": {"mapping": {"name": "{input.title}", "fixed": 1, "nested": {"n": "{input.n}"}, "gone": "{input.nope}"}},
        "base_url": "http://127.0.0.1:8081/api",
        "auth": {"kind": "header", "name": "X-Api-Key"}
    }))
}

fn run(s: &HttpToolSpec, input: Value, c: Credential<'_>) -> Result<UpstreamRequest, ProviderError> {
    assemble("crm:upsertItem", &input, &HttpProvidersConfig::default(), c, Some(s))
}

#[test]
fn manifest_section_deserialises() {
    let manifest = json!({"http": {"method": "get", "path": "/x", "base_url": "https://h", "response": "text"}});
    let s: HttpToolSpec = serde_json::from_value(manifest["http"].clone()).unwrap();
    assert_eq!((s.response, s.effective_body()), (ResponseKind::Text, BodySpec::Mode(BodyMode::None)));
    let s = spec(json!({"method": "PUT", "path": "/x", "base_url": "https://h", "body": "none"}));
    assert_eq!(s.body, Some(BodySpec::Mode(BodyMode::None)));
    let s = spec(json!({"method": "PUT", "path": "/x", "base_url": "https://h"}));
    assert_eq!(s.effective_body(), BodySpec::Mode(BodyMode::Input));
    assert!(
        serde_json::from_value::<HttpToolSpec>(json!({"method": "GET", "path": "/", "base_url": "h", "x": 1})).is_err()
    );
}

#[test]
fn exact_request_with_mapping_query_and_header_auth() {
    let r = run(
        &items_spec(),
        json!({"id": "a b", "q": "x&y=z", "tag": 5, "title": "T", "n": [1]}),
        Credential::Bearer("SEKRET"),
    )
    .unwrap();
    assert_eq!(r.method, Method::POST);
    assert_eq!(r.endpoint.authority(), "127.0.0.1:8081");
    assert_eq!(r.path_and_query, "/api/items/a%20b?q=x%26y%3Dz&tag=t-5");
    assert_eq!(
        r.headers,
        vec![
            ("x-api-key".into(), "SEKRET".into()),
            ("accept".into(), "application/json".into()),
            ("content-type".into(), "application/json".into()),
        ]
    );
    let body: Value = serde_json::from_slice(r.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!({"name": "T", "fixed": 1, "nested": {"n": [1]}}));
    assert!(!format!("{r:?}").contains("SEKRET"));
}

#[test]
fn optional_query_is_dropped_but_interpolated_missing_is_an_error() {
    let r = run(&items_spec(), json!({"id": 1, "tag": "a"}), Credential::Bearer("k")).unwrap();
    assert_eq!(r.path_and_query, "/api/items/1?tag=t-a");
    let err = run(&items_spec(), json!({"id": 1}), Credential::Bearer("k")).unwrap_err();
    assert_eq!(err, ProviderError::Validation("tag is required".into()));
}

#[test]
fn path_params_cannot_change_path_structure() {
    let ok = [
        ("1/../../admin", "/api/items/1%2F..%2F..%2Fadmin"),
        ("../x", "/api/items/..%2Fx"),
        ("a?b#c", "/api/items/a%3Fb%23c"),
    ];
    for (id, path) in ok {
        let r = run(&items_spec(), json!({"id": id, "tag": 1}), Credential::Bearer("k")).unwrap();
        assert_eq!(r.path_and_query.split('?').next(), Some(path), "{id}");
    }
    for id in [json!(".."), json!("."), json!(""), json!({"a": 1}), json!([1]), Value::Null] {
        let err = run(&items_spec(), json!({"id": id, "tag": 1}), Credential::Bearer("k")).unwrap_err();
        assert!(matches!(err, ProviderError::Validation(_)), "{id}: {err:?}");
    }
    let two = spec(json!({"method": "GET", "path": "/x/{a}{b}", "base_url": "http://h"}));
    assert!(matches!(run(&two, json!({"a": ".", "b": "."}), Credential::None), Err(ProviderError::Validation(_))));
    assert!(matches!(
        run(&items_spec(), json!({"tag": 1}), Credential::Bearer("k")),
        Err(ProviderError::Validation(_))
    ));
}

#[test]
fn auth_placements() {
    let q =
        spec(json!({"method": "GET", "path": "/p", "base_url": "https://h", "auth": {"kind": "query", "name": "key"}}));
    let r = run(&q, json!({}), Credential::ApiTokenQuery("s/ecret")).unwrap();
    assert_eq!(r.path_and_query, "/p?key=s%2Fecret");
    assert!(r.headers.iter().all(|(_, v)| !v.contains("ecret")));
    assert!(!format!("{r:?}").contains("ecret"));
    let b = spec(json!({"method": "DELETE", "path": "/p/{id}", "base_url": "https://h", "auth": {"kind": "bearer"}}));
    let r = run(&b, json!({"id": 3}), Credential::Header { name: "x", value: "TOK" }).unwrap();
    assert_eq!((r.method.clone(), r.body.clone()), (Method::DELETE, None));
    assert_eq!(r.headers[0], ("authorization".into(), "Bearer TOK".into()));
    assert!(matches!(run(&b, json!({"id": 3}), Credential::None), Err(ProviderError::Misconfigured(_))));
    let none = spec(json!({"method": "GET", "path": "/p", "base_url": "https://h", "response": "text"}));
    let r = run(&none, json!({}), Credential::Header { name: "X-Key", value: "HV" }).unwrap();
    assert_eq!(r.headers, vec![("x-key".to_owned(), "HV".to_owned())]);
    assert!(!format!("{r:?}").contains("HV"));
}

#[test]
fn invalid_specs_are_misconfigured() {
    for bad in [
        json!({"method": "TRACE", "path": "/p", "base_url": "https://h"}),
        json!({"method": "GET", "path": "p", "base_url": "https://h"}),
        json!({"method": "GET", "path": "/p/{id", "base_url": "https://h"}),
        json!({"method": "GET", "path": "/p/{a b}", "base_url": "https://h"}),
        json!({"method": "GET", "path": "/p/../x", "base_url": "https://h"}),
        json!({"method": "GET", "path": "/p?x=1", "base_url": "https://h"}),
        json!({"method": "GET", "path": "/p", "base_url": "ftp://h"}),
        json!({"method": "GET", "path": "/p", "base_url": "https://h", "auth": {"kind": "header", "name": "Host"}}),
        json!({"method": "GET", "path": "/p", "base_url": "https://h", "auth": {"kind": "query"}}),
        json!({"method": "POST", "path": "/p", "base_url": "https://h", "body": {"mapping": {"a": "{x"}}}),
    ] {
        let s = spec(bad.clone());
        assert!(matches!(s.validate(), Err(ProviderError::Misconfigured(_))), "{bad}");
        assert!(matches!(run(&s, json!({}), Credential::Bearer("k")), Err(ProviderError::Misconfigured(_))), "{bad}");
    }
}

#[test]
fn body_input_sends_whole_input() {
    let s = spec(json!({"method": "PATCH", "path": "/p", "base_url": "https://h"}));
    let r = run(&s, json!({"a": 1}), Credential::None).unwrap();
    assert_eq!(r.body.as_deref(), Some(br#"{"a":1}"#.as_slice()));
    assert_eq!(run(&s, json!([1]), Credential::None).unwrap_err().status(), 422);
}

#[test]
fn builtin_ids_ignore_specs() {
    let s = spec(json!({"method": "GET", "path": "/steal", "base_url": "https://evil.example"}));
    let cfg = HttpProvidersConfig { pipedrive_company_domain: "acme".into(), ..HttpProvidersConfig::default() };
    let r = assemble("pipedrive:getDeal", &json!({"id": 1}), &cfg, Credential::ApiTokenQuery("t"), Some(&s)).unwrap();
    assert_eq!(r.endpoint.host, "acme.pipedrive.com");
}

#[test]
fn responses() {
    let json_spec = items_spec();
    let text = spec(json!({"method": "GET", "path": "/p", "base_url": "https://h", "response": "text"}));
    let p = |s: &HttpToolSpec, status: u16, body: &str| parse_response("crm:x", Some(s), status, None, body.as_bytes());
    assert_eq!(p(&json_spec, 200, r#"{"id":1}"#).unwrap(), json!({"id": 1}));
    assert_eq!(p(&json_spec, 204, "").unwrap(), Value::Null);
    assert!(matches!(p(&json_spec, 200, "plain"), Err(ProviderError::Garbage(_))));
    assert_eq!(p(&text, 200, "plain").unwrap(), json!("plain"));
    assert!(matches!(parse_response("crm:x", Some(&text), 200, None, &[0xff, 0xfe]), Err(ProviderError::Garbage(_))));
    assert_eq!(
        p(&json_spec, 403, r#"{"error":{"message":"nope token=1 api_token=zzz"}}"#).unwrap_err(),
        ProviderError::Upstream { status: 403, message: "nope token=1 api_token=***".into() }
    );
    assert_eq!(
        p(&json_spec, 500, "oops").unwrap_err(),
        ProviderError::Upstream { status: 500, message: "upstream returned HTTP 500".into() }
    );
}

#[test]
fn credential_header_name_must_be_a_token() {
    let none = spec(json!({"method": "GET", "path": "/p", "base_url": "https://h"}));
    let err = run(&none, json!({}), Credential::Header { name: "x\r\nevil", value: "v" }).unwrap_err();
    assert!(matches!(err, ProviderError::Misconfigured(_)));
}
