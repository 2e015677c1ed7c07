//! Broker tests against the fake token endpoint ([`super::test_fake_server`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde_json::Value;

use super::test_fake_server::{token_json, FakeServer};
use super::*;

const CLIENT_SECRET: &str = "cs-Sup3r+Secret/=value";
const REFRESH_TOKEN: &str = "rt-1-very-secret-refresh-token";
const HMAC_KEY: &[u8] = b"test-hmac-key-for-gateway-minted-jwts";
const AGENT_JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.agent-signature";

fn cfg(yaml: &str) -> CredentialConfig {
    serde_yaml_ng::from_str(yaml).expect("config parses")
}

fn providers(list: &[(&str, CredentialConfig)]) -> BTreeMap<String, CredentialConfig> {
    list.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn signer() -> Signer {
    Signer::new(EncodingKey::from_secret(HMAC_KEY), Algorithm::HS256, "gw-1").expect("signer")
}

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock {
    base: SystemTime,
    offset: Arc<AtomicU64>,
}

impl TestClock {
    fn new() -> TestClock {
        TestClock { base: SystemTime::now(), offset: Arc::new(AtomicU64::new(0)) }
    }
    fn advance(&self, secs: u64) {
        self.offset.fetch_add(secs, Ordering::SeqCst);
    }
    fn install(&self, broker: Broker) -> Broker {
        let c = self.clone();
        broker.with_clock(move || c.base + Duration::from_secs(c.offset.load(Ordering::SeqCst)))
    }
}

fn broker(list: &[(&str, CredentialConfig)], clock: &TestClock) -> Broker {
    let b = Broker::new(providers(list), Some(signer()), BrokerOptions::default()).expect("broker builds");
    clock.install(b)
}

fn alice() -> Caller {
    Caller::new("alice", "acme")
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| x.to_string()).collect()
}

fn cc_config(url: &str, auth: &str) -> CredentialConfig {
    cfg(&format!(
        "kind: client_credentials\ntoken_url: {url}\nclient_id: gw client\nclient_secret: \"{CLIENT_SECRET}\"\n\
         client_auth: {auth}\nscopes: [read, admin]\naudience: https://api.example"
    ))
}

fn assert_no_secret(text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{text:?} leaks {s:?}");
    }
}

// ---- static ----

