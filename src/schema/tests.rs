use serde_json::{json, Value};

use super::*;

fn schema() -> Value {
    json!({
        "type": "object",
        "required": ["name", "budget"],
        "additionalProperties": false,
        "properties": {
            "name": {"type": "string", "maxLength": 8},
            "budget": {"type": "number", "minimum": 0},
            "email": {"type": "string", "format": "email"},
            "start": {"type": "string", "format": "date-time"},
            "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "items": {"type": "array", "items": {
                "type": "object",
                "properties": {"qty": {"type": "integer", "minimum": 1}}
            }}
        }
    })
}

fn violations(instance: Value) -> Vec<SchemaViolation> {
    match SchemaCache::new().validate("t@1", &schema(), &instance) {
        Ok(()) => Vec::new(),
        Err(v) => v,
    }
}

#[test]
fn valid_instance_passes() {
    let ok = json!({"name": "a", "budget": 1, "email": "a@example.com",
        "start": "2025-01-01T00:00:00Z", "code": "USD", "items": [{"qty": 2}]});
    assert_eq!(violations(ok), Vec::new());
}

#[test]
fn required_missing() {
    let v = violations(json!({"name": "a"}));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].path, "");
    assert!(v[0].message.contains("budget"), "{v:?}");
}

#[test]
fn wrong_type() {
    let v = violations(json!({"name": "a", "budget": "lots"}));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].path, "/budget");
    assert!(v[0].message.contains("number"), "{v:?}");
    assert!(!v[0].message.contains("lots"), "the value is not echoed: {v:?}");
}

#[test]
fn email_format_is_asserted() {
    let v = violations(json!({"name": "a", "budget": 1, "email": "not-an-email"}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].path, "/email");
    assert!(v[0].message.contains("email"), "{v:?}");
}

#[test]
fn date_time_format_is_asserted() {
    let v = violations(json!({"name": "a", "budget": 1, "start": "yesterday"}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].path, "/start");
}

#[test]
fn pattern() {
    let v = violations(json!({"name": "a", "budget": 1, "code": "usd"}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].path, "/code");
}

#[test]
fn max_length() {
    let v = violations(json!({"name": "far too long", "budget": 1}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].path, "/name");
}

#[test]
fn additional_properties_false() {
    let v = violations(json!({"name": "a", "budget": 1, "extra": true}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].message.contains("extra"), "{v:?}");
}

#[test]
fn nested_pointer_paths() {
    let v = violations(json!({"name": "a", "budget": 1, "items": [{"qty": 1}, {"qty": 0}]}));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].path, "/items/1/qty");
}

#[test]
fn pointer_escapes_special_keys() {
    let schema = json!({"properties": {"a/b~c": {"type": "integer"}}});
    let Err(v) = SchemaCache::new().validate("k", &schema, &json!({"a/b~c": "x"})) else {
        panic!("expected a violation");
    };
    assert_eq!(v[0].path, "/a~1b~0c");
}

#[test]
fn violations_are_capped() {
    let schema = json!({"type": "array", "items": {"type": "integer"}});
    let instance = Value::Array((0..50).map(|i| json!(format!("s{i}"))).collect());
    let Err(v) = SchemaCache::new().validate("k", &schema, &instance) else {
        panic!("expected violations");
    };
    assert_eq!(v.len(), MAX_VIOLATIONS);
}

#[test]
fn huge_values_are_not_echoed() {
    let schema = json!({"enum": ["a", "b"]});
    let big = "x".repeat(10_000);
    let Err(v) = SchemaCache::new().validate("k", &schema, &json!(big)) else {
        panic!("expected a violation");
    };
    assert!(v[0].message.chars().count() <= MAX_MESSAGE_CHARS + 1, "{}", v[0].message.len());
    assert!(!v[0].message.contains("xxxxxxxxxx"));
}

#[test]
fn long_messages_are_truncated() {
    let long = "é".repeat(500);
    let cut = truncate(&long);
    assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS + 1);
    assert!(cut.ends_with('…'));
    assert_eq!(truncate("short"), "short");
}

#[test]
fn compiles_once_per_key_and_recompiles_on_change() {
    let cache = SchemaCache::new();
    let a = json!({"type": "integer"});
    let b = json!({"type": "string"});
    assert!(cache.validate("k", &a, &json!(1)).is_ok());
    assert!(cache.validate("k", &a, &json!(2)).is_ok());
    assert_eq!(cache.len(), 1);
    // Same key, new schema: the new schema applies.
    assert!(cache.validate("k", &b, &json!(1)).is_err());
    assert!(cache.validate("k", &b, &json!("s")).is_ok());
    assert_eq!(cache.len(), 1);
    cache.invalidate("k");
    assert!(cache.is_empty());
}

#[test]
fn bad_schema_is_reported() {
    assert!(check_schema(&json!({"type": "no-such-type"})).is_err());
    assert!(check_schema(&json!({"type": "object", "minProperties": -1})).is_err());
    let nested = check_schema(&json!({"properties": {"a": {"type": "nope"}}})).err().unwrap_or_default();
    assert!(nested.starts_with("at /properties/a/type: "), "{nested}");
    let Err(v) = SchemaCache::new().validate("k", &json!({"type": 12}), &json!({})) else {
        panic!("expected a violation");
    };
    assert!(v[0].message.contains("does not compile"), "{v:?}");
}

#[test]
fn remote_refs_are_never_fetched() {
    let schema = json!({"$ref": "https://example.com/schema.json"});
    assert!(check_schema(&schema).is_err());
    let file = json!({"$ref": "file:///etc/passwd"});
    assert!(check_schema(&file).is_err());
}

#[test]
fn local_refs_work() {
    let schema = json!({
        "$defs": {"pos": {"type": "integer", "minimum": 1}},
        "type": "object",
        "properties": {"id": {"$ref": "#/$defs/pos"}}
    });
    assert!(check_schema(&schema).is_ok());
    let Err(v) = SchemaCache::new().validate("k", &schema, &json!({"id": 0})) else {
        panic!("expected a violation");
    };
    assert_eq!(v[0].path, "/id");
}

#[test]
fn draft_07_schemas_keep_their_draft() {
    let schema = json!({"$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object", "properties": {"n": {"type": "integer"}}});
    assert!(check_schema(&schema).is_ok());
    assert!(SchemaCache::new().validate("k", &schema, &json!({"n": "x"})).is_err());
}

#[test]
fn cache_is_shared_across_threads() {
    let cache = std::sync::Arc::new(SchemaCache::new());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let cache = std::sync::Arc::clone(&cache);
            std::thread::spawn(move || cache.validate("k", &schema(), &json!({"name": "a", "budget": i})).is_ok())
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap_or(false));
    }
    assert_eq!(cache.len(), 1);
}
