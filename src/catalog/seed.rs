//! The tools seeded into an empty manifest store: the seed's ads, Pipedrive and database tools,
//! all in tenant `public`.
//!
//! Scopes and tags follow `policies/policies.yml` so the seed flows work with the default
//! policy:
//! - `ads:createCampaign` is tagged `financial`: every campaign is held for confirmation by
//!   `safety-destroy-requires-confirm` (and `abac.rego` adds its own budget rule).
//! - The Pipedrive tools all require `pipedrive.write`, the one Pipedrive scope that exists
//!   (role `sales-write`); `getDeal` is tagged `read_only` for clients, not for the policy.
//! - `database:executeQuery` requires `database.execute` and is tagged `data_access` only: a
//!   `destructive` tag would hold every SELECT for confirmation. Writes are gated by the policy
//!   instead (`abac.rego` requires `database.write` for anything but one read-only statement)
//!   and by the provider's read-only connections.

use serde_json::{json, Value};

use super::manifest::Manifest;

/// Builds one seed manifest.
fn tool(
    id: &str,
    name: &str,
    description: &str,
    inputs: Value,
    outputs: Value,
    scopes: &[&str],
    tags: &[&str],
) -> Manifest {
    let provider = id.split_once(':').map_or(id, |(p, _)| p);
    Manifest::new(
        id.to_string(),
        name.to_string(),
        description.to_string(),
        provider.to_string(),
        "public".to_string(),
        inputs,
        outputs,
        scopes.iter().map(|s| s.to_string()).collect(),
        tags.iter().map(|s| s.to_string()).collect(),
    )
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn loose(properties: Value) -> Value {
    json!({"type": "object", "properties": properties})
}

fn deal_output() -> Value {
    loose(json!({"id": {"type": "integer"}, "title": {"type": "string"}, "status": {"type": "string"}}))
}

/// Seed tools whose result changed shape after stores were seeded: `(toolId, the outputs
/// schema seeded before, the current one)`. A stored row still as seeded (written by the seed,
/// those old outputs) gets the current outputs when the store opens; an edited row is left
/// alone. `database:listTables` answers `[{"name","row_count"}]` since issue 14 (it listed
/// names before).
pub fn seed_output_upgrades() -> Vec<(&'static str, Value, Value)> {
    vec![(
        "database:listTables",
        loose(json!({"tables": {"type": "array", "items": {"type": "string"}}})),
        list_tables_output(),
    )]
}

fn list_tables_output() -> Value {
    loose(json!({"tables": {"type": "array", "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "row_count": {"type": "integer"}},
        "required": ["name", "row_count"],
    }}}))
}

/// The manifests written to an empty store, sorted by `toolId`.
pub fn seed_manifests() -> Vec<Manifest> {
    let scalar = json!({"type": ["string", "number", "integer", "boolean", "null"]});
    vec![
        tool(
            "ads:createCampaign",
            "Create Ad Campaign",
            "Creates an ad campaign on the Ads provider.",
            object(
                json!({
                    "name": {"type": "string", "minLength": 1, "maxLength": 255},
                    "budget": {"type": "number", "minimum": 0},
                    "customer_id": {"type": "string", "minLength": 1, "maxLength": 64},
                    "status": {"type": "string", "enum": ["PAUSED", "ENABLED"]}
                }),
                &["name", "budget"],
            ),
            loose(json!({"campaignId": {"type": "string"}, "status": {"type": "string"}})),
            &["ads.write"],
            &["financial"],
        ),
        tool(
            "database:executeQuery",
            "Execute Database Query",
            "Runs one SQL statement (read-only unless the caller may write) with bound parameters.",
            object(
                json!({
                    "query": {"type": "string", "minLength": 1, "maxLength": 10000},
                    "params": {"type": "array", "items": scalar, "maxItems": 100}
                }),
                &["query"],
            ),
            loose(json!({
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array"},
                "row_count": {"type": "integer"},
                "truncated": {"type": "boolean"},
                "rows_affected": {"type": "integer"}
            })),
            &["database.execute"],
            &["data_access"],
        ),
        tool(
            "database:getSchema",
            "Get Table Schema",
            "Describes the columns of one table.",
            object(
                json!({"table": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "maxLength": 128}}),
                &["table"],
            ),
            loose(json!({"table": {"type": "string"}, "columns": {"type": "array"}})),
            &["database.read"],
            &["read_only"],
        ),
        tool(
            "database:listTables",
            "List Database Tables",
            "Lists the tables and views of the database.",
            object(json!({}), &[]),
            list_tables_output(),
            &["database.read"],
            &["read_only"],
        ),
        tool(
            "pipedrive:createContact",
            "Create Pipedrive Contact",
            "Creates a person in Pipedrive CRM.",
            object(
                json!({
                    "name": {"type": "string", "minLength": 1, "maxLength": 255},
                    "email": {"type": "string", "format": "email", "maxLength": 254},
                    "phone": {"type": "string", "maxLength": 64},
                    "org_id": {"type": "integer", "minimum": 1}
                }),
                &["name"],
            ),
            loose(json!({"id": {"type": "integer"}, "name": {"type": "string"}})),
            &["pipedrive.write"],
            &["write"],
        ),
        tool(
            "pipedrive:createDeal",
            "Create Pipedrive Deal",
            "Creates a deal in Pipedrive CRM.",
            object(
                json!({
                    "title": {"type": "string", "minLength": 1, "maxLength": 255},
                    "value": {"type": "number", "minimum": 0},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "person_id": {"type": "integer", "minimum": 1},
                    "org_id": {"type": "integer", "minimum": 1}
                }),
                &["title"],
            ),
            deal_output(),
            &["pipedrive.write"],
            &["write"],
        ),
        tool(
            "pipedrive:getDeal",
            "Get Pipedrive Deal",
            "Reads one deal from Pipedrive CRM.",
            object(json!({"id": {"type": "integer", "minimum": 1}}), &["id"]),
            deal_output(),
            &["pipedrive.write"],
            &["read_only"],
        ),
        tool(
            "pipedrive:updateDeal",
            "Update Pipedrive Deal",
            "Updates fields of one deal in Pipedrive CRM.",
            object(
                json!({
                    "id": {"type": "integer", "minimum": 1},
                    "title": {"type": "string", "minLength": 1, "maxLength": 255},
                    "value": {"type": "number", "minimum": 0},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "status": {"type": "string", "enum": ["open", "won", "lost"]},
                    "person_id": {"type": "integer", "minimum": 1},
                    "org_id": {"type": "integer", "minimum": 1}
                }),
                &["id"],
            ),
            deal_output(),
            &["pipedrive.write"],
            &["write"],
        ),
    ]
}