#[tokio::test]
async fn static_secret_inline_env_and_file() {
    std::env::set_var("BROKER_TEST_STATIC_KEY", "env-api-key");
    let dir = std::env::temp_dir().join(format!("broker-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("key");
    std::fs::write(&file, "  file-api-key\n").expect("write");
    let clock = TestClock::new();
    let b = broker(
        &[
            ("inline", cfg("kind: static\nsecret: inline-api-key")),
            ("env", cfg("kind: static\nsecret_env: BROKER_TEST_STATIC_KEY\ntoken_type: ApiKey")),
            ("file", cfg(&format!("kind: static\nsecret_file: {}", file.display()))),
        ],
        &clock,
    );
    let c = b.credential("inline", &alice(), &[]).await.expect("inline");
    assert_eq!(c.secret(), "inline-api-key");
    assert_eq!(c.token_type, "Bearer");
    assert_eq!(c.meta(), serde_json::json!({"token_type": "Bearer", "expires_in": null, "audience": null}));
    let c = b.credential("env", &alice(), &[]).await.expect("env");
    assert_eq!((c.secret(), c.token_type.as_str()), ("env-api-key", "ApiKey"));
    let c = b.credential("file", &alice(), &[]).await.expect("file");
    assert_eq!(c.secret(), "file-api-key");
    assert_no_secret(&format!("{c:?} {} {b:?}", c.meta()), &["file-api-key", "inline-api-key", "env-api-key"]);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- client credentials ----

#[tokio::test]
async fn client_credentials_basic_auth_and_cache_hit() {
    let server = FakeServer::start(|_, n| (200, token_json(&format!("at-{n}"), Some(3600))));
    let clock = TestClock::new();
    let b = broker(&[("cc", cc_config(&server.url, "basic"))], &clock);

    let c = b.credential("cc", &alice(), &[]).await.expect("credential");
    assert_eq!(c.secret(), "at-1");
    assert_eq!(c.token_type, "Bearer");
    assert_eq!(c.audience.as_deref(), Some("https://api.example"));
    let meta = c.meta();
    assert!(meta["expires_in"].as_u64().is_some_and(|s| s <= 3600));
    assert!(!meta.to_string().contains("at-1"));

    let req = server.last();
    assert_eq!(req.path, "/token");
    assert_eq!(req.form("grant_type"), Some("client_credentials"));
    assert_eq!(req.form("scope"), Some("admin read"), "configured scopes, sorted");
    assert_eq!(req.form("audience"), Some("https://api.example"));
    assert_eq!(req.basic_auth(), Some(("gw client".to_string(), CLIENT_SECRET.to_string())));
    assert_eq!(req.form("client_secret"), None);
    assert!(req.headers.get("content-type").is_some_and(|v| v.starts_with("application/x-www-form-urlencoded")));

    // Cache hit: same key, no request. Scope order does not matter.
    let c = b.credential("cc", &alice(), &[]).await.expect("cached");
    assert_eq!(c.secret(), "at-1");
    assert_eq!(server.hits(), 1);

    // Explicit scopes are a different key; order and duplicates do not matter.
    let c = b.credential("cc", &alice(), &scopes(&["b", "a", "b"])).await.expect("scoped");
    assert_eq!(c.secret(), "at-2");
    assert_eq!(server.last().form("scope"), Some("a b"));
    let c = b.credential("cc", &alice(), &scopes(&["a", "b"])).await.expect("scoped cached");
    assert_eq!(c.secret(), "at-2");

    // Another tenant is another key.
    let c = b.credential("cc", &Caller::new("alice", "globex"), &[]).await.expect("other tenant");
    assert_eq!(c.secret(), "at-3");
    // But another subject of the same tenant shares the client token.
    let c = b.credential("cc", &Caller::new("bob", "acme"), &[]).await.expect("other sub");
    assert_eq!(c.secret(), "at-1");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn client_credentials_post_auth() {
    let server = FakeServer::start(|_, _| (200, token_json("at", None)));
    let clock = TestClock::new();
    let b = broker(&[("cc", cc_config(&server.url, "post"))], &clock);
    let c = b.credential("cc", &alice(), &[]).await.expect("credential");
    assert_eq!(c.expires_at, None);
    let req = server.last();
    assert_eq!(req.headers.get("authorization"), None);
    assert_eq!(req.form("client_id"), Some("gw client"));
    assert_eq!(req.form("client_secret"), Some(CLIENT_SECRET));

    // No expires_in: kept for DEFAULT_TTL, then fetched again.
    clock.advance(DEFAULT_TTL.as_secs() - 1);
    b.credential("cc", &alice(), &[]).await.expect("cached");
    assert_eq!(server.hits(), 1);
    clock.advance(1);
    b.credential("cc", &alice(), &[]).await.expect("refetched");
    assert_eq!(server.hits(), 2);
}

// ---- expiry ----

#[tokio::test]
async fn refresh_margin_triggers_refresh() {
    let server = FakeServer::start(|_, n| (200, token_json(&format!("at-{n}"), Some(3600))));
    let clock = TestClock::new();
    let b = broker(&[("cc", cc_config(&server.url, "basic"))], &clock);
    assert_eq!(b.credential("cc", &alice(), &[]).await.expect("1").secret(), "at-1");
    clock.advance(3600 - 60 - 1);
    assert_eq!(b.credential("cc", &alice(), &[]).await.expect("still fresh").secret(), "at-1");
    clock.advance(1); // now exactly expires_at - margin
    assert_eq!(b.credential("cc", &alice(), &[]).await.expect("refreshed").secret(), "at-2");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn short_tokens_refresh_at_half_life() {
    // expires_in 61 with margin 60: refreshing at exp - 60 would mean one request per call;
    // the entry is kept for half its lifetime instead.
    let server = FakeServer::start(|_, n| (200, token_json(&format!("at-{n}"), Some(61))));
    let clock = TestClock::new();
    let b = broker(&[("cc", cc_config(&server.url, "basic"))], &clock);
    assert_eq!(b.credential("cc", &alice(), &[]).await.expect("1").secret(), "at-1");
    clock.advance(2);
    assert_eq!(b.credential("cc", &alice(), &[]).await.expect("2").secret(), "at-1");
    clock.advance(29); // 31 s > 30.5 s
    assert_eq!(b.credential("cc", &alice(), &[]).await.expect("3").secret(), "at-2");
    assert_eq!(server.hits(), 2);
}

// ---- single flight ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_make_one_request() {
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>(); // never sent on: dropped to release
    let arrived_tx = parking_lot::Mutex::new(arrived_tx);
    let go_rx = parking_lot::Mutex::new(go_rx);
    let server = FakeServer::start(move |_, n| {
        let _ = arrived_tx.lock().send(());
        let _ = go_rx.lock().recv(); // hold the answer until the test says go
        (200, token_json(&format!("at-{n}"), Some(3600)))
    });
    let clock = TestClock::new();
    let b = Arc::new(broker(&[("cc", cc_config(&server.url, "basic"))], &clock));
    let started = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (b, started) = (b.clone(), started.clone());
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                b.credential("cc", &alice(), &[]).await
            })
        })
        .collect();
    // The first request is in flight (and held); let every task start before releasing it.
    tokio::task::spawn_blocking(move || arrived_rx.recv()).await.expect("join").expect("request arrived");
    while started.load(Ordering::SeqCst) < 20 {
        tokio::task::yield_now().await;
    }
    drop(go_tx); // releases the held request (and any others, so a regression fails, not hangs)
    for t in tasks {
        assert_eq!(t.await.expect("join").expect("credential").secret(), "at-1");
    }
    assert_eq!(server.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn waiters_share_a_failure_but_it_is_not_cached() {
    let (arrived_tx, arrived_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>(); // never sent on: dropped to release
    let arrived_tx = parking_lot::Mutex::new(arrived_tx);
    let go_rx = parking_lot::Mutex::new(go_rx);
    let server = FakeServer::start(move |_, n| {
        if n == 1 {
            let _ = arrived_tx.lock().send(());
            let _ = go_rx.lock().recv();
            return (503, r#"{"error":"temporarily_unavailable"}"#.to_string());
        }
        (200, token_json(&format!("at-{n}"), Some(3600)))
    });
    let clock = TestClock::new();
    let b = Arc::new(broker(&[("cc", cc_config(&server.url, "basic"))], &clock));
    let first = {
        let b = b.clone();
        tokio::spawn(async move { b.credential("cc", &alice(), &[]).await })
    };
    tokio::task::spawn_blocking(move || arrived_rx.recv()).await.expect("join").expect("arrived");
    // These start while the failing request is in flight: they queue behind it.
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.credential("cc", &alice(), &[]).await })
        })
        .collect();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    drop(go_tx); // releases the held request (and any others, so a regression fails, not hangs)
    let err = first.await.expect("join").expect_err("first fails");
    assert_eq!(err.status_code(), 502);
    for w in waiters {
        // Either shared the failure, or (if it reached the lock after) fetched afresh.
        let _ = w.await.expect("join");
    }
    // A later call retries: the failure was not cached.
    let c = b.credential("cc", &alice(), &[]).await.expect("retry succeeds");
    assert!(c.secret().starts_with("at-"));
    assert!(server.hits() <= 3, "waiters must not each retry: {} hits", server.hits());
}

