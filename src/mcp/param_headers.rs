//! `Mcp-Param-{Name}` headers (2026-07-28 Streamable HTTP, "Custom Headers from Tool
//! Parameters"): a tool's `inputSchema` may mark properties with `x-mcp-header: Name`, and a
//! client then mirrors each marked argument into `Mcp-Param-Name`, so intermediaries can
//! route on it without reading the body. Everything about them lives here, without I/O:
//!
//! - [`annotations`]: the marks of one `inputSchema`, validated per spec — a non-empty RFC
//!   9110 token, case-insensitively unique, only on `string`/`integer`/`boolean` properties
//!   reached from the root through `properties` keys alone (never through `items`,
//!   composition, conditionals, `$defs` or `$ref`). One bad mark makes the tool invalid: the
//!   gateway does not offer it (clients MUST drop it from `tools/list`).
//! - [`headers_for`]: the headers a client sends for given arguments (values encoded by
//!   [`encode_value`]; an absent or `null` argument sends none).
//! - [`check`]: whether the `Mcp-Param-*` headers presented with a `tools/call` agree with its
//!   body (-32020 `HeaderMismatch` otherwise). A header that contradicts the body, carries
//!   characters outside visible ASCII, space and tab, or a corrupt Base64 sentinel is always
//!   refused; a missing header only for a 2026-07-28 request (`require`), since older
//!   revisions do not know the feature. Headers no annotation names are not ours to judge.
//! - [`Registry`]: the validated marks of every discovered tool, by server and tool name.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::Value;

use crate::upstream::headers::{decode_value, encode_value};

/// The schema keyword that marks a property.
pub const KEYWORD: &str = "x-mcp-header";
/// What the annotation's name is appended to.
pub const PREFIX: &str = "Mcp-Param-";
/// [`PREFIX`] as header maps spell it.
pub const PREFIX_LOWER: &str = "mcp-param-";

/// The JSON Schema type of a marked property (`number` is not allowed: float spellings
/// differ between implementations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    String,
    Integer,
    Boolean,
}

/// One valid `x-mcp-header` mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamHeader {
    /// The annotation as declared: `{Name}` in `Mcp-Param-{Name}`.
    pub name: String,
    /// The `properties` keys from the schema root to the marked property.
    pub path: Vec<String>,
    pub kind: Kind,
}

impl ParamHeader {
    /// `Mcp-Param-{Name}`, spelled as declared.
    pub fn header_name(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }
}

