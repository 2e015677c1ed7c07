//! The tool manifest, in the seed's JSON shape, and its validation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest accepted `toolId`.
const MAX_TOOL_ID_LEN: usize = 200;
/// Longest accepted tenant, scope or safety tag.
const MAX_NAME_LEN: usize = 128;

/// A tool's description, as registered and as shown in the catalog.
///
/// Field names are the seed's (`toolId` camel case, the rest snake case). Unknown fields are
/// refused so that a misspelled `safetyTags` cannot silently drop a tool's protection; the
/// seed's informational extras (`cost_estimate`, `examples`, …) are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `provider:name`, e.g. `database:executeQuery`.
    #[serde(rename = "toolId")]
    pub tool_id: String,
    /// Human-readable name.
    pub name: String,
    /// What the tool does.
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the tool's input object.
    pub inputs: Value,
    /// JSON Schema of the tool's result.
    #[serde(default = "any_object")]
    pub outputs: Value,
    /// Scopes the caller must all hold (after role expansion).
    #[serde(default)]
    pub required_scopes: Vec<String>,
    /// The provider that runs the tool; equals the `toolId` prefix.
    pub provider_id: String,
    /// Owning tenant; `public` tools belong to every tenant. The register route fills it in
    /// from the caller when the body leaves it out.
    #[serde(default)]
    pub tenant: String,
    /// Risk tags read by the policy (`financial`, `destructive`, `read_only`, `write`, …).
    #[serde(default)]
    pub safety_tags: Vec<String>,
    /// How a generic HTTP provider calls the tool (opaque here; the provider parses it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Value>,
    /// MCP-style tool annotations (`readOnlyHint`, `destructiveHint`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
    /// Seed extra: estimated cost (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_estimate: Option<Value>,
    /// Seed extra: estimated latency in milliseconds (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_estimate_ms: Option<u64>,
    /// Seed extra: example inputs (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<Value>,
    /// Seed extra: kept for compatibility; confirmation is decided by the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_review_required: Option<bool>,
    /// Seed extra: HTTP method of the upstream call (informational; see `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// Seed extra: upstream route (informational; see `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
}

/// Why a manifest is refused; `field` names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ManifestError {
    /// The field at fault, e.g. `toolId` or `inputs`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

fn any_object() -> Value {
    json!({"type": "object"})
}

fn bad(field: &str, message: impl Into<String>) -> ManifestError {
    ManifestError { field: field.to_string(), message: message.into() }
}

/// `[A-Za-z0-9_.-]+`
fn is_id_part(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Non-empty visible ASCII with no whitespace, at most [`MAX_NAME_LEN`] bytes.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME_LEN && s.bytes().all(|b| b.is_ascii_graphic())
}

impl Manifest {
    /// A manifest with the given identity, schemas, scopes and tags, and no seed extras.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tool_id: String,
        name: String,
        description: String,
        provider_id: String,
        tenant: String,
        inputs: Value,
        outputs: Value,
        required_scopes: Vec<String>,
        safety_tags: Vec<String>,
    ) -> Manifest {
        Manifest {
            tool_id,
            name,
            description,
            inputs,
            outputs,
            required_scopes,
            provider_id,
            tenant,
            safety_tags,
            http: None,
            annotations: None,
            cost_estimate: None,
            latency_estimate_ms: None,
            examples: None,
            manual_review_required: None,
            http_method: None,
            route: None,
        }
    }

    /// Parses a manifest from JSON.
    ///
    /// # Errors
    /// The JSON does not have the manifest's shape (the message names the field).
    pub fn from_value(value: Value) -> Result<Manifest, ManifestError> {
        serde_json::from_value(value).map_err(|e| bad("manifest", e.to_string()))
    }

    /// The manifest as JSON, in the seed's field names.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The `provider` part of `provider:name`.
    pub fn provider_prefix(&self) -> Option<&str> {
        self.tool_id.split_once(':').map(|(provider, _)| provider)
    }

    /// Checks what the store relies on: a well-formed `toolId` whose prefix is the
    /// `provider_id`, schemas that are objects and compile, a tenant, and sane scope and tag
    /// names.
    ///
    /// # Errors
    /// The first problem found, naming its field.
    pub fn validate(&self) -> Result<(), ManifestError> {
        self.validate_ids()?;
        if self.name.trim().is_empty() {
            return Err(bad("name", "must not be empty"));
        }
        if self.tenant.is_empty() || self.tenant.len() > MAX_NAME_LEN || self.tenant.chars().any(char::is_control) {
            return Err(bad("tenant", "must be 1 to 128 characters without control characters"));
        }
        validate_schema("inputs", &self.inputs)?;
        if let Some(t) = self.inputs.get("type") {
            if t != "object" {
                return Err(bad("inputs", "a tool's input is an object: `type` must be \"object\""));
            }
        }
        validate_schema("outputs", &self.outputs)?;
        validate_names("required_scopes", &self.required_scopes)?;
        validate_names("safety_tags", &self.safety_tags)?;
        for (field, value) in [("http", &self.http), ("annotations", &self.annotations)] {
            if value.as_ref().is_some_and(|v| !v.is_object()) {
                return Err(bad(field, "must be an object"));
            }
        }
        Ok(())
    }

    fn validate_ids(&self) -> Result<(), ManifestError> {
        let id = &self.tool_id;
        let Some((provider, name)) = id.split_once(':') else {
            return Err(bad("toolId", "must look like provider:name"));
        };
        if id.len() > MAX_TOOL_ID_LEN || !is_id_part(provider) || !is_id_part(name) {
            return Err(bad("toolId", "must be provider:name, each part of [A-Za-z0-9_.-], at most 200 characters"));
        }
        if self.provider_id != provider {
            return Err(bad("provider_id", format!("must equal the toolId prefix {provider:?}")));
        }
        Ok(())
    }
}

fn validate_schema(field: &str, schema: &Value) -> Result<(), ManifestError> {
    if !schema.is_object() {
        return Err(bad(field, "must be a JSON Schema object"));
    }
    crate::schema::check_schema(schema).map_err(|e| bad(field, format!("not a valid JSON Schema: {e}")))
}

fn validate_names(field: &str, names: &[String]) -> Result<(), ManifestError> {
    match names.iter().find(|n| !is_token(n)) {
        Some(n) => Err(bad(field, format!("{n:?} must be 1 to 128 visible ASCII characters"))),
        None => Ok(()),
    }
}

/// Safety tags that `previous` has and `new` lacks, sorted and without duplicates. The
/// gateway puts them in the `manifests.register` policy input so Rego decides whether a
/// registration may lower a tool's protection.
pub fn removed_tags(previous: Option<&Manifest>, new: &Manifest) -> Vec<String> {
    removed(previous.map(|p| p.safety_tags.as_slice()), &new.safety_tags)
}

/// Required scopes that `previous` has and `new` lacks (dropping one also lowers a tool's
/// protection), sorted and without duplicates.
pub fn removed_scopes(previous: Option<&Manifest>, new: &Manifest) -> Vec<String> {
    removed(previous.map(|p| p.required_scopes.as_slice()), &new.required_scopes)
}

fn removed(previous: Option<&[String]>, new: &[String]) -> Vec<String> {
    let kept: BTreeSet<&String> = new.iter().collect();
    let gone: BTreeSet<&String> = previous.unwrap_or_default().iter().filter(|t| !kept.contains(t)).collect();
    gone.into_iter().cloned().collect()
}

#[cfg(test)]
#[path = "manifest_tests.rs"]
mod tests;
