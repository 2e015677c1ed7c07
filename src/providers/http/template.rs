//! `{input.a.b}` placeholders in manifest templates.

use super::ProviderError;
use serde_json::Value;

/// A piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part<'a> {
    /// Literal text.
    Lit(&'a str),
    /// An input field path, dotted, without the `input.` prefix.
    Var(&'a str),
}

/// Splits a template into literals and placeholders. Unbalanced braces and malformed paths
/// are errors.
pub(crate) fn parse(t: &str) -> Result<Vec<Part<'_>>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                parts.push(Part::Lit(rest));
                break;
            }
            Some(i) if rest.as_bytes()[i] == b'}' => return Err(format!("unbalanced '}}' in {t:?}")),
            Some(i) => {
                if i > 0 {
                    parts.push(Part::Lit(&rest[..i]));
                }
                let after = &rest[i + 1..];
                let end = after.find('}').ok_or_else(|| format!("unclosed '{{' in {t:?}"))?;
                let var = &after[..end];
                let var = var.strip_prefix("input.").unwrap_or(var);
                let ident_ok =
                    |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if var == "input" || !var.split('.').all(ident_ok) {
                    return Err(format!("bad placeholder {{{}}} in {t:?}", &after[..end]));
                }
                parts.push(Part::Var(var));
                rest = &after[end + 1..];
            }
        }
    }
    Ok(parts)
}

/// The input value at a dotted path; `None` when missing or `null`.
pub(crate) fn lookup<'a>(input: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(input, |v, key| v.get(key)).filter(|v| !v.is_null())
}

/// Text of a scalar for interpolation; objects and arrays are refused.
pub(crate) fn scalar_text(field: &str, v: &Value) -> Result<String, ProviderError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ProviderError::validation(format!("{field} must be a string, number or boolean"))),
    }
}

/// If the template is exactly one placeholder, its path.
pub(crate) fn sole_var<'a>(parts: &[Part<'a>]) -> Option<&'a str> {
    match parts {
        [Part::Var(v)] => Some(v),
        _ => None,
    }
}

/// Interpolates a template into text; every placeholder must be present. `encode` is applied
/// to each substituted value (not to literals).
pub(crate) fn render(
    parts: &[Part<'_>],
    input: &Value,
    encode: impl Fn(&str, &str) -> Result<String, ProviderError>,
) -> Result<String, ProviderError> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Lit(l) => out.push_str(l),
            Part::Var(path) => {
                let v = lookup(input, path).ok_or_else(|| ProviderError::validation(format!("{path} is required")))?;
                out.push_str(&encode(path, &scalar_text(path, v)?)?);
            }
        }
    }
    Ok(out)
}
