//! The manifest store: tool manifests in SQLite (WAL), keyed by `toolId`, with an in-memory
//! copy so the invoke path never touches the disk.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction that reads the previous row, lets the
//! caller check it ([`ManifestStore::upsert_if`]) and writes the new one, so two concurrent
//! registrations cannot both pass a check made against the same old manifest. Writes are
//! blocking: call them from `tokio::task::spawn_blocking`. Reads ([`ManifestStore::get`],
//! [`ManifestStore::list`]) only take a read lock on the in-memory copy.
//!
//! The seed tools ([`super::seed_manifests`]) are written once, when the store is first
//! created; a row that exists is never overwritten, and a later start seeds nothing. One
//! exception: a seed row nobody edited whose tool's result changed shape gets the new outputs
//! schema when the store opens ([`super::seed::seed_output_upgrades`]); otherwise the REST
//! output check would refuse the tool's new answers.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use parking_lot::{Mutex, RwLock};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

pub use super::manifest::{removed_scopes, removed_tags, Manifest, ManifestError};
use super::seed::seed_manifests;
use super::sqlite_url::SqliteLocation;

/// Layout version kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// `updated_by` of the seeded rows.
pub const SEED_ACTOR: &str = "seed";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS manifests (
    tool_id     TEXT PRIMARY KEY NOT NULL,
    tenant      TEXT NOT NULL,
    provider_id TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    updated_by  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS manifests_tenant ON manifests (tenant);
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
";

/// A failure of the manifest store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (disk, lock timeout, corrupt file).
    #[error("manifest store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database directory could not be created.
    #[error("manifest store: cannot create {path}: {message}")]
    Io {
        /// The directory.
        path: String,
        /// The OS error.
        message: String,
    },
    /// A stored row does not hold a readable manifest.
    #[error("manifest store: stored manifest {tool_id:?} is unreadable: {message}")]
    Corrupt {
        /// The row's key.
        tool_id: String,
        /// What is wrong.
        message: String,
    },
    /// The file was written by a newer layout.
    #[error("manifest store: layout version {0} is newer than this gateway's ({SCHEMA_VERSION})")]
    NewerLayout(i64),
    /// The manifest fails [`Manifest::validate`].
    #[error("invalid manifest: {0}")]
    Invalid(#[from] ManifestError),
}

/// Why [`ManifestStore::upsert_if`] did not write.
#[derive(Debug, thiserror::Error)]
pub enum UpsertError<E> {
    /// The caller's check refused the change.
    #[error("registration refused")]
    Rejected(E),
    /// The manifest is invalid or the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A stored manifest and its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestEntry {
    /// The manifest.
    pub manifest: Manifest,
    /// 1 on creation, +1 on every replacement (a good schema cache key: `toolId@version`).
    pub version: i64,
    /// RFC 3339 UTC time of the last write.
    pub updated_at: String,
    /// Subject that wrote it last ([`SEED_ACTOR`] for seeded rows).
    pub updated_by: String,
}

/// What [`ManifestStore::upsert`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertOutcome {
    /// No manifest had this `toolId` before.
    pub created: bool,
    /// The manifest that was replaced.
    pub previous: Option<Manifest>,
    /// The version now stored.
    pub version: i64,
}

/// Tool manifests by `toolId`, persisted in SQLite.
pub struct ManifestStore {
    conn: Mutex<Connection>,
    cache: RwLock<BTreeMap<String, Arc<ManifestEntry>>>,
}

