//! Key rotation: the JWKS (URL or file) is reloaded in the background every
//! `auth.jwks_refresh_seconds`; a key that leaves it stops verifying, even for a token that
//! was verified (and cached) before; a token issued in the future is refused; `/ready`
//! recovers when the first fetch failed and a later one succeeds.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use fastmcp::auth::devkeys::DevKey;
use jsonwebtoken::{encode, Algorithm, Header};
use serde_json::{json, Value};

/// Every poll below gives up after this long; the refresh interval in the tests is 1 s.
const DEADLINE: Duration = Duration::from_secs(20);

/// A fresh ES256 key pair with the given kid (public JWK, signer).
fn key(kid: &str) -> (Value, DevKey) {
    let k = DevKey::load_or_create(&temp_dir(&format!("rotation-key-{kid}")), Algorithm::ES256).expect("key");
    let mut jwk = k.public_jwk.clone();
    jwk["kid"] = json!(kid);
    (jwk, k)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn token_with(k: &DevKey, kid: &str, iat: i64) -> String {
    let claims = json!({"iss": "https://idp.local", "aud": "fastmcp", "sub": format!("svc-{kid}"),
                        "tenant": "acme", "roles": ["mcp-admin"], "iat": iat, "exp": now() + 600});
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    encode(&h, &claims, &k.encoding_key().expect("signer")).expect("sign")
}

fn token(k: &DevKey, kid: &str) -> String {
    token_with(k, kid, now())
}

/// A JWKS endpoint serving `keys`, answering 503 while `up` is false; counts requests.
fn idp(keys: Arc<Mutex<Vec<Value>>>, up: Arc<AtomicBool>, fetches: Arc<AtomicUsize>) -> u16 {
    fake_upstream(move |_head, _body, s| {
        fetches.fetch_add(1, Ordering::SeqCst);
        if !up.load(Ordering::SeqCst) {
            let _ = write!(s, "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n");
            return;
        }
        let body = json!({"keys": *keys.lock().expect("lock")}).to_string();
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
    })
}

/// An MCP upstream answering every call; counts them.
fn counting_upstream(calls: Arc<AtomicUsize>) -> u16 {
    fake_upstream(move |_head, _body, s| {
        calls.fetch_add(1, Ordering::SeqCst);
        let b = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#;
        let _ =
            write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
    })
}

fn config(upstream: u16) -> String {
    // A cached token never reaches verification, so only the periodic refresh can notice that
    // its key was removed; the unknown-kid refetch is limited to once an hour.
    format!(
        "auth: {{jwks_refresh_seconds: 1, jwks_refresh_min_interval_seconds: 3600}}\nmcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n      tool_tags: {{echo: []}}\n"
    )
}

fn call(gw: &Gateway, token: &str) -> Resp {
    mcp_post(&gw.url("/mcp/up"), Some(token), &tools_call(1, "echo", json!({})), &[])
}

/// Polls `f` until it is true; panics with `what` after [`DEADLINE`].
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !f() {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_refused(r: &Resp) {
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["error"]["data"]["code"], "UNAUTHORIZED");
}

#[test]
fn a_removed_key_stops_verifying_even_for_a_cached_token() {
    let (keys, up, fetches) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(true)), Arc::default());
    let (jwk_a, key_a) = key("a");
    let (jwk_b, key_b) = key("b");
    keys.lock().expect("lock").extend([jwk_a, jwk_b]);
    let port = idp(keys.clone(), up, Arc::clone(&fetches));
    let calls = Arc::new(AtomicUsize::new(0));
    let gw = Gateway::builder("rotation")
        .env("JWKS_URL", &format!("http://127.0.0.1:{port}/jwks.json"))
        .config(&config(counting_upstream(calls.clone())))
        .start();

    let (token_a, token_b) = (token(&key_a, "a"), token(&key_b, "b"));
    assert_eq!(call(&gw, &token_a).status, 200, "verified, and now cached");
    assert_eq!(call(&gw, &token_a).status, 200, "served from the cache");
    assert_eq!(call(&gw, &token_b).status, 200);

    // The JWKS is refetched on a timer, with no request asking for it.
    let before = fetches.load(Ordering::SeqCst);
    eventually("a periodic JWKS fetch", || fetches.load(Ordering::SeqCst) > before);

    // The IdP revokes key a.
    keys.lock().expect("lock").retain(|k| k["kid"] != "a");
    eventually("the cached token of the removed key is refused", || call(&gw, &token_a).status == 401);
    let calls_at_refusal = calls.load(Ordering::SeqCst);
    assert_refused(&call(&gw, &token_a));
    assert_eq!(call(&gw, &token_b).status, 200, "the key that stayed keeps verifying");
    assert_eq!(calls.load(Ordering::SeqCst), calls_at_refusal + 1, "the refused call never reached the upstream");
    // A fresh token signed by the revoked key fails too.
    assert_refused(&call(&gw, &token_with(&key_a, "a", now() - 5)));
}

