//! URL encoding, header value checks and upstream message scrubbing shared by the providers.

use super::ProviderError;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986 unreserved characters: safe for one path segment and for query
/// keys and values alike (`/`, `?`, `#`, `&`, `=`, `%` and `+` are all encoded).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Longest upstream error message passed on to callers, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Encodes `value` as exactly one path segment. Empty, `.` and `..` are refused because they
/// would change the path structure even when encoded (servers normalise dot segments).
pub(crate) fn path_segment(field: &str, value: &str) -> Result<String, ProviderError> {
    if value.is_empty() || value == "." || value == ".." {
        return Err(ProviderError::validation(format!("{field}: not a valid path segment")));
    }
    Ok(utf8_percent_encode(value, COMPONENT).to_string())
}

/// Encodes a query key or value.
pub(crate) fn component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// `?k=v&k2=v2` (encoded) or an empty string when `pairs` is empty.
pub(crate) fn query_string<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let joined: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{}={}", component(k.as_ref()), component(v.as_ref()))).collect();
    format!("?{}", joined.join("&"))
}

/// Refuses header values that could split or smuggle headers.
pub(crate) fn header_value(what: &str, value: &str) -> Result<String, ProviderError> {
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(ProviderError::misconfigured(format!("{what} contains control characters")));
    }
    Ok(value.to_owned())
}

/// Lowercases a header name after checking it is a plain token.
pub(crate) fn header_name(name: &str) -> Result<String, ProviderError> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
        return Err(ProviderError::misconfigured("credential header name is not a plain token"));
    }
    Ok(name.to_ascii_lowercase())
}

/// Serialises a JSON body.
pub(crate) fn json_body(value: &serde_json::Value) -> Result<Vec<u8>, ProviderError> {
    serde_json::to_vec(value).map_err(|e| ProviderError::validation(format!("input not serialisable: {e}")))
}

/// Makes an upstream error message safe to show: values of `api_token`-like parameters are
/// replaced by `***` (providers sometimes echo the request URL), control characters become
/// spaces, and the result is cut to a bounded length.
pub(crate) fn scrub_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 8));
    let lower = message.to_ascii_lowercase();
    let mut i = 0;
    while i < message.len() {
        if let Some(len) = secret_marker_len(&lower[i..]) {
            out.push_str(&message[i..i + len]);
            out.push_str("***");
            i += len;
            while i < message.len() && !is_value_end(message.as_bytes()[i]) {
                i += 1;
            }
            continue;
        }
        let Some(c) = message[i..].chars().next() else { break };
        out.push(if c.is_control() { ' ' } else { c });
        i += c.len_utf8();
    }
    truncate_chars(out.trim(), MAX_MESSAGE_CHARS)
}

/// Length of a `name=` / `name%3D` / `"name":"` marker at the start of `s`, if any.
fn secret_marker_len(s: &str) -> Option<usize> {
    const NAMES: &[&str] = &["api_token", "access_token", "developer-token", "developer_token", "bearer "];
    for name in NAMES {
        if let Some(rest) = s.strip_prefix(name) {
            if name.ends_with(' ') {
                return Some(name.len());
            }
            for sep in ["=", "%3d", "\":\"", "\": \"", ": "] {
                if rest.starts_with(sep) {
                    return Some(name.len() + sep.len());
                }
            }
        }
    }
    None
}

fn is_value_end(b: u8) -> bool {
    matches!(b, b'&' | b'"' | b'\'' | b'#' | b',' | b';' | b')' | b'<' | b'>') || b.is_ascii_whitespace()
}

/// Cuts `s` to at most `max` characters, marking the cut with `…`.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((idx, _)) => format!("{}…", &s[..idx]),
        None => s.to_owned(),
    }
}

/// The error for a body that is not JSON: describes it without echoing it.
pub(crate) fn garbage(status: u16, content_type: Option<&str>, body: &[u8]) -> ProviderError {
    let ct = content_type.map(|c| truncate_chars(&scrub_message(c), 60)).unwrap_or_else(|| "none".to_owned());
    ProviderError::Garbage(format!(
        "upstream answered HTTP {status} with a non-JSON body ({} bytes, content-type {ct})",
        body.len()
    ))
}

/// Parses `body` as JSON; an empty body is `null`.
pub(crate) fn parse_json(body: &[u8]) -> Option<serde_json::Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(serde_json::Value::Null);
    }
    serde_json::from_slice(body).ok()
}

/// Whether `status` is 2xx.
pub(crate) fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}