impl ManifestStore {
    /// Opens (creating it and its directory if needed) the store at `path`, seeding it on
    /// first creation.
    ///
    /// # Errors
    /// The file cannot be opened or created, or holds an unreadable manifest.
    pub fn open(path: &Path) -> Result<ManifestStore, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Io { path: dir.display().to_string(), message: e.to_string() })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        Self::init(conn)
    }

    /// A seeded store that lives in memory only (tests, `SQLITE_URL=sqlite::memory:`).
    ///
    /// # Errors
    /// SQLite cannot allocate the database.
    pub fn open_in_memory() -> Result<ManifestStore, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    /// Opens the store at a parsed `SQLITE_URL` (see [`super::sqlite_url::path_from_url`]).
    ///
    /// # Errors
    /// As [`ManifestStore::open`].
    pub fn open_location(location: &SqliteLocation) -> Result<ManifestStore, StoreError> {
        match location {
            SqliteLocation::Memory => Self::open_in_memory(),
            SqliteLocation::File(path) => Self::open(path),
        }
    }

    fn init(mut conn: Connection) -> Result<ManifestStore, StoreError> {
        conn.busy_timeout(Duration::from_secs(5))?;
        let layout: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if layout > SCHEMA_VERSION {
            return Err(StoreError::NewerLayout(layout));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        let seeded: Option<String> =
            tx.query_row("SELECT value FROM store_meta WHERE key = 'seeded'", [], |r| r.get(0)).optional()?;
        if seeded.is_none() {
            let now = now();
            for m in seed_manifests() {
                let json = serde_json::to_string(&m)
                    .map_err(|e| StoreError::Corrupt { tool_id: m.tool_id.clone(), message: e.to_string() })?;
                tx.execute(
                    "INSERT OR IGNORE INTO manifests \
                     (tool_id, tenant, provider_id, manifest, version, updated_at, updated_by) \
                     VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
                    params![m.tool_id, m.tenant, m.provider_id, json, now, SEED_ACTOR],
                )?;
            }
            tx.execute("INSERT INTO store_meta (key, value) VALUES ('seeded', ?1)", params![now])?;
        }
        upgrade_seed_outputs(&tx)?;
        tx.commit()?;
        let store = ManifestStore { conn: Mutex::new(conn), cache: RwLock::new(BTreeMap::new()) };
        store.reload()?;
        Ok(store)
    }

    /// Re-reads every row into the in-memory copy (after another process wrote the file).
    ///
    /// # Errors
    /// SQLite failed, or a row is unreadable (the old copy is kept).
    pub fn reload(&self) -> Result<(), StoreError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare("SELECT tool_id, manifest, version, updated_at, updated_by FROM manifests")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?;
        let mut fresh = BTreeMap::new();
        for row in rows {
            let (tool_id, json, version, updated_at, updated_by) = row?;
            let manifest = parse_row(&tool_id, &json)?;
            fresh.insert(tool_id, Arc::new(ManifestEntry { manifest, version, updated_at, updated_by }));
        }
        *self.cache.write() = fresh;
        Ok(())
    }

    /// The manifest of `tool_id`.
    pub fn get(&self, tool_id: &str) -> Option<Manifest> {
        self.cache.read().get(tool_id).map(|e| e.manifest.clone())
    }

    /// The manifest of `tool_id` with its version, without copying it.
    pub fn entry(&self, tool_id: &str) -> Option<Arc<ManifestEntry>> {
        self.cache.read().get(tool_id).cloned()
    }

    /// Every manifest, sorted by `toolId`.
    pub fn list(&self) -> Vec<Manifest> {
        self.cache.read().values().map(|e| e.manifest.clone()).collect()
    }

    /// Every entry, sorted by `toolId`, without copying the manifests.
    pub fn entries(&self) -> Vec<Arc<ManifestEntry>> {
        self.cache.read().values().cloned().collect()
    }

    /// Creates or replaces the manifest of `manifest.tool_id`, written by `actor`.
    ///
    /// # Errors
    /// The manifest is invalid, or SQLite failed (nothing is written).
    pub fn upsert(&self, manifest: Manifest, actor: &str) -> Result<UpsertOutcome, StoreError> {
        self.upsert_if(manifest, actor, |_| Ok::<(), Infallible>(())).map_err(|e| match e {
            UpsertError::Store(e) => e,
            UpsertError::Rejected(never) => match never {},
        })
    }

    /// Like [`ManifestStore::upsert`], but first runs `check` on the stored manifest (if any)
    /// inside the write transaction: no other write can land between the check and this one.
    /// Use it for the tenant check and the safety-tag policy decision.
    ///
    /// # Errors
    /// [`UpsertError::Rejected`] with `check`'s error (nothing is written), or
    /// [`UpsertError::Store`].
    pub fn upsert_if<E>(
        &self,
        manifest: Manifest,
        actor: &str,
        check: impl FnOnce(Option<&Manifest>) -> Result<(), E>,
    ) -> Result<UpsertOutcome, UpsertError<E>> {
        manifest.validate().map_err(StoreError::from)?;
        let json = serde_json::to_string(&manifest)
            .map_err(|e| StoreError::Corrupt { tool_id: manifest.tool_id.clone(), message: e.to_string() })?;
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(StoreError::from)?;
        let row: Option<(String, i64)> = tx
            .query_row("SELECT manifest, version FROM manifests WHERE tool_id = ?1", [&manifest.tool_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(StoreError::from)?;
        let previous = match &row {
            Some((json, _)) => Some(parse_row(&manifest.tool_id, json)?),
            None => None,
        };
        check(previous.as_ref()).map_err(UpsertError::Rejected)?;
        let version = row.map_or(1, |(_, v)| v + 1);
        let updated_at = now();
        tx.execute(
            "INSERT INTO manifests (tool_id, tenant, provider_id, manifest, version, updated_at, updated_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (tool_id) DO UPDATE SET tenant = excluded.tenant, provider_id = excluded.provider_id, \
             manifest = excluded.manifest, version = excluded.version, updated_at = excluded.updated_at, \
             updated_by = excluded.updated_by",
            params![manifest.tool_id, manifest.tenant, manifest.provider_id, json, version, updated_at, actor],
        )
        .map_err(StoreError::from)?;
        tx.commit().map_err(StoreError::from)?;
        // Still under the connection lock: the copy changes in commit order.
        let entry = ManifestEntry { manifest, version, updated_at, updated_by: actor.to_string() };
        self.cache.write().insert(entry.manifest.tool_id.clone(), Arc::new(entry));
        Ok(UpsertOutcome { created: previous.is_none(), previous, version })
    }
}

fn parse_row(tool_id: &str, json: &str) -> Result<Manifest, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt { tool_id: tool_id.to_string(), message };
    let manifest: Manifest = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
    if manifest.tool_id != tool_id {
        return Err(corrupt(format!("holds the manifest of {:?}", manifest.tool_id)));
    }
    Ok(manifest)
}

