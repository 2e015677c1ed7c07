use super::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use devkeys::DevKey;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

fn setup() -> (Authenticator, DevKey) {
    let dir = std::env::temp_dir().join(format!("fastmcp-auth-{}", std::process::id()));
    let dk = DevKey::load_or_create(&dir, Algorithm::RS256).unwrap();
    let keys = KeySet::single(dk.kid.clone(), VerifyKey::from_jwk_value(&dk.public_jwk, dk.alg).unwrap());
    let cfg = crate::config::Config::load(None, Vec::new()).unwrap().auth;
    (Authenticator::new(cfg, keys, KeySource::Static), dk)
}

fn claims(exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"iss": "https://idp.local", "aud": "fastmcp", "sub": "agent-1", "tenant": "acme",
           "roles": ["mcp-user"], "exp": now + exp_offset, "iat": now})
}

fn sign(dk: &DevKey, kid: &str, c: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    encode(&h, c, &dk.encoding_key().unwrap()).unwrap()
}

async fn check(a: &Authenticator, token: &str) -> Result<Arc<Principal>, &'static str> {
    let h = format!("Bearer {token}");
    a.authenticate(Some(h.as_bytes())).await.map_err(|e| match e {
        GatewayError::Unauthorized { reason, .. } => reason,
        _ => "other",
    })
}

#[tokio::test]
async fn valid_token_gives_principal_and_is_cached() {
    let (a, dk) = setup();
    let t = sign(&dk, "dev-key", &claims(3600));
    let p = check(&a, &t).await.unwrap();
    assert_eq!((p.sub.as_str(), p.tenant.as_str()), ("agent-1", "acme"));
    assert_eq!(p.roles, vec!["mcp-user"]);
    let again = check(&a, &t).await.unwrap();
    assert!(Arc::ptr_eq(&p, &again), "second use is served from the cache");
}

#[tokio::test]
async fn refusal_matrix() {
    let (a, dk) = setup();
    let mut c = claims(-3600);
    assert_eq!(check(&a, &sign(&dk, "dev-key", &c)).await.unwrap_err(), "expired");
    c = claims(3600);
    c["aud"] = json!("other");
    assert_eq!(check(&a, &sign(&dk, "dev-key", &c)).await.unwrap_err(), "bad_audience");
    c = claims(3600);
    c["iss"] = json!("https://evil");
    assert_eq!(check(&a, &sign(&dk, "dev-key", &c)).await.unwrap_err(), "bad_issuer");
    c = claims(3600);
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(check(&a, &sign(&dk, "dev-key", &c)).await.unwrap_err(), "missing_claim");
    c = claims(3600);
    c["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
    assert_eq!(check(&a, &sign(&dk, "dev-key", &c)).await.unwrap_err(), "not_yet_valid");
    assert_eq!(check(&a, &sign(&dk, "nope", &claims(3600))).await.unwrap_err(), "unknown_kid");
    // alg none
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT","kid":"dev-key"}"#),
        URL_SAFE_NO_PAD.encode(claims(3600).to_string())
    );
    assert!(check(&a, &none).await.is_err());
    // HS256 signed with the public key's bytes
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("dev-key".into());
    let hs = encode(&h, &claims(3600), &EncodingKey::from_secret(dk.public_jwk.to_string().as_bytes())).unwrap();
    assert_eq!(check(&a, &hs).await.unwrap_err(), "bad_algorithm");
    // tampered payload
    let good = sign(&dk, "dev-key", &claims(3600));
    let parts: Vec<&str> = good.split('.').collect();
    let mut evil = claims(3600);
    evil["roles"] = json!(["mcp-admin"]);
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(evil.to_string()), parts[2]);
    assert_eq!(check(&a, &forged).await.unwrap_err(), "bad_signature");
    assert_eq!(check(&a, "x".repeat(9000).as_str()).await.unwrap_err(), "too_large");
    assert_eq!(check(&a, "not-a-jwt").await.unwrap_err(), "malformed");
    assert_eq!(a.authenticate(None).await.unwrap_err().status(), 401);
    assert_eq!(a.authenticate(Some(b"Basic abc")).await.unwrap_err().status(), 401);
}

#[tokio::test]
async fn leeway_accepts_recently_expired() {
    let (a, dk) = setup();
    assert!(check(&a, &sign(&dk, "dev-key", &claims(-30))).await.is_ok());
}

#[tokio::test]
async fn iat_in_the_future_is_refused_beyond_the_leeway() {
    let (a, dk) = setup();
    let now = chrono::Utc::now().timestamp();
    let mut c = claims(3600);
    c["iat"] = json!(now + 365 * 24 * 3600);
    assert_eq!(check(&a, &sign(&dk, "dev-key", &c)).await.unwrap_err(), "iat_future");
    c["iat"] = json!(now + 30);
    assert!(check(&a, &sign(&dk, "dev-key", &c)).await.is_ok(), "within the 60 s leeway");
    c["iat"] = json!("yesterday");
    assert_eq!(check(&a, &sign(&dk, "dev-key", &c)).await.unwrap_err(), "malformed");
    c.as_object_mut().unwrap().remove("iat");
    assert!(check(&a, &sign(&dk, "dev-key", &c)).await.is_ok(), "iat is optional");
}