#[test]
fn a_token_issued_in_the_future_is_refused() {
    let (keys, up, fetches) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(true)), Arc::default());
    let (jwk, signer) = key("k");
    keys.lock().expect("lock").push(jwk);
    let port = idp(keys, up, fetches);
    let calls = Arc::new(AtomicUsize::new(0));
    let gw = Gateway::builder("rotation-iat")
        .env("JWKS_URL", &format!("http://127.0.0.1:{port}/jwks.json"))
        .config(&config(counting_upstream(calls.clone())))
        .start();

    assert_eq!(call(&gw, &token_with(&signer, "k", now() + 20)).status, 200, "within the 60 s leeway");
    let year = 365 * 24 * 3600;
    assert_refused(&call(&gw, &token_with(&signer, "k", now() + year)));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "only the in-leeway call reached the upstream");
    let metrics = String::from_utf8_lossy(&http("GET", &gw.admin_url("/metrics"), &[], b"").body).to_string();
    assert!(metrics.contains("fastmcp_jwt_failures_total{reason=\"iat_future\"} 1"), "{metrics}");
}

#[test]
fn ready_recovers_when_the_first_fetch_failed() {
    let (keys, up, fetches) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)), Arc::default());
    let (jwk, signer) = key("k");
    keys.lock().expect("lock").push(jwk);
    let port = idp(keys, up.clone(), Arc::clone(&fetches));
    let gw = Gateway::builder("rotation-ready")
        .env("JWKS_URL", &format!("http://127.0.0.1:{port}/jwks.json"))
        .config(&config(json_ok_upstream()))
        .start();
    assert!(fetches.load(Ordering::SeqCst) >= 1, "the startup fetch happened (and failed)");

    let ready = http("GET", &gw.admin_url("/ready"), &[], b"");
    assert_eq!(ready.status, 503, "{}", String::from_utf8_lossy(&ready.body));
    assert_eq!(ready.json()["jwt_keys"], 0);
    assert_refused(&call(&gw, &token(&signer, "k")));

    up.store(true, Ordering::SeqCst);
    eventually("/ready turns 200 after a periodic fetch succeeds", || {
        http("GET", &gw.admin_url("/ready"), &[], b"").status == 200
    });
    assert_eq!(http("GET", &gw.admin_url("/ready"), &[], b"").json()["jwt_keys"], 1);
    assert_eq!(call(&gw, &token(&signer, "k")).status, 200);
}

#[test]
fn a_key_removed_from_the_jwks_file_stops_verifying() {
    let (jwk_a, key_a) = key("fa");
    let (jwk_b, key_b) = key("fb");
    let dir = temp_dir("rotation-file");
    let path = dir.join("jwks.json");
    std::fs::write(&path, json!({"keys": [jwk_a]}).to_string()).expect("write");
    let gw = Gateway::builder("rotation-file")
        .env("JWKS_FILE", &path.display().to_string())
        .config(&config(json_ok_upstream()))
        .start();
    let token_a = token(&key_a, "fa");
    assert_eq!(call(&gw, &token_a).status, 200, "verified, and now cached");

    // Rotation: b replaces a. Written to a temporary file and renamed, as a deploy tool would.
    let tmp = dir.join("jwks.json.tmp");
    std::fs::write(&tmp, json!({"keys": [jwk_b]}).to_string()).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
    eventually("the new file's key verifies", || call(&gw, &token(&key_b, "fb")).status == 200);
    assert_refused(&call(&gw, &token_a));

    // A broken file keeps the current keys serving.
    std::fs::write(&path, "{ not json").expect("write");
    let metrics_url = gw.admin_url("/metrics");
    eventually("a failed reload is counted", || {
        String::from_utf8_lossy(&http("GET", &metrics_url, &[], b"").body)
            .contains("fastmcp_jwks_refreshes_total{result=\"error\"}")
    });
    assert_eq!(call(&gw, &token(&key_b, "fb")).status, 200);
}
