use serde_json::{json, Value};

use super::*;

/// The spec's example tool (2026-07-28 server/tools, "x-mcp-header").
fn execute_sql() -> Value {
    json!({
        "type": "object",
        "properties": {
            "region": {"type": "string", "description": "The region", "x-mcp-header": "Region"},
            "query": {"type": "string", "description": "The SQL query to execute"}
        },
        "required": ["region", "query"]
    })
}

fn marks(schema: Value) -> Vec<ParamHeader> {
    annotations(&schema).unwrap_or_else(|e| panic!("valid schema refused: {e}"))
}

fn invalid(schema: Value) -> String {
    match annotations(&schema) {
        Err(Invalid(why)) => why,
        Ok(m) => panic!("invalid schema accepted: {m:?}"),
    }
}

fn sent(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    presented(pairs.iter().map(|(k, v)| (*k, v.as_bytes())))
}

#[test]
fn the_spec_example_mirrors_region() {
    let m = marks(execute_sql());
    assert_eq!(m, vec![ParamHeader { name: "Region".into(), path: vec!["region".into()], kind: Kind::String }]);
    let args = json!({"region": "us-west1", "query": "SELECT * FROM users"});
    assert_eq!(headers_for(&m, &args), vec![("Mcp-Param-Region".to_string(), "us-west1".to_string())]);
    assert_eq!(check(&m, &args, &sent(&[("mcp-param-region", "us-west1")]), true), Ok(()));
}

#[test]
fn values_are_encoded_per_the_spec_table() {
    let schema = json!({"type": "object", "properties": {"v": {"type": "string", "x-mcp-header": "V"}}});
    let m = marks(schema);
    for (value, header) in [
        ("us-west1", "us-west1"),
        ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        (" padded ", "=?base64?IHBhZGRlZCA=?="),
        ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
        ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
    ] {
        let args = json!({"v": value});
        assert_eq!(headers_for(&m, &args), vec![("Mcp-Param-V".to_string(), header.to_string())], "{value:?}");
        assert_eq!(check(&m, &args, &sent(&[("Mcp-Param-V", header)]), true), Ok(()), "{value:?}");
    }
}

#[test]
fn scalars_render_as_the_spec_says_and_others_send_nothing() {
    let schema = json!({"type": "object", "properties": {
        "n": {"type": "integer", "x-mcp-header": "N"},
        "b": {"type": "boolean", "x-mcp-header": "B"},
        "s": {"type": "string", "x-mcp-header": "S"},
    }});
    let m = marks(schema);
    let h = headers_for(&m, &json!({"n": -7, "b": false, "s": ""}));
    assert_eq!(
        h,
        vec![
            ("Mcp-Param-N".to_string(), "-7".to_string()),
            ("Mcp-Param-B".to_string(), "false".to_string()),
            ("Mcp-Param-S".to_string(), "".to_string()),
        ]
    );
    assert_eq!(headers_for(&m, &json!({"n": 42.0, "b": true}))[..2].len(), 2);
    assert_eq!(headers_for(&m, &json!({"n": 42.0}))[0].1, "42", "an integral float is an integer");
    assert_eq!(headers_for(&m, &json!({"n": u64::MAX}))[0].1, u64::MAX.to_string());
    // Absent, null, fractional and non-scalar arguments have no header.
    for args in
        [json!({}), json!({"n": null}), json!({"n": 1.5}), json!({"n": [1]}), json!({"n": {"x": 1}}), json!(null)]
    {
        assert!(headers_for(&m, &args).is_empty(), "{args}");
    }
}

#[test]
fn nested_properties_are_statically_reachable() {
    let schema = json!({"type": "object", "properties": {
        "target": {"type": "object", "properties": {
            "tenant": {"type": "string", "x-mcp-header": "Tenant"}
        }}
    }});
    let m = marks(schema);
    assert_eq!(m[0].path, vec!["target".to_string(), "tenant".to_string()]);
    assert_eq!(
        headers_for(&m, &json!({"target": {"tenant": "acme"}})),
        vec![("Mcp-Param-Tenant".into(), "acme".into())]
    );
    // A step that is missing or not an object means no value.
    assert!(headers_for(&m, &json!({"target": "acme"})).is_empty());
    assert!(headers_for(&m, &json!({"tenant": "acme"})).is_empty());
}

