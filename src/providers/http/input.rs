//! Typed access to tool input fields with caller-facing validation messages.

use super::ProviderError;
use serde_json::{Map, Value};

/// The input as an object.
pub(crate) fn object(input: &Value) -> Result<&Map<String, Value>, ProviderError> {
    input.as_object().ok_or_else(|| ProviderError::validation("input must be a JSON object"))
}

/// Refuses fields outside `allowed`, naming them and the allowed set.
pub(crate) fn only_fields(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), ProviderError> {
    let unknown: Vec<&str> = obj.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(ProviderError::validation(format!("unknown field(s) {}; allowed: {}", unknown.join(", "), allowed.join(", "))))
}

/// A field that is present and not `null`.
pub(crate) fn present<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    obj.get(field).filter(|v| !v.is_null())
}

/// A required non-blank string.
pub(crate) fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, ProviderError> {
    match present(obj, field) {
        None => Err(ProviderError::validation(format!("{field} is required"))),
        Some(v) => non_blank(field, v),
    }
}

/// An optional non-blank string.
pub(crate) fn optional_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ProviderError> {
    present(obj, field).map(|v| non_blank(field, v)).transpose()
}

fn non_blank<'a>(field: &str, v: &'a Value) -> Result<&'a str, ProviderError> {
    match v.as_str() {
        Some(s) if !s.trim().is_empty() => Ok(s),
        Some(_) => Err(ProviderError::validation(format!("{field} must not be empty"))),
        None => Err(ProviderError::validation(format!("{field} must be a string"))),
    }
}

/// A positive integer given as a JSON integer or a string of ASCII digits. Anything else
/// (`"1/../admin"`, `-3`, `1.5`, `"0x10"`) is refused.
pub(crate) fn positive_int(field: &str, v: &Value) -> Result<u64, ProviderError> {
    let parsed = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
        _ => None,
    };
    parsed.filter(|n| *n > 0).ok_or_else(|| ProviderError::validation(format!("{field} must be a positive integer")))
}

/// An optional positive integer.
pub(crate) fn optional_positive_int(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, ProviderError> {
    present(obj, field).map(|v| positive_int(field, v)).transpose()
}

/// A finite non-negative number given as a JSON number or a numeric string.
pub(crate) fn optional_amount(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, ProviderError> {
    let Some(v) = present(obj, field) else { return Ok(None) };
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(ProviderError::validation(format!("{field} must be a non-negative number"))),
    }
}

/// An optional boolean.
pub(crate) fn optional_bool(obj: &Map<String, Value>, field: &str) -> Result<Option<bool>, ProviderError> {
    match present(obj, field) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ProviderError::validation(format!("{field} must be a boolean"))),
    }
}

/// An optional string restricted to `choices` (compared case-insensitively, returned as the
/// matching choice).
pub(crate) fn optional_choice(
    obj: &Map<String, Value>,
    field: &str,
    choices: &[&'static str],
) -> Result<Option<&'static str>, ProviderError> {
    let Some(s) = optional_str(obj, field)? else { return Ok(None) };
    choices
        .iter()
        .find(|c| c.eq_ignore_ascii_case(s.trim()))
        .copied()
        .map(Some)
        .ok_or_else(|| ProviderError::validation(format!("{field} must be one of {}", choices.join(", "))))
}

/// Digits of an account id after removing dashes (`123-456-7890` → `1234567890`); `None` when
/// anything else is left or the result is not `len` digits long.
pub(crate) fn account_digits(raw: &str, len: usize) -> Option<String> {
    let digits: String = raw.trim().chars().filter(|c| *c != '-').collect();
    (digits.len() == len && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}
