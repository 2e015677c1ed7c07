//! The seed's REST tool API (DESIGN §4), as plain Rust: `GET /tool-catalog`,
//! `POST /tools/{toolId}/invoke`, `POST /tools/{toolId}/confirm`, `POST /manifests/register`.
//!
//! Invoke runs: authenticate (glue) → parse → manifest → policy → rate limit → input schema →
//! idempotency → hold → broker → execute → output schema → audit. Each route returns a
//! [`Reply`] the proxy glue writes as is.

pub mod catalog;
pub mod confirm;
pub mod execute;
pub mod invoke;
pub mod outbound;
pub mod register;
pub mod reserved;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::auth::Principal;
use crate::broker::{Broker, BrokerOptions, Signer};
use crate::catalog::manifest::Manifest;
use crate::catalog::manifests::ManifestStore;
use crate::catalog::sqlite_url::{path_from_url, SqliteLocation};
use crate::config::Config;
use crate::enforce::{Origin, Outcome};
use crate::error::GatewayError;
use crate::idempotency::{
    IdempotencyLimits, IdempotencyStore, MemoryIdempotencyStore, SystemClock, DEFAULT_MAX_RECORDS,
};
use crate::policy::PolicySnapshot;
use crate::providers::database::{Database, DatabaseConfig};
use crate::providers::sender::Sender;
use crate::schema::SchemaCache;

/// Stores and clients the REST routes use, built once at startup.
pub struct RestState {
    pub manifests: Arc<ManifestStore>,
    pub schemas: SchemaCache,
    pub idempotency: Arc<dyn IdempotencyStore>,
    pub broker: Broker,
    pub database: Arc<Database>,
    pub sender: Sender,
    /// Where credentials may go and what manifest-named destinations may reach.
    pub outbound: outbound::Outbound,
}

impl RestState {
    /// Opens the manifest store (seeding it on first start) and the demo database, and
    /// builds the broker. `signer` mints gateway JWTs (the dev key when no JWKS is set).
    pub fn build(cfg: &Config, signer: Option<Signer>) -> Result<RestState, String> {
        let location =
            path_from_url(&cfg.rest.sqlite_url, &cfg.data_dir).map_err(|e| format!("rest.sqlite_url: {e}"))?;
        if let SqliteLocation::File(p) = &location {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("rest.sqlite_url: {e}"))?;
            }
        }
        let manifests = ManifestStore::open_location(&location).map_err(|e| format!("rest.sqlite_url: {e}"))?;
        let db = &cfg.providers.database;
        let path = if db.path.is_empty() { cfg.data_dir.join("demo.db") } else { PathBuf::from(&db.path) };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("providers.database.path: {e}"))?;
        }
        let database = Database::open(DatabaseConfig {
            path,
            max_rows: db.max_rows,
            max_result_bytes: db.max_result_bytes,
            query_timeout_ms: db.query_timeout_ms,
        })
        .map_err(|e| format!("providers.database: {e}"))?;
        let opts = BrokerOptions {
            refresh_margin_secs: cfg.providers.token_refresh_margin_seconds,
            http_timeout: Duration::from_secs(cfg.limits.upstream_timeout_seconds),
        };
        let broker = Broker::new(cfg.providers.credentials.clone(), signer, opts)
            .map_err(|e| format!("providers.credentials: {e}"))?;
        Ok(RestState {
            manifests: Arc::new(manifests),
            schemas: SchemaCache::new(),
            idempotency: Arc::new(MemoryIdempotencyStore::with_limits(
                Arc::new(SystemClock::new()),
                idempotency_limits(cfg),
            )),
            broker,
            database: Arc::new(database),
            sender: Sender::default(),
            outbound: outbound::Outbound::from_config(cfg)?,
        })
    }
}

/// The idempotency store's bounds from `rest.idempotency_*`.
pub fn idempotency_limits(cfg: &Config) -> IdempotencyLimits {
    IdempotencyLimits {
        max_records: DEFAULT_MAX_RECORDS,
        max_bytes: cfg.rest.idempotency_max_bytes,
        max_bytes_per_subject: cfg.rest.idempotency_max_bytes_per_subject,
        max_answer_bytes: cfg.rest.idempotency_max_answer_bytes,
    }
}

/// What a REST route answers (already recorded).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
    pub outcome: Outcome,
}

impl Reply {
    pub fn ok(status: u16, body: Value, outcome: Outcome) -> Reply {
        Reply { status, body, headers: vec![], outcome }
    }

    /// The error shape for `err`, with its headers.
    pub fn error(err: &GatewayError, outcome: Outcome, corr_id: &str) -> Reply {
        Reply { status: err.status(), body: err.body(corr_id), headers: err.headers(), outcome }
    }
}

/// One authenticated REST request.
pub struct RestRequest<'a> {
    pub policy: &'a PolicySnapshot,
    pub principal: &'a Principal,
    pub body: &'a [u8],
    pub path: &'a str,
    pub client_ip: &'a str,
    pub corr_id: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub action_token_header: Option<&'a str>,
    /// `POST` or `GET`.
    pub http_method: &'a str,
}

impl<'a> RestRequest<'a> {
    pub fn origin(&self) -> Origin<'a> {
        Origin {
            protocol: "rest",
            path: self.path,
            http_method: self.http_method,
            client_ip: self.client_ip,
            corr_id: self.corr_id,
        }
    }
}

/// The policy resource for a manifest (DESIGN §5).
pub fn resource_of(m: &Manifest) -> Value {
    json!({
        "toolId": m.tool_id,
        "provider_id": m.provider_id,
        "tenant": m.tenant,
        "safety_tags": m.safety_tags,
        "annotations": m.annotations.clone().unwrap_or_else(|| json!({})),
        "required_scopes": m.required_scopes,
    })
}

/// Parses a request body that must be a JSON object (422 otherwise).
pub fn object_body(body: &[u8]) -> Result<Value, GatewayError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| GatewayError::Validation { message: format!("body is not JSON: {e}") })?;
    if !v.is_object() {
        return Err(GatewayError::Validation { message: "body must be a JSON object".into() });
    }
    Ok(v)
}