#[test]
fn names_must_be_non_empty_tokens() {
    for bad in
        [json!(""), json!("Re gion"), json!("a:b"), json!("é"), json!("a\r\nX-Evil: 1"), json!("a\tb"), json!("(x)")]
    {
        let schema = json!({"type": "object", "properties": {"r": {"type": "string", "x-mcp-header": bad}}});
        let why = invalid(schema);
        assert!(why.contains("token"), "{bad}: {why}");
    }
    for bad in [json!(42), json!(null), json!(true), json!(["Region"]), json!({"name": "Region"})] {
        let schema = json!({"type": "object", "properties": {"r": {"type": "string", "x-mcp-header": bad}}});
        assert!(invalid(schema).contains("must be a string"), "{bad}");
    }
    // Every tchar is allowed.
    let odd = "!#$%&'*+-.^_`|~09AZaz";
    let schema = json!({"type": "object", "properties": {"r": {"type": "string", "x-mcp-header": odd}}});
    assert_eq!(marks(schema)[0].header_name(), format!("Mcp-Param-{odd}"));
}

#[test]
fn only_string_integer_and_boolean_properties() {
    for ty in [json!("number"), json!("object"), json!("array"), json!("null"), json!(["string", "null"]), json!(null)]
    {
        let schema = json!({"type": "object", "properties": {"r": {"type": ty, "x-mcp-header": "R"}}});
        assert!(invalid(schema).contains("\"type\""), "{ty}");
    }
    let untyped = json!({"type": "object", "properties": {"r": {"x-mcp-header": "R"}}});
    invalid(untyped);
    let by_ref = json!({"type": "object", "$defs": {"R": {"type": "string"}},
                        "properties": {"r": {"$ref": "#/$defs/R", "x-mcp-header": "R"}}});
    invalid(by_ref);
}

#[test]
fn marks_off_the_properties_chain_are_invalid() {
    let leaf = json!({"type": "string", "x-mcp-header": "R"});
    let off_chain = [
        json!({"type": "object", "x-mcp-header": "Root"}),
        json!({"type": "object", "properties": {"list": {"type": "array", "items": leaf}}}),
        json!({"type": "object", "properties": {"list": {"type": "array", "items": [leaf]}}}),
        json!({"type": "object", "properties": {"t": {"type": "array", "prefixItems": [leaf]}}}),
        json!({"type": "object", "anyOf": [{"properties": {"r": leaf}}]}),
        json!({"type": "object", "oneOf": [{"properties": {"r": leaf}}]}),
        json!({"type": "object", "allOf": [{"properties": {"r": leaf}}]}),
        json!({"type": "object", "not": {"properties": {"r": leaf}}}),
        json!({"type": "object", "if": {"properties": {"r": leaf}}}),
        json!({"type": "object", "then": {"properties": {"r": leaf}}}),
        json!({"type": "object", "else": {"properties": {"r": leaf}}}),
        json!({"type": "object", "$defs": {"R": leaf}}),
        json!({"type": "object", "definitions": {"R": leaf}}),
        json!({"type": "object", "additionalProperties": leaf}),
        json!({"type": "object", "patternProperties": {"^r": leaf}}),
        json!({"type": "object", "dependentSchemas": {"a": {"properties": {"r": leaf}}}}),
        json!({"type": "object", "properties": {"o": {"type": "object", "anyOf": [{"properties": {"r": leaf}}]}}}),
    ];
    for schema in off_chain {
        let why = invalid(schema.clone());
        assert!(why.contains("root") || why.contains("properties"), "{schema}: {why}");
    }
}

#[test]
fn instance_data_and_property_names_are_not_marks() {
    let schema = json!({"type": "object",
        "default": {"x-mcp-header": "A"},
        "examples": [{"x-mcp-header": "B"}],
        "properties": {
            "x-mcp-header": {"type": "object", "const": {"x-mcp-header": "C"}},
            "e": {"enum": [{"x-mcp-header": "D"}]},
            "d": {"type": "string", "default": "x", "x-mcp-header": "Real"}
        }
    });
    let m = marks(schema);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].name, "Real");
    assert!(marks(json!({"type": "object"})).is_empty());
    assert!(marks(json!(true)).is_empty());
    assert!(of_tool(&json!({"name": "no_schema"})).unwrap().is_empty());
}