/// Why a tool's marks are invalid (logged once; the tool is not offered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Why presented headers disagree with the body (the -32020 message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// Keywords whose value is one subschema (or, for `items`/`additionalItems` in older
/// drafts, an array of them). Crossing one leaves the statically reachable chain.
const SUBSCHEMA: &[&str] = &[
    "items",
    "additionalItems",
    "contains",
    "unevaluatedItems",
    "additionalProperties",
    "propertyNames",
    "unevaluatedProperties",
    "not",
    "if",
    "then",
    "else",
    "contentSchema",
];
/// Keywords whose value is an array of subschemas.
const SUBSCHEMA_LIST: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value maps names to subschemas (`dependencies`' string arrays are skipped
/// as they are not objects).
const SUBSCHEMA_MAP: &[&str] = &["patternProperties", "dependentSchemas", "dependencies", "$defs", "definitions"];

/// The marks of `input_schema`, in document order, or why they are invalid. Instance data
/// (`default`, `examples`, `const`, `enum`) is never searched, and `$ref` is not followed.
pub fn annotations(input_schema: &Value) -> Result<Vec<ParamHeader>, Invalid> {
    let mut found: Vec<ParamHeader> = Vec::new();
    // (properties path, or None once off the static chain; the schema at that position)
    let mut stack: Vec<(Option<Vec<String>>, &Value)> = vec![(Some(Vec::new()), input_schema)];
    while let Some((path, node)) = stack.pop() {
        let Value::Object(schema) = node else { continue };
        if let Some(mark) = schema.get(KEYWORD) {
            found.push(one(path.as_deref(), mark, schema.get("type"))?);
        }
        // Pushed in reverse so positions are visited in document order.
        let mut children: Vec<(Option<Vec<String>>, &Value)> = Vec::new();
        for (keyword, value) in schema {
            match (keyword.as_str(), value) {
                ("properties", Value::Object(props)) => {
                    for (name, sub) in props {
                        let p = path.as_ref().map(|p| p.iter().cloned().chain([name.clone()]).collect());
                        children.push((p, sub));
                    }
                }
                (k, Value::Array(list)) if SUBSCHEMA_LIST.contains(&k) || SUBSCHEMA.contains(&k) => {
                    children.extend(list.iter().map(|s| (None, s)));
                }
                (k, sub) if SUBSCHEMA.contains(&k) => children.push((None, sub)),
                (k, Value::Object(map)) if SUBSCHEMA_MAP.contains(&k) => {
                    children.extend(map.values().map(|s| (None, s)));
                }
                _ => {}
            }
        }
        stack.extend(children.into_iter().rev());
    }
    let mut seen: HashMap<String, &ParamHeader> = HashMap::new();
    for h in &found {
        if let Some(first) = seen.insert(h.name.to_ascii_lowercase(), h) {
            return Err(Invalid(format!(
                "{KEYWORD} {:?} on property {:?} repeats the one on {:?} (names are case-insensitive)",
                h.name,
                h.path.join("."),
                first.path.join(".")
            )));
        }
    }
    Ok(found)
}

/// Validates one mark found at `path` (None: off the static chain).
fn one(path: Option<&[String]>, mark: &Value, ty: Option<&Value>) -> Result<ParamHeader, Invalid> {
    let path = match path {
        Some(p) if !p.is_empty() => p,
        Some(_) => return Err(Invalid(format!("{KEYWORD} on the schema root, not on a property"))),
        None => {
            return Err(Invalid(format!(
                "{KEYWORD} on a property not reached through `properties` alone (items, composition, \
                 conditionals, definitions and $ref are not allowed)"
            )))
        }
    };
    let at = path.join(".");
    let Value::String(name) = mark else {
        return Err(Invalid(format!("property {at:?}: {KEYWORD} must be a string")));
    };
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(Invalid(format!("property {at:?}: {KEYWORD} {name:?} is not an HTTP field-name token")));
    }
    let kind = match ty.and_then(Value::as_str) {
        Some("string") => Kind::String,
        Some("integer") => Kind::Integer,
        Some("boolean") => Kind::Boolean,
        _ => {
            return Err(Invalid(format!(
                "property {at:?}: {KEYWORD} needs \"type\" to be one of \"string\", \"integer\", \"boolean\""
            )))
        }
    };
    Ok(ParamHeader { name: name.clone(), path: path.to_vec(), kind })
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The marks of a tool definition (`inputSchema`; a tool without one has none).
pub fn of_tool(tool: &Value) -> Result<Vec<ParamHeader>, Invalid> {
    tool.get("inputSchema").map_or(Ok(Vec::new()), annotations)
}

/// The argument at `path`, `None` when a step is missing or not an object, or it is `null`.
fn value_at<'v>(arguments: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut node = arguments;
    for key in path {
        node = node.as_object()?.get(key)?;
    }
    (!node.is_null()).then_some(node)
}

/// The largest integer every JSON implementation holds exactly (2^53 − 1).
const SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// A scalar argument as a header carries it (before encoding): strings as they are, booleans
/// `true`/`false`, integers in decimal (an integral float within the safe range too). Other
/// values have no header form.
fn render(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(_) => integer_of(v).map(|i| i.to_string()),
        _ => None,
    }
}

/// An integral number's value (floats only within the safe range).
fn integer_of(v: &Value) -> Option<i128> {
    let n = v.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i.into());
    }
    if let Some(u) = n.as_u64() {
        return Some(u.into());
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f.abs() <= SAFE_INTEGER).then_some(f as i128)
}

/// The `Mcp-Param-*` headers for `arguments`: one per mark whose argument is present, not
/// `null` and scalar, its value encoded per the transport's Value Encoding rule.
pub fn headers_for(marks: &[ParamHeader], arguments: &Value) -> Vec<(String, String)> {
    marks
        .iter()
        .filter_map(|m| {
            let v = render(value_at(arguments, &m.path)?)?;
            Some((m.header_name(), encode_value(&v)))
        })
        .collect()
}

/// The `Mcp-Param-*` headers among `headers` (names lowercased, values as sent).
pub fn presented<'h>(headers: impl IntoIterator<Item = (&'h str, &'h [u8])>) -> Vec<(String, Vec<u8>)> {
    headers
        .into_iter()
        .filter(|(k, _)| k.len() > PREFIX_LOWER.len() && k[..PREFIX_LOWER.len()].eq_ignore_ascii_case(PREFIX_LOWER))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_vec()))
        .collect()
}

