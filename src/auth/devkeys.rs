//! Dev key pair: created on first use under `{data_dir}/dev-keys/`, shared by `serve` and
//! `token mint`. The private key file is mode 0600, never served and never part of the key
//! set used for verification (only the public half is).

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

/// A dev key pair, loaded or created.
pub struct DevKey {
    pub kid: String,
    pub alg: Algorithm,
    pub private_pem: String,
    /// The public half as a JWK (what a JWKS would publish).
    pub public_jwk: serde_json::Value,
}

impl DevKey {
    /// Loads the dev key for `alg` from `data_dir`, creating it on first use.
    pub fn load_or_create(data_dir: &Path, alg: Algorithm) -> Result<DevKey, String> {
        let (kid, file) = match alg {
            Algorithm::RS256 => ("dev-key", "dev-rs256.pem"),
            Algorithm::ES256 => ("dev-key-es256", "dev-es256.pem"),
            other => return Err(format!("dev keys support RS256 and ES256, not {other:?}")),
        };
        let dir = data_dir.join("dev-keys");
        let path = dir.join(file);
        if !path.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let der = generate_pkcs8(alg)?;
            write_private(&path, &to_pem("PRIVATE KEY", &der))?;
        }
        let private_pem = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let der = from_pem(&private_pem).ok_or_else(|| format!("{}: not a PEM key", path.display()))?;
        let public_jwk = public_jwk(alg, kid, &der)?;
        Ok(DevKey { kid: kid.to_string(), alg, private_pem, public_jwk })
    }

    pub fn encoding_key(&self) -> Result<EncodingKey, String> {
        match self.alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(self.private_pem.as_bytes()),
            _ => EncodingKey::from_rsa_pem(self.private_pem.as_bytes()),
        }
        .map_err(|e| format!("dev key: {e}"))
    }

    pub fn decoding_key(&self) -> Result<DecodingKey, String> {
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(self.public_jwk.clone()).map_err(|e| e.to_string())?;
        DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())
    }
}

fn generate_pkcs8(alg: Algorithm) -> Result<Vec<u8>, String> {
    match alg {
        Algorithm::ES256 => EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|k| k.to_pkcs8v1())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| "EC key generation failed".to_string()),
        _ => aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| "RSA key generation failed".to_string())
            .and_then(|k| {
                AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&k)
                    .map(|d| d.as_ref().to_vec())
                    .map_err(|_| "RSA key encoding failed".to_string())
            }),
    }
}

fn public_jwk(alg: Algorithm, kid: &str, pkcs8: &[u8]) -> Result<serde_json::Value, String> {
    match alg {
        Algorithm::ES256 => {
            let kp =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(|_| "dev key: bad EC key")?;
            let point = kp.public_key().as_ref();
            if point.len() != 65 {
                return Err("dev key: unexpected EC point".into());
            }
            Ok(serde_json::json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }))
        }
        _ => {
            let kp = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(|_| "dev key: bad RSA key")?;
            let public = kp.public_key();
            Ok(serde_json::json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            }))
        }
    }
}

/// Writes the private key with mode 0600 without ever replacing an existing key: a
/// concurrent first use (serve and token mint at once) keeps whichever key landed first.
fn write_private(path: &Path, pem: &str) -> Result<(), String> {
    // Unique per process and call: concurrent first uses must not share a temp file.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp: PathBuf = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(pem.as_bytes()).and_then(|_| f.sync_all()).map_err(|e| e.to_string())?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn from_pem(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_keys_round_trip_and_are_private() {
        let dir = std::env::temp_dir().join(format!("fastmcp-devkey-{}", std::process::id()));
        for alg in [Algorithm::RS256, Algorithm::ES256] {
            let k = DevKey::load_or_create(&dir, alg).unwrap();
            let again = DevKey::load_or_create(&dir, alg).unwrap();
            assert_eq!(k.public_jwk, again.public_jwk, "second use loads the same key");
            let claims = serde_json::json!({"sub": "a", "exp": 4_000_000_000u64});
            let mut h = jsonwebtoken::Header::new(alg);
            h.kid = Some(k.kid.clone());
            let t = jsonwebtoken::encode(&h, &claims, &k.encoding_key().unwrap()).unwrap();
            let mut v = jsonwebtoken::Validation::new(alg);
            v.validate_aud = false;
            jsonwebtoken::decode::<serde_json::Value>(&t, &k.decoding_key().unwrap(), &v).unwrap();
            assert!(k.public_jwk.get("d").is_none(), "public JWK has no private part");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("dev-keys/dev-rs256.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