#[test]
fn names_are_case_insensitively_unique() {
    let schema = json!({"type": "object", "properties": {
        "a": {"type": "string", "x-mcp-header": "Region"},
        "o": {"type": "object", "properties": {"b": {"type": "string", "x-mcp-header": "REGION"}}}
    }});
    let why = invalid(schema);
    assert!(why.contains("REGION") && why.contains("case-insensitive"), "{why}");
}

#[test]
fn marks_come_in_document_order() {
    let schema = json!({"type": "object", "properties": {
        "z": {"type": "string", "x-mcp-header": "Z"},
        "a": {"type": "object", "properties": {"m": {"type": "integer", "x-mcp-header": "M"}}},
        "b": {"type": "boolean", "x-mcp-header": "B"}
    }});
    let names: Vec<String> = marks(schema).into_iter().map(|m| m.name).collect();
    assert_eq!(names, ["Z", "M", "B"]);
}

#[test]
fn check_refuses_what_contradicts_the_body() {
    let m = marks(execute_sql());
    let args = json!({"region": "us-west1", "query": "q"});
    let refused = |headers: &[(&str, &str)], require: bool| check(&m, &args, &sent(headers), require).unwrap_err().0;
    assert!(refused(&[("mcp-param-region", "eu-west1")], false).contains("does not match"));
    assert!(refused(&[("MCP-PARAM-REGION", "eu-west1")], false).contains("does not match"), "names fold case");
    assert!(refused(&[("mcp-param-region", "us-west1"), ("Mcp-Param-Region", "us-west1")], false)
        .contains("more than once"));
    assert!(refused(&[], true).contains("missing"));
    assert!(refused(&[("mcp-param-region", "=?base64?!!?=")], false).contains("malformed"));
    assert!(refused(&[("mcp-param-region", "=?base64?dXMtd2VzdDI=?=")], false).contains("does not match"));
    // Encoded or not, the same value agrees.
    assert_eq!(check(&m, &args, &sent(&[("mcp-param-region", "=?base64?dXMtd2VzdDE=?=")]), true), Ok(()));
    // A request of an older revision may omit the header; one it sends must still agree.
    assert_eq!(check(&m, &args, &[], false), Ok(()));
    // Headers no mark names are forwarded, not judged.
    assert_eq!(check(&m, &args, &sent(&[("mcp-param-region", "us-west1"), ("mcp-param-other", "x")]), true), Ok(()));
}

#[test]
fn a_header_without_its_argument_is_refused() {
    let m = marks(execute_sql());
    for args in [json!({"query": "q"}), json!({"region": null}), json!({})] {
        let e = check(&m, &args, &sent(&[("mcp-param-region", "us-west1")]), false).unwrap_err();
        assert!(e.0.contains("absent"), "{args}: {e}");
        assert_eq!(check(&m, &args, &[], true), Ok(()), "{args}: no value, no header expected");
    }
    // A value with no header form cannot be matched by any header, and needs none.
    let args = json!({"region": {"nested": 1}});
    assert!(check(&m, &args, &sent(&[("mcp-param-region", "x")]), false).is_err());
    assert_eq!(check(&m, &args, &[], true), Ok(()));
}

#[test]
fn invalid_characters_are_refused() {
    let m = marks(execute_sql());
    let args = json!({"region": "é"});
    for raw in [&b"\xc3\xa9"[..], b"a\x7f", b"a\x01", b"\xff"] {
        let p = vec![("mcp-param-region".to_string(), raw.to_vec())];
        assert!(check(&m, &args, &p, false).unwrap_err().0.contains("invalid characters"), "{raw:?}");
    }
    let p = vec![("mcp-param-region".to_string(), b"=?base64?w6k=?=".to_vec())];
    assert_eq!(check(&m, &args, &p, true), Ok(()));
    let tab = json!({"region": "a\tb"});
    let p = vec![("mcp-param-region".to_string(), b"a\tb".to_vec())];
    assert_eq!(check(&m, &tab, &p, true), Ok(()), "tab is a legal header character");
}