/// Checks the `presented` `Mcp-Param-*` headers of a `tools/call` against its `arguments`.
/// `require`: a 2026-07-28 request, where a marked argument without its header is a mismatch.
pub fn check(
    marks: &[ParamHeader],
    arguments: &Value,
    presented: &[(String, Vec<u8>)],
    require: bool,
) -> Result<(), Mismatch> {
    for m in marks {
        let header = m.header_name();
        let key = header.to_ascii_lowercase();
        let mut values = presented.iter().filter(|(k, _)| *k == key).map(|(_, v)| v.as_slice());
        let raw = values.next();
        if values.next().is_some() {
            return Err(Mismatch(format!("{header} header appears more than once")));
        }
        let decoded = match raw {
            Some(raw) => Some(decode_header(&header, raw)?),
            None => None,
        };
        let arg = m.path.join(".");
        let value = value_at(arguments, &m.path);
        match (value, value.and_then(render), decoded) {
            (None, _, Some(_)) => {
                return Err(Mismatch(format!("{header} header is present but argument {arg:?} is absent")))
            }
            (Some(_), None, Some(_)) => {
                return Err(Mismatch(format!("{header} header cannot match argument {arg:?} (not a scalar)")))
            }
            (Some(_), Some(_), None) if require => {
                return Err(Mismatch(format!("{header} header is missing but argument {arg:?} is present")))
            }
            (Some(v), Some(rendered), Some(d)) if !agrees(m.kind, v, &rendered, &d) => {
                return Err(Mismatch(format!("{header} header does not match argument {arg:?}")))
            }
            _ => {}
        }
    }
    Ok(())
}

/// A presented value, decoded: only visible ASCII, space and tab may be sent, and a Base64
/// sentinel must be canonical Base64 of UTF-8.
fn decode_header(header: &str, raw: &[u8]) -> Result<String, Mismatch> {
    let text = std::str::from_utf8(raw)
        .ok()
        .filter(|t| t.bytes().all(|b| b == b'\t' || (0x20..=0x7e).contains(&b)))
        .ok_or_else(|| Mismatch(format!("{header} header contains invalid characters")))?;
    decode_value(text).ok_or_else(|| Mismatch(format!("{header} header carries a malformed Base64 value")))
}

/// Does a decoded header value agree with the argument? Integers compare numerically (`42`
/// and `42.0` are equal, as the spec suggests), exactly, for plain decimal spellings.
fn agrees(kind: Kind, v: &Value, rendered: &str, decoded: &str) -> bool {
    if kind == Kind::Integer {
        if let (Some(body), Some(header)) = (integer_of(v), decimal(decoded)) {
            return body == header;
        }
    }
    decoded == rendered
}

/// `-?[0-9]+(\.0+)?` as an integer; other spellings (exponents, fractions) are not numbers
/// here.
fn decimal(s: &str) -> Option<i128> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    if s.contains('.') && (fraction.is_empty() || !fraction.bytes().all(|b| b == b'0')) {
        return None;
    }
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 30 {
        return None;
    }
    whole.parse().ok()
}

/// A tool's marks as the registry keeps them.
pub type Marks = Result<Arc<[ParamHeader]>, Invalid>;

/// The validated marks of every discovered tool, by server and tool name. Only tools with
/// marks (valid or not) are kept: a tool absent here has nothing to mirror or check.
#[derive(Default)]
pub struct Registry {
    by_server: RwLock<HashMap<String, HashMap<String, Marks>>>,
}

impl Registry {
    /// Replaces `server`'s tools. Returns the tools that became invalid with this list (or
    /// changed why they are), so each is warned about once, not on every rediscovery.
    pub fn set(&self, server: &str, tools: &[Value]) -> Vec<(String, Invalid)> {
        let mut next: HashMap<String, Marks> = HashMap::new();
        for t in tools {
            let Some(name) = t.get("name").and_then(Value::as_str) else { continue };
            match of_tool(t) {
                Ok(marks) if marks.is_empty() => {}
                Ok(marks) => {
                    next.insert(name.to_string(), Ok(marks.into()));
                }
                Err(e) => {
                    next.insert(name.to_string(), Err(e));
                }
            }
        }
        let mut all = self.by_server.write();
        let before = all.get(server);
        let newly: Vec<(String, Invalid)> = next
            .iter()
            .filter_map(|(name, m)| {
                let why = m.as_ref().err()?;
                let known = before.and_then(|b| b.get(name)).is_some_and(|old| old.as_ref().err() == Some(why));
                (!known).then(|| (name.clone(), why.clone()))
            })
            .collect();
        all.insert(server.to_string(), next);
        newly
    }

    /// The marks of `tool` on `server`; `None` when it has none or is unknown.
    pub fn get(&self, server: &str, tool: &str) -> Option<Marks> {
        self.by_server.read().get(server)?.get(tool).cloned()
    }
}

#[cfg(test)]
mod tests;
