//! Verification keys: a kid → (key, algorithm) map built from a JWKS document or the dev key.
//!
//! The algorithm belongs to the key (its JWK `alg`, else derived from `kty`/`crv`, else the
//! configured default), never to the token header: a token whose header names another
//! algorithm is refused. Every key carries a fingerprint (SHA-256 over kid, algorithm and the
//! RFC 7638 thumbprint of its public material): what the verified-token cache remembers, so
//! a token verified under a key that later leaves the set is not accepted from the cache.

use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey};
use sha2::{Digest, Sha256};

/// Identity of one key as published: kid + algorithm + public material.
pub type Fingerprint = [u8; 32];

/// One verification key with its pinned algorithm.
pub struct VerifyKey {
    pub key: DecodingKey,
    pub alg: Algorithm,
    pub fingerprint: Fingerprint,
}

impl VerifyKey {
    /// Builds a key from one public JWK (see the module doc for how the algorithm is chosen).
    pub fn from_jwk(jwk: &Jwk, default_alg: Algorithm) -> Result<VerifyKey, String> {
        KeySet::verify_key(jwk, default_alg)
    }

    /// Builds a key from a public JWK given as JSON (the dev key's `public_jwk`).
    pub fn from_jwk_value(jwk: &serde_json::Value, default_alg: Algorithm) -> Result<VerifyKey, String> {
        let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|e| e.to_string())?;
        Self::from_jwk(&jwk, default_alg)
    }
}

fn fingerprint(kid: &str, alg: Algorithm, thumbprint: &str) -> Fingerprint {
    let mut h = Sha256::new();
    // Length-prefixed so no two (kid, alg, thumbprint) triples hash the same input.
    for part in [kid, &format!("{alg:?}"), thumbprint] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// The current key set. Immutable; replaced whole on refresh.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
}

impl KeySet {
    /// Builds a key set from JWKS JSON. Keys we cannot use (private parts present, symmetric,
    /// unsupported curves) are skipped with a reason; an empty result is an error.
    pub fn from_jwks_json(json: &str, default_alg: Algorithm) -> Result<(KeySet, Vec<String>), String> {
        let raw: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let mut skipped = Vec::new();
        let mut set = KeySet::default();
        let keys = raw.get("keys").and_then(|k| k.as_array()).ok_or("JWKS has no keys array")?;
        for (i, k) in keys.iter().enumerate() {
            // A JWKS used for verification must never carry private material (seed hole).
            if k.get("d").is_some() {
                skipped.push(format!("key {i}: contains a private part; refused"));
                continue;
            }
            let jwk: Jwk = match serde_json::from_value(k.clone()) {
                Ok(j) => j,
                Err(e) => {
                    skipped.push(format!("key {i}: {e}"));
                    continue;
                }
            };
            match Self::verify_key(&jwk, default_alg) {
                Ok(vk) => {
                    let kid = jwk.common.key_id.clone().unwrap_or_default();
                    set.by_kid.insert(kid, Arc::new(vk));
                }
                Err(e) => skipped.push(format!("key {i}: {e}")),
            }
        }
        if set.by_kid.is_empty() {
            return Err(format!("JWKS has no usable keys ({})", skipped.join("; ")));
        }
        Ok((set, skipped))
    }

    fn verify_key(jwk: &Jwk, default_alg: Algorithm) -> Result<VerifyKey, String> {
        let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
            (Some(KeyAlgorithm::RS384), _) => Algorithm::RS384,
            (Some(KeyAlgorithm::RS512), _) => Algorithm::RS512,
            (Some(KeyAlgorithm::PS256), _) => Algorithm::PS256,
            (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
            (Some(KeyAlgorithm::ES384), _) => Algorithm::ES384,
            (Some(KeyAlgorithm::EdDSA), _) => Algorithm::EdDSA,
            (Some(other), _) => return Err(format!("algorithm {other:?} not accepted")),
            (None, AlgorithmParameters::RSA(_)) => match default_alg {
                Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 => default_alg,
                _ => Algorithm::RS256,
            },
            (None, AlgorithmParameters::EllipticCurve(ec)) => match ec.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                _ => return Err("unsupported curve".into()),
            },
            (None, AlgorithmParameters::OctetKeyPair(_)) => Algorithm::EdDSA,
            (None, AlgorithmParameters::OctetKey(_)) => return Err("symmetric keys not accepted".into()),
            (None, _) => return Err("unsupported key type".into()),
        };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)) {
            return Err("symmetric keys not accepted".into());
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
        let thumbprint = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| format!("key thumbprint: {e}"))?;
        let fingerprint = fingerprint(jwk.common.key_id.as_deref().unwrap_or_default(), alg, &thumbprint);
        Ok(VerifyKey { key, alg, fingerprint })
    }

    /// A key set holding one key.
    pub fn single(kid: String, key: VerifyKey) -> KeySet {
        let mut by_kid = HashMap::new();
        by_kid.insert(kid, Arc::new(key));
        KeySet { by_kid }
    }

    /// The key for `kid`; a token without kid matches only a key set of exactly one key.
    pub fn get(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.by_kid.len() == 1 => self.by_kid.values().next().cloned(),
            None => None,
        }
    }

    /// Whether a key with this fingerprint is in the set (a linear scan: key sets hold a
    /// handful of keys, and this runs only when the set changed since a cache entry was made).
    pub fn contains(&self, fp: &Fingerprint) -> bool {
        self.by_kid.values().any(|k| k.fingerprint == *fp)
    }

    /// How many of this set's keys `other` lacks.
    pub fn missing_from(&self, other: &KeySet) -> usize {
        self.by_kid.values().filter(|k| !other.contains(&k.fingerprint)).count()
    }

    pub fn len(&self) -> usize {
        self.by_kid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_kid.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_symmetric_keys_are_refused() {
        let jwks = r#"{"keys":[
            {"kty":"oct","k":"c2VjcmV0","kid":"h"},
            {"kty":"EC","crv":"P-256","kid":"p","d":"x","x":"x","y":"y"}
        ]}"#;
        assert!(KeySet::from_jwks_json(jwks, Algorithm::RS256).is_err());
    }

    fn ec_jwk(kid: &str, x: &str) -> serde_json::Value {
        // A valid P-256 point is not needed to build a DecodingKey from JWK parameters.
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid, "x": x,
                           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
    }

    #[test]
    fn fingerprint_binds_kid_algorithm_and_material() {
        let x1 = "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4";
        let x2 = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let set = |keys: Vec<serde_json::Value>| {
            KeySet::from_jwks_json(&serde_json::json!({ "keys": keys }).to_string(), Algorithm::ES256).unwrap().0
        };
        let a = set(vec![ec_jwk("a", x1)]);
        let fp = a.get(Some("a")).unwrap().fingerprint;
        assert!(a.contains(&fp));
        let again = set(vec![ec_jwk("a", x1)]);
        assert_eq!((again.missing_from(&a), a.missing_from(&again)), (0, 0), "same key parsed again, same fingerprint");
        assert!(!set(vec![ec_jwk("a", x2)]).contains(&fp), "same kid, other material");
        assert!(!set(vec![ec_jwk("b", x1)]).contains(&fp), "same material, other kid");
        let two = set(vec![ec_jwk("a", x1), ec_jwk("b", x2)]);
        assert!(two.contains(&fp));
        assert_eq!((two.missing_from(&a), a.missing_from(&two)), (1, 0));
    }
}