#[test]
fn integers_compare_numerically_booleans_exactly() {
    let schema = json!({"type": "object", "properties": {
        "n": {"type": "integer", "x-mcp-header": "N"},
        "b": {"type": "boolean", "x-mcp-header": "B"}
    }});
    let m = marks(schema);
    let ok = |args: Value, n: &str| check(&m, &args, &sent(&[("mcp-param-n", n)]), false).is_ok();
    assert!(ok(json!({"n": 42}), "42"));
    assert!(ok(json!({"n": 42}), "42.0"));
    assert!(ok(json!({"n": 42.0}), "42"));
    assert!(ok(json!({"n": -7}), "-7"));
    assert!(ok(json!({"n": 9_007_199_254_740_993_u64}), "9007199254740993"), "exact beyond 2^53");
    assert!(!ok(json!({"n": 9_007_199_254_740_993_u64}), "9007199254740992"));
    assert!(!ok(json!({"n": 42}), "42.5"));
    assert!(!ok(json!({"n": 42}), "4.2e1"));
    assert!(!ok(json!({"n": 42}), "+42"));
    assert!(!ok(json!({"n": 42}), "43"));
    assert!(!ok(json!({"n": 42}), "42."));
    let b = |args: Value, v: &str| check(&m, &args, &sent(&[("mcp-param-b", v)]), false).is_ok();
    assert!(b(json!({"b": true}), "true"));
    assert!(b(json!({"b": false}), "false"));
    assert!(!b(json!({"b": true}), "True"));
    assert!(!b(json!({"b": true}), "1"));
}

#[test]
fn what_a_client_sends_always_passes_the_check() {
    let schema = json!({"type": "object", "properties": {
        "s": {"type": "string", "x-mcp-header": "S"},
        "n": {"type": "integer", "x-mcp-header": "n"},
        "b": {"type": "boolean", "x-mcp-header": "B-Flag"},
        "o": {"type": "object", "properties": {"deep": {"type": "string", "x-mcp-header": "Deep"}}}
    }});
    let m = marks(schema);
    for args in [
        json!({"s": "plain", "n": 1, "b": true, "o": {"deep": "x"}}),
        json!({"s": " edge ", "n": -0, "b": false}),
        json!({"s": "日本\r\n", "o": {"deep": "=?base64?x?="}}),
        json!({"s": null, "n": 2.0}),
        json!({}),
    ] {
        let h = headers_for(&m, &args);
        for (k, v) in &h {
            assert!(http::HeaderName::from_bytes(k.as_bytes()).is_ok() && http::HeaderValue::from_str(v).is_ok());
        }
        let p = presented(h.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
        assert_eq!(check(&m, &args, &p, true), Ok(()), "{args} -> {h:?}");
    }
}

#[test]
fn presented_keeps_only_mcp_param_headers() {
    let p = sent(&[("Mcp-Param-Region", "eu"), ("mcp-param-", "x"), ("mcp-name", "t"), ("x-mcp-param-a", "y")]);
    assert_eq!(p, vec![("mcp-param-region".to_string(), b"eu".to_vec())]);
}

#[test]
fn the_registry_warns_once_per_invalid_tool() {
    let r = Registry::default();
    let bad = json!({"name": "bad", "inputSchema": {"type": "object", "properties": {"x": {"type": "number", "x-mcp-header": "X"}}}});
    let good = json!({"name": "good", "inputSchema": execute_sql()});
    let plain = json!({"name": "plain", "inputSchema": {"type": "object"}});
    let newly = r.set("s", &[bad.clone(), good.clone(), plain.clone()]);
    assert_eq!(newly.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["bad"]);
    assert!(r.set("s", &[bad.clone(), good.clone(), plain]).is_empty(), "rediscovery repeats no warning");
    assert!(matches!(r.get("s", "bad"), Some(Err(_))));
    assert_eq!(r.get("s", "good").unwrap().unwrap().len(), 1);
    assert!(r.get("s", "plain").is_none() && r.get("s", "nope").is_none() && r.get("t", "good").is_none());
    // Another reason is another warning; the same tool on another server is its own.
    let worse = json!({"name": "bad", "inputSchema": {"type": "object", "x-mcp-header": "Root"}});
    assert_eq!(r.set("s", std::slice::from_ref(&worse)).len(), 1);
    assert_eq!(r.set("t", &[worse]).len(), 1);
    // A fixed tool is valid again, and the server's list replaces the old one.
    assert!(r.set("s", &[good]).is_empty());
    assert!(r.get("s", "bad").is_none());
    assert!(r.get("s", "good").unwrap().is_ok());
}
