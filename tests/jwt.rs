//! Acceptance: "JWT: missing, malformed, expired, wrong aud, wrong iss, missing exp, unknown kid,
//! alg: none, HS256 signed with the public key, tampered payload: all 401, none 5xx".
//!
//! Every refused token gets 401 with `WWW-Authenticate: Bearer resource_metadata=…`, a JSON-RPC
//! body whose `error.data` carries `UNAUTHORIZED` and the correlation id, and never reaches the
//! upstream. A valid token is forwarded with the agent's credential replaced by the brokered one.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::*;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const UPSTREAM_SECRET: &str = "Bearer upstream-secret";

fn ok_response(s: &mut TcpStream) {
    let b = r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"ok"}]}}"#;
    let _ = write!(s, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}", b.len());
}

/// A gateway in front of a fake upstream that records every request head it receives.
fn setup() -> (Gateway, Arc<AtomicUsize>, Arc<Mutex<Vec<String>>>) {
    let count = Arc::new(AtomicUsize::new(0));
    let heads: Arc<Mutex<Vec<String>>> = Arc::default();
    let (c, h) = (count.clone(), heads.clone());
    let port = fake_upstream(move |head, _body, s| {
        c.fetch_add(1, Ordering::SeqCst);
        h.lock().expect("lock").push(head);
        ok_response(s);
    });
    // The URL is in env too: `token mint` (run without --config) sees the same server entry.
    let gw = Gateway::builder("jwt")
        .env("MCP_UP_DISCOVER", "false")
        .env("MCP_UP_URL", &format!("http://127.0.0.1:{port}/mcp"))
        .env("MCP_UP_TOKEN", UPSTREAM_SECRET)
        .config(&format!(
            "mcp:\n  servers:\n    up:\n      url: \"http://127.0.0.1:{port}/mcp\"\n      discover: false\n      trusted: true\n      tool_tags: {{echo: []}}\n"
        ))
        .start();
    (gw, count, heads)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

fn claims() -> Value {
    json!({
        "iss": "https://idp.local",
        "aud": "fastmcp",
        "sub": "mallory",
        "tenant": "acme",
        "roles": ["mcp-admin"],
        "iat": now(),
        "exp": now() + 3600,
    })
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().expect("object").remove(key);
    c
}

fn dev_key_pem(gw: &Gateway) -> String {
    let path = gw.dir.join("data/dev-keys/dev-rs256.pem");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rs256(pem: &str, kid: &str, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("dev key parses");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(&header, claims, &key).expect("sign RS256")
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The public half of the dev key in the forms an attacker would try as an HMAC secret:
/// the PKCS#1 DER, and (when the openssl CLI exists) the SPKI PEM text.
fn public_key_materials(private_pem: &str) -> Vec<(String, Vec<u8>)> {
    let b64_body: String = private_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = STANDARD.decode(b64_body).expect("PEM body is base64");
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).expect("dev key is PKCS#8 RSA");
    let mut out = vec![("pkcs1-der".to_string(), aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref().to_vec())];
    let openssl = std::process::Command::new("openssl")
        .args(["pkey", "-pubout"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = openssl {
        child.stdin.take().expect("stdin").write_all(private_pem.as_bytes()).expect("write key");
        let o = child.wait_with_output().expect("openssl");
        if o.status.success() && o.stdout.starts_with(b"-----BEGIN PUBLIC KEY-----") {
            out.push(("spki-pem".to_string(), o.stdout));
        }
    }
    out
}

/// Asserts the DESIGN 401 shape; `missing` = no credentials at all (no `error=` then).
fn assert_unauthorized(case: &str, r: &Resp, missing: bool) {
    let text = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, 401, "{case}: expected 401, got {} {text}", r.status);
    let www = r.header("www-authenticate").unwrap_or_else(|| panic!("{case}: no WWW-Authenticate"));
    assert!(www.starts_with("Bearer"), "{case}: WWW-Authenticate {www:?}");
    assert!(www.contains("resource_metadata=\""), "{case}: WWW-Authenticate {www:?}");
    assert!(www.contains("/.well-known/oauth-protected-resource/mcp/up"), "{case}: WWW-Authenticate {www:?}");
    if !missing {
        assert!(www.contains("error=\"invalid_token\""), "{case}: RFC 6750 error missing: {www:?}");
    }
    let corr = r.header("x-correlation-id").unwrap_or_else(|| panic!("{case}: no X-Correlation-ID"));
    assert!(!corr.is_empty(), "{case}: empty X-Correlation-ID");
    let body = r.json();
    assert_eq!(body["jsonrpc"], "2.0", "{case}: {body}");
    assert_eq!(body["error"]["data"]["code"], "UNAUTHORIZED", "{case}: {body}");
    let body_corr = body["error"]["data"]["corr_id"].as_str().unwrap_or_default();
    assert!(!body_corr.is_empty(), "{case}: corr_id empty: {body}");
    assert_eq!(body_corr, corr, "{case}: body corr_id differs from the header");
    assert!(!text.contains("eyJ"), "{case}: the error body echoes a token: {text}");
}

#[test]
fn bad_tokens_get_401_and_never_reach_the_upstream() {
    let (gw, upstream_calls, _) = setup();
    let pem = dev_key_pem(&gw);
    let url = gw.url("/mcp/up");
    let call = tools_call(1, "echo", json!({"text": "hi"}));

    // No Authorization header at all.
    let r = mcp_post(&url, None, &call, &[]);
    assert_unauthorized("missing", &r, true);

    // Header present but not a usable bearer JWT.
    let agent = gw.mint("mallory", "acme", "agent");
    let basic = format!("Basic {}", STANDARD.encode("mallory:pw"));
    let no_scheme = agent.clone();
    for (case, header) in [
        ("malformed: not a JWT", "Bearer not-a-jwt".to_string()),
        ("malformed: two segments", "Bearer eyJhbGciOiJSUzI1NiJ9.e30".to_string()),
        ("malformed: bad base64", "Bearer !!!.???.###".to_string()),
        ("malformed: empty bearer", "Bearer ".to_string()),
        ("malformed: basic scheme", basic),
        ("malformed: no scheme", no_scheme),
    ] {
        let r = http(
            "POST",
            &url,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
                ("authorization", &header),
            ],
            call.to_string().as_bytes(),
        );
        assert_unauthorized(case, &r, false);
    }

    // Signed with the real dev key, but the claims are wrong.
    let base = claims();
    let mut forged: Vec<(String, String)> = vec![
        ("expired".into(), rs256(&pem, "dev-key", &with(base.clone(), "exp", json!(now() - 3600)))),
        ("wrong aud".into(), rs256(&pem, "dev-key", &with(base.clone(), "aud", json!("someone-else")))),
        ("wrong iss".into(), rs256(&pem, "dev-key", &with(base.clone(), "iss", json!("https://evil.example")))),
        ("missing exp".into(), rs256(&pem, "dev-key", &without(base.clone(), "exp"))),
        ("unknown kid".into(), rs256(&pem, "not-a-known-kid", &base)),
    ];

    // alg: none with an empty signature.
    let none_header = json!({"alg": "none", "typ": "JWT", "kid": "dev-key"});
    forged.push(("alg none".into(), format!("{}.{}.", b64(&none_header), b64(&base))));

    // HS256 keyed with the public half of the RSA key (algorithm confusion).
    for (form, secret) in public_key_materials(&pem) {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("dev-key".into());
        let t = encode(&header, &base, &EncodingKey::from_secret(&secret)).expect("sign HS256");
        forged.push((format!("HS256 with public key ({form})"), t));
    }

    // A valid `agent` token whose payload is swapped for `mcp-admin`, original signature kept.
    let parts: Vec<&str> = agent.split('.').collect();
    assert_eq!(parts.len(), 3, "minted token is a JWS");
    let mut payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("payload b64")).expect("payload json");
    assert_eq!(payload["roles"], json!(["agent"]));
    payload["roles"] = json!(["mcp-admin"]);
    forged.push(("tampered payload".into(), format!("{}.{}.{}", parts[0], b64(&payload), parts[2])));

    for (case, token) in &forged {
        let r = mcp_post(&url, Some(token), &call, &[]);
        assert_unauthorized(case, &r, false);
    }

    assert_eq!(upstream_calls.load(Ordering::SeqCst), 0, "a refused token reached the upstream");

    // The refusals are counted by reason (which also shows each forgery failed on its own defect).
    let metrics = String::from_utf8(http("GET", &gw.admin_url("/metrics"), &[], b"").body).expect("utf8");
    for reason in [
        "missing",
        "malformed",
        "expired",
        "bad_audience",
        "bad_issuer",
        "missing_claim",
        "unknown_kid",
        "bad_algorithm",
        "bad_signature",
    ] {
        let n = jwt_failures(&metrics, reason);
        assert!(n >= 1.0, "fastmcp_jwt_failures_total{{reason=\"{reason}\"}} = {n} in:\n{metrics}");
    }
}

/// The value of `fastmcp_jwt_failures_total{reason=...}` (0 when absent).
fn jwt_failures(metrics: &str, reason: &str) -> f64 {
    let label = format!("reason=\"{reason}\"");
    metrics
        .lines()
        .find(|l| l.starts_with("fastmcp_jwt_failures_total{") && l.contains(&label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn valid_token_is_forwarded_with_the_brokered_credential_only() {
    let (gw, upstream_calls, heads) = setup();
    let token = gw.mint("alice", "acme", "mcp-admin");

    let r = mcp_post(&gw.url("/mcp/up"), Some(&token), &tools_call(1, "echo", json!({"text": "hi"})), &[]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["result"]["content"][0]["text"], "ok");
    assert!(r.header("x-correlation-id").is_some_and(|c| !c.is_empty()));
    assert_eq!(upstream_calls.load(Ordering::SeqCst), 1, "the upstream got the call");

    let head = heads.lock().expect("lock").pop().expect("upstream request head");
    let auth: Vec<&str> = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim())
        .collect();
    assert_eq!(auth, vec![UPSTREAM_SECRET], "upstream must see exactly the brokered credential:\n{head}");
    assert!(!head.contains(&token), "the agent's JWT leaked upstream:\n{head}");
    let signature = token.rsplit('.').next().expect("signature");
    assert!(!head.contains(signature), "the agent's JWT signature leaked upstream:\n{head}");

    // Control for the forgeries: the same claims, signed by the test with the dev key, pass.
    let forged_ok = rs256(&dev_key_pem(&gw), "dev-key", &claims());
    let r = mcp_post(&gw.url("/mcp/up"), Some(&forged_ok), &tools_call(2, "echo", json!({"text": "hi"})), &[]);
    assert_eq!(r.status, 200, "a correctly signed test token must be accepted: {}", String::from_utf8_lossy(&r.body));
    assert_eq!(upstream_calls.load(Ordering::SeqCst), 2);
}
