use serde_json::json;

use super::*;
use crate::catalog::seed_manifests;

fn sample() -> Manifest {
    Manifest::from_value(json!({
        "toolId": "crm:findLead",
        "name": "Find lead",
        "description": "d",
        "inputs": {"type": "object", "properties": {"q": {"type": "string"}}},
        "outputs": {"type": "object"},
        "required_scopes": ["crm.read"],
        "provider_id": "crm",
        "tenant": "acme",
        "safety_tags": ["read_only"]
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn field_of(m: &Manifest) -> String {
    match m.validate() {
        Ok(()) => String::new(),
        Err(e) => e.field,
    }
}

#[test]
fn sample_is_valid_and_round_trips() {
    let m = sample();
    assert_eq!(m.validate(), Ok(()));
    let v = m.to_value();
    assert_eq!(v["toolId"], "crm:findLead");
    assert!(v.get("http").is_none(), "absent options are not serialized");
    assert_eq!(Manifest::from_value(v).ok(), Some(m));
}

#[test]
fn every_seed_manifest_is_valid() {
    let seeds = seed_manifests();
    assert_eq!(seeds.len(), 8);
    for m in &seeds {
        assert_eq!(m.validate(), Ok(()), "{}", m.tool_id);
        assert_eq!(m.tenant, "public");
    }
    let mut ids: Vec<_> = seeds.iter().map(|m| m.tool_id.clone()).collect();
    let sorted = {
        let mut s = ids.clone();
        s.sort();
        s
    };
    assert_eq!(ids, sorted);
    ids.dedup();
    assert_eq!(ids.len(), 8);
}

#[test]
fn seed_defaults_and_extras_parse() {
    // The seed's register body: no tenant, no tags, plus informational extras.
    let m = Manifest::from_value(json!({
        "toolId": "my-provider:myTool", "name": "My Tool", "description": "x",
        "inputs": {"type": "object"}, "outputs": {"type": "object"},
        "required_scopes": ["my-provider.use"], "provider_id": "my-provider",
        "cost_estimate": {"currency": "USD", "estimate": 0.02}, "latency_estimate_ms": 400,
        "examples": [{"input": {}}]
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(m.safety_tags.is_empty());
    assert_eq!(field_of(&m), "tenant", "the register route must fill the tenant in");
}

#[test]
fn unknown_fields_are_refused() {
    let mut v = sample().to_value();
    v["safetyTags"] = json!(["financial"]);
    let err = Manifest::from_value(v).err().map(|e| e.message).unwrap_or_default();
    assert!(err.contains("safetyTags"), "{err}");
}

#[test]
fn tool_id_shape() {
    for bad in ["nocolon", ":x", "x:", "a b:c", "a:b:c", "a:b/c", "ä:b"] {
        let mut m = sample();
        m.tool_id = bad.to_string();
        m.provider_id = bad.split(':').next().unwrap_or("").to_string();
        assert_eq!(field_of(&m), "toolId", "{bad}");
    }
    let mut m = sample();
    m.tool_id = format!("crm:{}", "a".repeat(300));
    assert_eq!(field_of(&m), "toolId");
    let mut ok = sample();
    ok.tool_id = "my-prov.v2:get_thing-1".into();
    ok.provider_id = "my-prov.v2".into();
    assert_eq!(ok.validate(), Ok(()));
}

#[test]
fn provider_must_match_prefix() {
    let mut m = sample();
    m.provider_id = "database".into();
    assert_eq!(field_of(&m), "provider_id");
}

#[test]
fn schemas_must_be_objects_that_compile() {
    let mut m = sample();
    m.inputs = json!(true);
    assert_eq!(field_of(&m), "inputs");
    let mut m = sample();
    m.inputs = json!({"type": "object", "properties": {"a": {"type": "nope"}}});
    assert_eq!(field_of(&m), "inputs");
    let mut m = sample();
    m.inputs = json!({"type": "array"});
    assert_eq!(field_of(&m), "inputs");
    let mut m = sample();
    m.outputs = json!({"minimum": "zero"});
    assert_eq!(field_of(&m), "outputs");
    let mut m = sample();
    m.inputs = json!({"$ref": "http://169.254.169.254/latest/meta-data"});
    assert_eq!(field_of(&m), "inputs", "remote refs are refused, never fetched");
}

#[test]
fn tenant_scopes_tags_and_options() {
    let mut m = sample();
    m.tenant = String::new();
    assert_eq!(field_of(&m), "tenant");
    let mut m = sample();
    m.required_scopes = vec!["has space".into()];
    assert_eq!(field_of(&m), "required_scopes");
    let mut m = sample();
    m.safety_tags = vec![String::new()];
    assert_eq!(field_of(&m), "safety_tags");
    let mut m = sample();
    m.http = Some(json!("GET /x"));
    assert_eq!(field_of(&m), "http");
    let mut m = sample();
    m.annotations = Some(json!({"readOnlyHint": true}));
    assert_eq!(m.validate(), Ok(()));
    let mut m = sample();
    m.name = " ".into();
    assert_eq!(field_of(&m), "name");
}

#[test]
fn error_names_the_field() {
    let mut m = sample();
    m.provider_id = "x".into();
    let text = m.validate().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(text.starts_with("provider_id: "), "{text}");
}

#[test]
fn removed_tags_and_scopes() {
    let mut old = sample();
    old.safety_tags = vec!["financial".into(), "destructive".into(), "financial".into()];
    old.required_scopes = vec!["a".into(), "b".into()];
    let mut new = sample();
    new.safety_tags = vec!["financial".into(), "write".into()];
    new.required_scopes = vec!["b".into()];
    assert_eq!(removed_tags(Some(&old), &new), vec!["destructive".to_string()]);
    assert_eq!(removed_scopes(Some(&old), &new), vec!["a".to_string()]);
    assert!(removed_tags(None, &new).is_empty());
    assert!(removed_tags(Some(&new), &old).contains(&"write".to_string()));
    new.safety_tags.clear();
    assert_eq!(removed_tags(Some(&old), &new), vec!["destructive".to_string(), "financial".to_string()]);
}