// ---- refresh token ----

#[tokio::test]
async fn refresh_token_google_style_and_rotation() {
    let server = FakeServer::start(|req, n| {
        let body = if n == 1 {
            serde_json::json!({"access_token": "at-1", "expires_in": 3599, "token_type": "Bearer",
                               "refresh_token": "rt-2-rotated", "scope": "https://www.googleapis.com/auth/adwords"})
        } else {
            serde_json::json!({"access_token": format!("at-{n}"), "expires_in": "3599", "token_type": "Bearer"})
        };
        assert_eq!(req.form("grant_type"), Some("refresh_token"));
        (200, body.to_string())
    });
    let clock = TestClock::new();
    let config = cfg(&format!(
        "kind: refresh_token\ntoken_url: {}\nclient_id: 1234.apps.googleusercontent.com\n\
         client_secret: \"{CLIENT_SECRET}\"\nrefresh_token: {REFRESH_TOKEN}",
        server.url
    ));
    assert_no_secret(&format!("{config:?}"), &[CLIENT_SECRET, REFRESH_TOKEN]);
    let b = broker(&[("google_ads", config)], &clock);

    assert_eq!(b.credential("google_ads", &alice(), &[]).await.expect("1").secret(), "at-1");
    let req = server.last();
    assert_eq!(req.headers.get("authorization"), None, "Google: client auth in the body");
    assert_eq!(req.form("client_id"), Some("1234.apps.googleusercontent.com"));
    assert_eq!(req.form("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(req.form("refresh_token"), Some(REFRESH_TOKEN));
    assert_eq!(req.form("scope"), None);

    clock.advance(3599);
    let c = b.credential("google_ads", &alice(), &[]).await.expect("2");
    assert_eq!(c.secret(), "at-2");
    assert_eq!(server.last().form("refresh_token"), Some("rt-2-rotated"), "rotated token used");
    clock.advance(3599);
    b.credential("google_ads", &alice(), &[]).await.expect("3");
    assert_eq!(server.last().form("refresh_token"), Some("rt-2-rotated"), "kept when not rotated again");
}

// ---- token exchange ----

fn decode(token: &str, aud: &str) -> Value {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[aud]);
    v.set_issuer(&["https://gateway.example"]);
    let data = jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(HMAC_KEY), &v).expect("valid JWT");
    assert_eq!(data.header.kid.as_deref(), Some("gw-1"));
    data.claims
}

