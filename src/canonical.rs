//! Canonical JSON (object keys sorted, no whitespace) and its SHA-256: the form hashed for
//! audit records, action-token bindings and request hashes, independent of key order.

use serde_json::Value;

/// Serializes `v` with object keys sorted recursively.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Hex SHA-256 of the canonical form.
pub fn hash(v: &Value) -> String {
    sha256_hex(to_string(v).as_bytes())
}

/// Hex SHA-256. aws-lc's assembly implementation: it is on every audit append's path, and
/// stays fast in debug builds too (the pure-Rust one costs ten times as much there).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":"s"}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        assert_eq!(hash(&a), hash(&b));
        assert_eq!(to_string(&json!({"b":1,"a":"\"q"})), r#"{"a":"\"q","b":1}"#);
    }
}