/// Seed rows nobody edited (still written by the seed, still the old outputs schema) get the
/// seed's current outputs schema ([`super::seed::seed_output_upgrades`]), version + 1.
fn upgrade_seed_outputs(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    for (tool_id, old, current) in super::seed::seed_output_upgrades() {
        let row: Option<(String, i64)> = tx
            .query_row(
                "SELECT manifest, version FROM manifests WHERE tool_id = ?1 AND updated_by = ?2",
                params![tool_id, SEED_ACTOR],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let Some((json, version)) = row else { continue };
        let corrupt = |message: String| StoreError::Corrupt { tool_id: tool_id.to_string(), message };
        let mut stored: serde_json::Value = serde_json::from_str(&json).map_err(|e| corrupt(e.to_string()))?;
        // Compared as JSON values: key order differs between builds that wrote the row.
        if stored.get("outputs") != Some(&old) {
            continue;
        }
        stored["outputs"] = current;
        let json = serde_json::to_string(&stored).map_err(|e| corrupt(e.to_string()))?;
        tx.execute(
            "UPDATE manifests SET manifest = ?1, version = ?2, updated_at = ?3 WHERE tool_id = ?4",
            params![json, version + 1, now(), tool_id],
        )?;
    }
    Ok(())
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
#[path = "manifests_tests.rs"]
mod tests;