#[tokio::test]
async fn token_exchange_with_minted_subject() {
    let server = FakeServer::start(|req, n| {
        let subject = req.form("subject_token").unwrap_or_default().to_string();
        assert_ne!(subject, AGENT_JWT);
        assert!(!req.form.values().any(|v| v.contains(AGENT_JWT)));
        let body = serde_json::json!({"access_token": format!("xt-{n}"), "issued_token_type":
            "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer", "expires_in": 600});
        (200, body.to_string())
    });
    let clock = TestClock::new();
    let config = cfg(&format!(
        "kind: token_exchange\ntoken_url: {}\nclient_id: gw\nclient_secret: \"{CLIENT_SECRET}\"\n\
         audience: https://crm.example\nscopes: [crm.read]\n\
         subject_token: {{kind: minted, issuer: \"https://gateway.example\", audience: \"https://sts.example\"}}",
        server.url
    ));
    let b = broker(&[("crm", config)], &clock);
    let c = b.credential("crm", &alice(), &[]).await.expect("exchange");
    assert_eq!(c.secret(), "xt-1");
    assert_eq!(c.audience.as_deref(), Some("https://crm.example"));

    let req = server.last();
    assert_eq!(req.form("grant_type"), Some("urn:ietf:params:oauth:grant-type:token-exchange"));
    assert_eq!(req.form("subject_token_type"), Some("urn:ietf:params:oauth:token-type:jwt"));
    assert_eq!(req.form("requested_token_type"), Some("urn:ietf:params:oauth:token-type:access_token"));
    assert_eq!(req.form("audience"), Some("https://crm.example"));
    assert_eq!(req.form("scope"), Some("crm.read"));
    assert_eq!(req.basic_auth(), Some(("gw".to_string(), CLIENT_SECRET.to_string())));
    let claims = decode(req.form("subject_token").expect("subject_token"), "https://sts.example");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["tenant"], "acme");
    assert_eq!(claims["scopes"], serde_json::json!(["crm.read"]));
    assert_eq!(claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"), 60);
    assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 16));

    // Per principal: same subject is cached, another subject exchanges again.
    assert_eq!(b.credential("crm", &alice(), &[]).await.expect("cached").secret(), "xt-1");
    assert_eq!(b.credential("crm", &Caller::new("bob", "acme"), &[]).await.expect("bob").secret(), "xt-2");
    let claims = decode(server.last().form("subject_token").expect("subject"), "https://sts.example");
    assert_eq!(claims["sub"], "bob");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn token_exchange_with_static_subject_is_not_per_principal() {
    let server = FakeServer::start(|_, n| (200, token_json(&format!("xt-{n}"), Some(600))));
    let clock = TestClock::new();
    let config = cfg(&format!(
        "kind: token_exchange\ntoken_url: {}\nclient_id: gw\nclient_secret: \"{CLIENT_SECRET}\"\nclient_auth: post\n\
         audience: https://crm.example\nsubject_token: {{kind: static, token: service-identity-jwt}}",
        server.url
    ));
    let b = broker(&[("crm", config)], &clock);
    b.credential("crm", &alice(), &[]).await.expect("alice");
    b.credential("crm", &Caller::new("bob", "acme"), &[]).await.expect("bob");
    assert_eq!(server.hits(), 1);
    assert_eq!(server.last().form("subject_token"), Some("service-identity-jwt"));
}

