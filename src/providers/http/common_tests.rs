//! Endpoint parsing, error mapping, scrubbing and redaction.

use super::encode::{path_segment, query_string, scrub_message, truncate_chars};
use super::*;
use serde_json::json;

#[test]
fn endpoint_parses_scheme_host_port_and_base_path_as_the_upstream_endpoint() {
    let e = super::endpoint::parse("https://Acme.pipedrive.com/api/v1/").unwrap();
    assert_eq!(e, Endpoint { tls: true, host: "acme.pipedrive.com".into(), port: 443, path: "/api/v1".into() });
    assert_eq!(e.authority(), "acme.pipedrive.com");
    let e = super::endpoint::parse("http://127.0.0.1:9000").unwrap();
    assert_eq!((e.tls, e.port, e.path.as_str(), e.authority()), (false, 9000, "", "127.0.0.1:9000".into()));
    let e = super::endpoint::parse("http://[::1]:8080/x").unwrap();
    assert_eq!((e.host.as_str(), e.authority(), e.path.as_str()), ("::1", "[::1]:8080".into(), "/x"));
    assert_eq!(super::endpoint::parse("http://localhost:80").unwrap().authority(), "localhost");
}

#[test]
fn endpoint_refuses_odd_urls() {
    for bad in [
        "ftp://h",
        "h.com",
        "https://",
        "https://user:pw@h.com",
        "https://h.com/a?x=1",
        "https://h.com/#f",
        "https://h.com:0",
        "https://h.com:+80",
        "https://h.com:99999",
        "https://h.com/a/../b",
        "https://h .com",
        "https://h.com/a b",
        "http://[zz]:1",
        "http://[::1]x",
    ] {
        let err = super::endpoint::parse(bad).unwrap_err();
        assert!(matches!(err, ProviderError::Misconfigured(_)), "{bad}: {err:?}");
    }
}

#[test]
fn error_status_and_code() {
    let cases = [
        (ProviderError::Validation("v".into()), 422, "VALIDATION_ERROR"),
        (ProviderError::NotFound("n".into()), 404, "NOT_FOUND"),
        (ProviderError::Upstream { status: 400, message: "m".into() }, 502, "PROVIDER_ERROR"),
        (ProviderError::Garbage("g".into()), 502, "PROVIDER_ERROR"),
        (ProviderError::Misconfigured("c".into()), 502, "PROVIDER_ERROR"),
        (ProviderError::CredentialNotBound("b".into()), 403, "FORBIDDEN"),
    ];
    for (err, status, code) in cases {
        assert_eq!((err.status(), err.code()), (status, code));
    }
}

#[test]
fn unknown_tool_is_not_found() {
    let cfg = HttpProvidersConfig::default();
    let err = assemble("pipedrive:deleteDeal", &json!({}), &cfg, Credential::None, None).unwrap_err();
    assert_eq!(err.status(), 404);
    let err = assemble("x:y", &json!({}), &cfg, Credential::None, None).unwrap_err();
    assert_eq!(err.code(), "NOT_FOUND");
    assert_eq!(parse_response("x:y", None, 200, None, b"{}").unwrap_err().status(), 404);
}

#[test]
fn encoding_helpers() {
    assert_eq!(path_segment("id", "1/../../admin").unwrap(), "1%2F..%2F..%2Fadmin");
    assert_eq!(path_segment("id", "a b?c#d%e").unwrap(), "a%20b%3Fc%23d%25e");
    for bad in ["", ".", ".."] {
        assert!(matches!(path_segment("id", bad), Err(ProviderError::Validation(_))));
    }
    assert_eq!(query_string(&[("api_token", "a+b&c=d/é")]), "?api_token=a%2Bb%26c%3Dd%2F%C3%A9");
    assert_eq!(query_string::<&str, &str>(&[]), "");
}

#[test]
fn scrub_removes_token_values_and_truncates() {
    let s = scrub_message("failed GET https://x/api/v1/deals?api_token=SECRET123&x=1 bad");
    assert!(!s.contains("SECRET123"), "{s}");
    assert!(s.contains("api_token=***&x=1"), "{s}");
    let s = scrub_message("{\"API_TOKEN\":\"SECRET\"} api_token%3DSECRET2 Bearer ya29.SECRET3\n");
    for secret in ["SECRET\"", "SECRET2", "SECRET3"] {
        assert!(!s.contains(secret), "{s}");
    }
    let long = "é".repeat(1000);
    assert_eq!(scrub_message(&long).chars().count(), 301);
    assert_eq!(truncate_chars("abc", 3), "abc");
}

#[test]
fn debug_never_shows_secrets() {
    let cfg = HttpProvidersConfig {
        google_ads_developer_token: Secret("DEVTOKEN".into()),
        google_ads_customer_id: Some("123-456-7890".into()),
        pipedrive_company_domain: "acme".into(),
        ..HttpProvidersConfig::default()
    };
    assert!(!format!("{cfg:?}").contains("DEVTOKEN"));
    let creds = [
        Credential::Bearer("BEARERTOK"),
        Credential::ApiTokenQuery("PDTOKEN"),
        Credential::Header { name: "x-api-key", value: "HDRTOK" },
    ];
    for c in creds {
        assert!(!format!("{c:?}").contains("TOK"), "{c:?}");
    }
    let req =
        assemble("pipedrive:getDeal", &json!({"id": 7}), &cfg, Credential::ApiTokenQuery("PDTOKEN"), None).unwrap();
    assert!(req.path_and_query.contains("PDTOKEN"));
    let dbg = format!("{req:?}");
    assert!(!dbg.contains("PDTOKEN") && dbg.contains("api_token=***"), "{dbg}");
    let req =
        assemble("ads:createCampaign", &json!({"name": "n"}), &cfg, Credential::Bearer("BEARERTOK"), None).unwrap();
    let dbg = format!("{req:?}");
    assert!(!dbg.contains("BEARERTOK") && !dbg.contains("DEVTOKEN"), "{dbg}");
}

#[test]
fn config_deserialises_with_defaults() {
    let cfg: HttpProvidersConfig =
        serde_json::from_value(json!({"pipedrive_company_domain": "acme", "google_ads_developer_token": "t"})).unwrap();
    assert_eq!(cfg.google_ads_base_url, "https://googleads.googleapis.com");
    assert_eq!(cfg.google_ads_api_version, "v21");
    assert_eq!(cfg.google_ads_developer_token, Secret("t".into()));
    assert!(serde_json::from_value::<HttpProvidersConfig>(json!({"nope": 1})).is_err());
}
