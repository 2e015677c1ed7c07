//! JWKS from a URL: keys are fetched at start, refetched when a token names an unknown kid
//! (at most once per configured interval), and ES256 keys carry their own algorithm.

mod common;

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use fastmcp::auth::devkeys::DevKey;
use jsonwebtoken::{encode, Algorithm, Header};
use serde_json::{json, Value};

/// A fresh ES256 key pair with the given kid (public JWK, signer).
fn key(kid: &str) -> (Value, DevKey) {
    let dir = temp_dir(&format!("jwks-key-{kid}"));
    let k = DevKey::load_or_create(&dir, Algorithm::ES256).expect("key");
    let mut jwk = k.public_jwk.clone();
    jwk["kid"] = json!(kid);
    (jwk, k)
}

fn token(k: &DevKey, kid: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs();
    let claims = json!({"iss": "https://idp.local", "aud": "fastmcp", "sub": "svc", "tenant": "acme",
                        "roles": ["mcp-admin"], "exp": now + 600});
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid.into());
    encode(&h, &claims, &k.encoding_key().expect("signer")).expect("sign")
}

#[test]
fn unknown_kid_triggers_one_refetch_per_interval() {
    let served: Arc<Mutex<Vec<Value>>> = Arc::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let (jwks, count) = (served.clone(), fetches.clone());
    let idp = fake_upstream(move |_head, _body, s| {
        count.fetch_add(1, Ordering::SeqCst);
        let body = json!({"keys": *jwks.lock().expect("lock")}).to_string();
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
    });
    let upstream = json_ok_upstream();
    let (jwk_a, key_a) = key("a");
    let (jwk_b, key_b) = key("b");
    served.lock().expect("lock").push(jwk_a);

    let gw = Gateway::builder("jwks")
        .env("JWKS_URL", &format!("http://127.0.0.1:{idp}/jwks.json"))
        .config(&format!(
            "auth: {{jwks_refresh_min_interval_seconds: 3600}}\nmcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n      tool_tags: {{echo: []}}\n"
        ))
        .start();
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "fetched once at start");
    assert!(!gw.log().contains("no JWKS"), "dev keys must not be used when a JWKS is configured");
    let call = tools_call(1, "echo", json!({}));
    let url = gw.url("/mcp/up");

    assert_eq!(mcp_post(&url, Some(&token(&key_a, "a")), &call, &[]).status, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "a known kid needs no fetch");

    // The IdP rotates in key b: the first token with kid b causes one refetch and passes.
    served.lock().expect("lock").push(jwk_b);
    assert_eq!(mcp_post(&url, Some(&token(&key_b, "b")), &call, &[]).status, 200);
    assert_eq!(fetches.load(Ordering::SeqCst), 2);

    // Unknown kids within the interval are refused without hammering the IdP.
    for _ in 0..3 {
        assert_eq!(mcp_post(&url, Some(&token(&key_b, "zzz")), &call, &[]).status, 401);
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2, "at most one refetch per interval");

    // The algorithm comes from the key: an ES256 key cannot verify an RS256-labelled token.
    let forged = {
        let parts: Vec<String> = token(&key_a, "a").split('.').map(String::from).collect();
        use base64::Engine as _;
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"a"}"#);
        format!("{header}.{}.{}", parts[1], parts[2])
    };
    assert_eq!(mcp_post(&url, Some(&forged), &call, &[]).status, 401);
}

#[test]
fn jwks_file_keys_verify_and_private_keys_are_refused() {
    let upstream = json_ok_upstream();
    let (jwk, signer) = key("file-key");
    let dir = temp_dir("jwks-file");
    let path = dir.join("jwks.json");
    std::fs::write(&path, json!({"keys": [jwk]}).to_string()).expect("write");
    let cfg = format!(
        "mcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{upstream}/mcp\"\n      discover: false\n      tool_tags: {{echo: []}}\n"
    );
    let gw = Gateway::builder("jwks-file").env("JWKS_FILE", &path.display().to_string()).config(&cfg).start();
    let call = tools_call(1, "echo", json!({}));
    assert_eq!(mcp_post(&gw.url("/mcp/up"), Some(&token(&signer, "file-key")), &call, &[]).status, 200);
    assert!(!gw.data_dir_has_dev_keys(), "no dev keys when a JWKS is configured");

    // A JWKS carrying a private key is a configuration error: refuse to start.
    let mut private = signer.public_jwk.clone();
    private["d"] = json!("AAAA");
    std::fs::write(&path, json!({"keys": [private]}).to_string()).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fastmcp"))
        .args(["serve"])
        .env("JWKS_FILE", &path)
        .env("FASTMCP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("FASTMCP_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("AUDIT_WORM_DIR", dir.join("audit"))
        .current_dir(&dir)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("private"), "{}", String::from_utf8_lossy(&out.stderr));
}
