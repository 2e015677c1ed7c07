//! The policy input document (DESIGN §5), identical for REST and MCP traffic.
//!
//! It is built straight in the evaluator's own value type ([`regorus::Value`]): building a
//! `serde_json` tree and converting it cost ~6.5 µs of a ~28 µs decision. Its parts that do
//! not depend on the resource (subject, request, context) are built once by [`Prepared`] and
//! shared (reference-counted) by every input made from them, which is what a `tools/list`
//! answer of a thousand entries needs.

use std::collections::BTreeMap;

use regorus::Value as Rv;
use serde_json::Value;

use crate::auth::Principal;

/// What the request is about, besides the caller.
pub struct RequestFacts<'a> {
    pub protocol: &'a str,
    pub mcp_method: Option<&'a str>,
    pub arguments: &'a Value,
    pub path: &'a str,
    pub method: &'a str,
    pub client_ip: &'a str,
    pub corr_id: &'a str,
}

/// A policy input document, ready for the evaluator. Cloning it is cheap (shared parts).
#[derive(Clone, Debug, PartialEq)]
pub struct Input(Rv);

/// An input already in the evaluator's type (the benchmark's earlier, deserialized build).
impl From<Rv> for Input {
    fn from(doc: Rv) -> Input {
        Input(doc)
    }
}

impl Input {
    /// An input written as JSON (`fastmcp policy eval`, the offline replay, tests).
    pub fn from_json(doc: &Value) -> Input {
        Input(to_rego(doc))
    }

    /// The document in the evaluator's value type.
    pub fn value(&self) -> &Rv {
        &self.0
    }

    /// The string at `path`, if there is one.
    pub fn text(&self, path: &[&str]) -> Option<String> {
        match self.at(path) {
            Rv::String(s) => Some(s.to_string()),
            _ => None,
        }
    }

    /// The value at `path` as JSON (`null` when absent).
    pub fn json_at(&self, path: &[&str]) -> Value {
        match self.at(path) {
            Rv::Undefined => Value::Null,
            v => serde_json::to_value(v).unwrap_or(Value::Null),
        }
    }

    fn at(&self, path: &[&str]) -> &Rv {
        path.iter().fold(&self.0, |v, key| &v[&Rv::from(*key)])
    }
}

/// The resource-independent parts of the inputs of one request.
pub struct Prepared {
    subject: Rv,
    request: Rv,
    context: Rv,
}

impl Prepared {
    pub fn new(principal: &Principal, req: &RequestFacts<'_>) -> Prepared {
        let peer = match principal.peer.as_deref() {
            // The verified client certificate's names (mTLS), null without one.
            Some(p) => to_rego(&p.to_json()),
            None => Rv::Null,
        };
        let subject = object([
            ("sub", text(&principal.sub)),
            ("tenant", text(&principal.tenant)),
            ("roles", texts(&principal.roles)),
            ("scopes", texts(&principal.scopes)),
            ("claims", to_rego(&principal.claims)),
            ("peer", peer),
        ]);
        let request = object([
            ("protocol", text(req.protocol)),
            ("mcp_method", req.mcp_method.map_or(Rv::Null, text)),
            ("arguments", to_rego(req.arguments)),
            ("path", text(req.path)),
            ("method", text(req.method)),
        ]);
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let context =
            object([("time", Rv::from(time)), ("client_ip", text(req.client_ip)), ("corr_id", text(req.corr_id))]);
        Prepared { subject, request, context }
    }

    /// The input for `action` on `resource`.
    pub fn input(&self, action: &str, resource: &Value) -> Input {
        Input(object([
            ("subject", self.subject.clone()),
            ("action", text(action)),
            ("resource", to_rego(resource)),
            ("request", self.request.clone()),
            ("context", self.context.clone()),
        ]))
    }
}

/// Builds the input for `action` on `resource` by `principal`.
pub fn build(principal: &Principal, action: &str, resource: &Value, req: &RequestFacts<'_>) -> Input {
    Prepared::new(principal, req).input(action, resource)
}

/// `serde_json` to the evaluator's value, as regorus's own deserializer maps it (numbers as
/// u64, i64 or f64; serde_json holds no non-finite float), without its visitor machinery.
pub fn to_rego(v: &Value) -> Rv {
    match v {
        Value::Null => Rv::Null,
        Value::Bool(b) => Rv::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Rv::from(u)
            } else if let Some(i) = n.as_i64() {
                Rv::from(i)
            } else {
                n.as_f64().map_or(Rv::Null, Rv::from)
            }
        }
        Value::String(s) => text(s),
        Value::Array(a) => Rv::from(a.iter().map(to_rego).collect::<Vec<_>>()),
        Value::Object(o) => Rv::from(o.iter().map(|(k, v)| (text(k), to_rego(v))).collect::<BTreeMap<_, _>>()),
    }
}

fn text(s: &str) -> Rv {
    Rv::from(s)
}

fn texts(items: &[String]) -> Rv {
    Rv::from(items.iter().map(|s| text(s)).collect::<Vec<_>>())
}

fn object<const N: usize>(fields: [(&str, Rv); N]) -> Rv {
    Rv::from(fields.into_iter().map(|(k, v)| (text(k), v)).collect::<BTreeMap<_, _>>())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[test]
    fn conversion_equals_regorus_own() {
        let doc = json!({"a": [1, -2, 3.5, u64::MAX, i64::MIN, 1e300], "b": {"z": null, "y": true, "x": "s"},
                         "": [], "nested": [{"k": [{}]}], "unicode": "é\u{0}"});
        assert_eq!(to_rego(&doc), Rv::deserialize(&doc).expect("regorus"));
    }

    #[test]
    fn the_document_has_the_design_shape() {
        let p = Principal { sub: "a".into(), tenant: "acme".into(), roles: vec!["r".into()], ..Principal::anonymous() };
        let args = json!({"q": 1});
        let facts = RequestFacts {
            protocol: "mcp",
            mcp_method: Some("tools/call"),
            arguments: &args,
            path: "/mcp/x",
            method: "POST",
            client_ip: "10.0.0.1",
            corr_id: "c1",
        };
        let input = build(&p, "tools.invoke", &json!({"toolId": "mcp:x:y"}), &facts);
        let doc = input.json_at(&[]);
        assert_eq!(
            doc["subject"],
            json!({"sub": "a", "tenant": "acme", "roles": ["r"], "scopes": [], "claims": {}, "peer": null})
        );
        assert_eq!(doc["action"], "tools.invoke");
        assert_eq!(doc["resource"], json!({"toolId": "mcp:x:y"}));
        assert_eq!(
            doc["request"],
            json!({"protocol": "mcp", "mcp_method": "tools/call", "arguments": {"q": 1}, "path": "/mcp/x", "method": "POST"})
        );
        assert_eq!(
            (doc["context"]["client_ip"].clone(), doc["context"]["corr_id"].clone()),
            (json!("10.0.0.1"), json!("c1"))
        );
        assert!(doc["context"]["time"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(input.text(&["resource", "toolId"]).as_deref(), Some("mcp:x:y"));
        assert_eq!(input.text(&["resource", "missing"]), None);
        assert_eq!(input.json_at(&["request", "arguments"]), args);
    }
}
