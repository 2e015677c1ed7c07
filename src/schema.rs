//! JSON Schema validation of tool inputs (and outputs) against a manifest's schema.
//!
//! Schemas are compiled once per cache key (the caller uses `toolId@version`) and reused from
//! every thread. Draft: the schema's `$schema`, else 2020-12. `format` is an assertion (an
//! `"email"` that is not one is rejected), unlike the 2020-12 default of annotation only.
//! No remote or file `$ref` is ever fetched (the crate is built without its resolvers), so a
//! registered manifest cannot make the gateway reach out.

use std::collections::HashMap;
use std::sync::Arc;

use jsonschema::{PatternOptions, Validator};
use parking_lot::RwLock;
use serde::Serialize;
use serde_json::Value;

/// At most this many violations are reported for one instance.
pub const MAX_VIOLATIONS: usize = 20;

/// Violation messages are cut to this many characters.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Compiled schemas kept before the cache is emptied and starts over.
const MAX_ENTRIES: usize = 4096;

/// Backtracking budget for `pattern` regexes that need the backtracking engine (look-around,
/// back-references); plain patterns run on the linear-time engine.
const REGEX_BACKTRACK_LIMIT: usize = 100_000;

/// One reason an instance does not match its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaViolation {
    /// JSON pointer of the offending part of the instance (`""` for the whole instance).
    pub path: String,
    /// What is wrong, without the offending value; at most [`MAX_MESSAGE_CHARS`] characters.
    pub message: String,
}

/// Compiles `schema` with the gateway's options.
///
/// # Errors
/// The schema is not a valid JSON Schema, or it references a document that is not inside it.
pub fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::fancy_regex().backtrack_limit(REGEX_BACKTRACK_LIMIT))
        .build(schema)
        .map_err(|e| {
            let at = e.instance_path().as_str();
            truncate(&if at.is_empty() { e.to_string() } else { format!("at {at}: {e}") })
        })
}

/// Checks that `schema` compiles, for manifest registration.
///
/// # Errors
/// Why the schema does not compile.
pub fn check_schema(schema: &Value) -> Result<(), String> {
    compile(schema).map(|_| ())
}

/// Validates `instance` with an already compiled validator.
///
/// # Errors
/// Up to [`MAX_VIOLATIONS`] violations, in the validator's order.
pub fn validate_with(validator: &Validator, instance: &Value) -> Result<(), Vec<SchemaViolation>> {
    if validator.is_valid(instance) {
        return Ok(());
    }
    let violations: Vec<SchemaViolation> = validator
        .iter_errors(instance)
        .take(MAX_VIOLATIONS)
        .map(|e| SchemaViolation {
            path: e.instance_path().as_str().to_string(),
            message: truncate(&e.masked().to_string()),
        })
        .collect();
    if violations.is_empty() {
        // is_valid and iter_errors disagreeing would be a library bug: fail closed.
        return Err(vec![SchemaViolation { path: String::new(), message: "instance is not valid".into() }]);
    }
    Err(violations)
}

/// A compiled schema (or the reason it does not compile) and the schema it came from.
struct Entry {
    schema: Value,
    compiled: Result<Validator, String>,
}

/// Thread-safe cache of compiled schemas, keyed by a caller-chosen key such as
/// `toolId@version`. A key whose schema changed is recompiled (the cached schema is compared on
/// every hit), so a stale key can never validate against an old schema.
#[derive(Default)]
pub struct SchemaCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
}

impl SchemaCache {
    /// An empty cache.
    pub fn new() -> SchemaCache {
        SchemaCache::default()
    }

    /// Validates `instance` against `schema`, compiling it on first use of `key`.
    ///
    /// # Errors
    /// Up to [`MAX_VIOLATIONS`] violations. A schema that does not compile yields one
    /// violation at path `""` saying so (manifests are checked at registration, so this only
    /// happens for schemas that bypassed it).
    pub fn validate(&self, key: &str, schema: &Value, instance: &Value) -> Result<(), Vec<SchemaViolation>> {
        let entry = self.entry(key, schema);
        match &entry.compiled {
            Ok(validator) => validate_with(validator, instance),
            Err(e) => Err(vec![SchemaViolation {
                path: String::new(),
                message: truncate(&format!("the tool's schema does not compile: {e}")),
            }]),
        }
    }

    /// Drops the compiled schema for `key`.
    pub fn invalidate(&self, key: &str) {
        self.entries.write().remove(key);
    }

    /// How many schemas are cached.
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.read().is_empty()
    }

    fn entry(&self, key: &str, schema: &Value) -> Arc<Entry> {
        if let Some(entry) = self.entries.read().get(key) {
            if entry.schema == *schema {
                return Arc::clone(entry);
            }
        }
        // Compile outside the lock: two threads may compile the same schema once each, which
        // is cheaper than blocking every reader behind a compilation.
        let entry = Arc::new(Entry { schema: schema.clone(), compiled: compile(schema) });
        let mut entries = self.entries.write();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_string(), Arc::clone(&entry));
        entry
    }
}

/// Cuts `message` to [`MAX_MESSAGE_CHARS`] characters, marking the cut with `…`.
fn truncate(message: &str) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => message.to_string(),
        Some((at, _)) => format!("{}…", &message[..at]),
    }
}

#[cfg(test)]
mod tests;