// ---- gateway JWT ----

#[tokio::test]
async fn gateway_jwt_minted_per_principal() {
    let clock = TestClock::new();
    let config = cfg("kind: gateway_jwt\nissuer: https://gateway.example\naudience: https://internal.example");
    let b = broker(&[("internal", config)], &clock);
    let c = b.credential("internal", &alice(), &scopes(&["x", "a"])).await.expect("jwt");
    let claims = decode(c.secret(), "https://internal.example");
    assert_eq!((claims["sub"].as_str(), claims["tenant"].as_str()), (Some("alice"), Some("acme")));
    assert_eq!(claims["scopes"], serde_json::json!(["a", "x"]));
    assert_eq!(claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"), 300);
    assert_eq!(c.audience.as_deref(), Some("https://internal.example"));
    assert!(c.meta()["expires_in"].as_u64().is_some_and(|s| s <= 300));

    let again = b.credential("internal", &alice(), &scopes(&["a", "x"])).await.expect("cached");
    assert_eq!(again.secret(), c.secret());
    let bob = b.credential("internal", &Caller::new("bob", "acme"), &scopes(&["a", "x"])).await.expect("bob");
    assert_ne!(bob.secret(), c.secret());
    clock.advance(240);
    let renewed = b.credential("internal", &alice(), &scopes(&["a", "x"])).await.expect("renewed");
    assert_ne!(renewed.secret(), c.secret());
}

// ---- errors ----

#[tokio::test]
async fn upstream_errors_are_mapped_without_secrets() {
    let server = FakeServer::start(|req, n| match n {
        // An endpoint that echoes the request back in its error.
        1 => (
            401,
            serde_json::json!({"error": "invalid_client", "error_description": format!("bad secret {CLIENT_SECRET}"),
                               "echo": req.form})
            .to_string(),
        ),
        2 => (400, serde_json::json!({"error": CLIENT_SECRET}).to_string()),
        3 => (500, "<html>oops</html>".to_string()),
        4 => (200, r#"{"token_type":"Bearer"}"#.to_string()),
        _ => (200, "not json".to_string()),
    });
    let clock = TestClock::new();
    let b = broker(&[("cc", cc_config(&server.url, "post"))], &clock);
    let mut errors = Vec::new();
    for _ in 0..5 {
        errors.push(b.credential("cc", &alice(), &[]).await.expect_err("fails"));
    }
    assert_eq!(
        errors[0],
        BrokerError::Upstream { provider: "cc".into(), status: 401, oauth_error: Some("invalid_client".into()) }
    );
    assert_eq!(errors[1], BrokerError::Upstream { provider: "cc".into(), status: 400, oauth_error: None });
    assert_eq!(errors[2], BrokerError::Upstream { provider: "cc".into(), status: 500, oauth_error: None });
    assert!(matches!(errors[3], BrokerError::InvalidResponse { .. }));
    assert!(matches!(errors[4], BrokerError::InvalidResponse { .. }));
    for e in &errors {
        assert_eq!(e.status_code(), 502);
        assert_eq!(e.provider(), "cc");
        assert_no_secret(&format!("{e} {e:?}"), &[CLIENT_SECRET, "oops", "bad secret"]);
    }
    assert_eq!(errors[0].to_string(), "credential provider cc: token endpoint returned HTTP 401 (invalid_client)");
    assert_eq!(server.hits(), 5, "failures are not cached");
}

#[tokio::test]
async fn unreachable_and_timeout() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}/token", closed.local_addr().expect("addr"));
    drop(closed);
    // Accepts connections (kernel backlog) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}/token", silent.local_addr().expect("addr"));
    let opts = BrokerOptions { refresh_margin_secs: 60, http_timeout: Duration::from_millis(300) };
    let b = Broker::new(
        providers(&[("closed", cc_config(&closed_url, "basic")), ("silent", cc_config(&silent_url, "basic"))]),
        None,
        opts,
    )
    .expect("broker");
    let e = b.credential("closed", &alice(), &[]).await.expect_err("refused");
    assert!(matches!(e, BrokerError::Unreachable { .. }), "{e:?}");
    assert_eq!(e.status_code(), 502);
    let e = b.credential("silent", &alice(), &[]).await.expect_err("timeout");
    assert_eq!(e, BrokerError::Timeout { provider: "silent".into() });
    assert_eq!(e.status_code(), 504);
    let e = b.credential("nope", &alice(), &[]).await.expect_err("unknown");
    assert_eq!(e.status_code(), 500);
    drop(silent);
}

// ---- configuration ----

fn config_error(list: &[(&str, CredentialConfig)], signer: Option<Signer>) -> BrokerError {
    Broker::new(providers(list), signer, BrokerOptions::default()).expect_err("config error")
}

#[test]
fn config_errors_name_the_provider_not_the_secret() {
    let e = config_error(&[("p", cfg("kind: static\nsecret_env: BROKER_TEST_UNSET_VARIABLE"))], None);
    assert_eq!(
        e.to_string(),
        "credential provider p: secret_env: environment variable BROKER_TEST_UNSET_VARIABLE is not set"
    );
    assert_eq!(e.status_code(), 500);

    let e = config_error(&[("p", cfg("kind: static\nsecret: topsecret\nsecret_env: X"))], None);
    assert!(e.to_string().contains("exactly one of secret"), "{e}");
    assert_no_secret(&format!("{e} {e:?}"), &["topsecret"]);

    let e = config_error(&[("p", cfg("kind: static\nsecret_file: /nonexistent/broker/key"))], None);
    assert!(e.to_string().contains("cannot read /nonexistent/broker/key"), "{e}");

    let jwt = cfg("kind: gateway_jwt\nissuer: i\naudience: a");
    let e = config_error(&[("internal", jwt)], None);
    assert_eq!(e.provider(), "internal");
    assert!(e.to_string().contains("signing key"), "{e}");

    let url = format!(
        "kind: client_credentials\ntoken_url: https://user:{CLIENT_SECRET}@auth.example/token\nclient_id: c\nclient_secret: s"
    );
    let e = config_error(&[("cc", cfg(&url))], None);
    assert!(e.to_string().contains("must not contain credentials"), "{e}");
    assert_no_secret(&format!("{e} {e:?}"), &[CLIENT_SECRET]);

    let e = config_error(
        &[("cc", cfg("kind: client_credentials\ntoken_url: ftp://x\nclient_id: c\nclient_secret: s"))],
        None,
    );
    assert!(e.to_string().contains("http(s)"), "{e}");

    // Unknown fields and kinds are refused by the parser.
    assert!(serde_yaml_ng::from_str::<CredentialConfig>("kind: static\nsecret: s\nsecrt_env: X").is_err());
    assert!(serde_yaml_ng::from_str::<CredentialConfig>("kind: magic").is_err());
    // JSON works too.
    let c: CredentialConfig =
        serde_json::from_str(r#"{"kind":"gateway_jwt","issuer":"i","audience":"a","ttl_seconds":30}"#)
            .expect("json config");
    assert_eq!(c.kind(), "gateway_jwt");
}

#[test]
fn debug_output_hides_secrets() {
    let config = cc_config("https://auth.example/token", "basic");
    let static_cfg = cfg("kind: static\nsecret: static-api-key-value");
    let text = format!("{config:?} {static_cfg:?}");
    assert_no_secret(&text, &[CLIENT_SECRET, "static-api-key-value"]);
    assert!(text.contains("***"));
    let c = Credential::new(Secret::new("issued-access-token"), "Bearer", None);
    assert_no_secret(&format!("{c:?} {}", c.meta()), &["issued-access-token"]);
    assert_eq!(format!("{:?}", Secret::default()), "\"\"");
    let s = signer();
    assert_no_secret(&format!("{s:?}"), &[std::str::from_utf8(HMAC_KEY).expect("utf8")]);
}

#[test]
fn signer_rejects_mismatched_key() {
    assert!(Signer::new(EncodingKey::from_secret(HMAC_KEY), Algorithm::RS256, "k").is_err());
}

#[test]
fn broker_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<Broker>();
    check::<Credential>();
    check::<BrokerError>();
}

#[test]
fn form_urlencode_matches_rfc() {
    assert_eq!(oauth::form_urlencode("a b+c/=~é"), "a+b%2Bc%2F%3D%7E%C3%A9");
}
