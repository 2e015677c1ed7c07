//! Pins in the gateway's SQLite file (`rest.sqlite_url`, beside the manifests) when no
//! Redis is configured, so a restart does not take them again on first use. Two tables of
//! their own: `tool_pins` (server, tool, the [`Pin`] as JSON) and `pinned_servers` (the
//! marker that a server was pinned, also with no tools). Trust on first use is one
//! `BEGIN IMMEDIATE` transaction.

use std::path::Path;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::store::{Pin, PinStore, ServerPins};
use crate::state::StateError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pinned_servers (server TEXT PRIMARY KEY NOT NULL, pinned_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tool_pins (
    server TEXT NOT NULL,
    tool   TEXT NOT NULL,
    pin    TEXT NOT NULL,
    PRIMARY KEY (server, tool)
);
";

/// The SQLite pin store.
pub struct SqlitePins {
    conn: Mutex<Connection>,
}

fn err(e: impl std::fmt::Display) -> StateError {
    StateError(format!("pin store: {e}"))
}

impl SqlitePins {
    /// Opens (creating the tables in) the database file at `path`.
    pub fn open(path: &Path) -> Result<SqlitePins, StateError> {
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqlitePins { conn: Mutex::new(conn) })
    }

    fn read(conn: &Connection, server: &str) -> Result<Option<ServerPins>, StateError> {
        let marked: Option<String> = conn
            .query_row("SELECT pinned_at FROM pinned_servers WHERE server = ?1", [server], |r| r.get(0))
            .optional()
            .map_err(err)?;
        if marked.is_none() {
            return Ok(None);
        }
        let mut stmt = conn.prepare("SELECT tool, pin FROM tool_pins WHERE server = ?1").map_err(err)?;
        let rows = stmt.query_map([server], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))).map_err(err)?;
        let mut out = ServerPins::new();
        for row in rows {
            let (tool, raw) = row.map_err(err)?;
            let pin: Pin = serde_json::from_str(&raw).map_err(|e| err(format!("stored pin unreadable: {e}")))?;
            out.insert(tool, pin);
        }
        Ok(Some(out))
    }
}

fn encode(pin: &Pin) -> Result<String, StateError> {
    serde_json::to_string(pin).map_err(err)
}

impl PinStore for SqlitePins {
    fn load(&self, server: &str) -> Result<Option<ServerPins>, StateError> {
        Self::read(&self.conn.lock(), server)
    }

    fn pin_first(&self, server: &str, first: ServerPins) -> Result<ServerPins, StateError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        if let Some(p) = Self::read(&tx, server)? {
            return Ok(p);
        }
        let at = first.values().next().map(|p| p.approved_at.clone()).unwrap_or_default();
        tx.execute("INSERT INTO pinned_servers (server, pinned_at) VALUES (?1, ?2)", params![server, at])
            .map_err(err)?;
        for (tool, pin) in &first {
            tx.execute(
                "INSERT INTO tool_pins (server, tool, pin) VALUES (?1, ?2, ?3)",
                params![server, tool, encode(pin)?],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(first)
    }

    fn approve(&self, server: &str, tool: &str, pin: &Pin) -> Result<(), StateError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
        tx.execute(
            "INSERT OR IGNORE INTO pinned_servers (server, pinned_at) VALUES (?1, ?2)",
            params![server, pin.approved_at],
        )
        .map_err(err)?;
        tx.execute(
            "INSERT INTO tool_pins (server, tool, pin) VALUES (?1, ?2, ?3) \
             ON CONFLICT (server, tool) DO UPDATE SET pin = excluded.pin",
            params![server, tool, encode(pin)?],
        )
        .map_err(err)?;
        tx.commit().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(h: &str) -> Pin {
        Pin {
            hash: h.into(),
            definition: serde_json::json!({"name": "x"}),
            approved_by: "first_use".into(),
            approved_at: "t".into(),
        }
    }

    #[test]
    fn pins_survive_reopening_and_first_use_happens_once() {
        let dir = std::env::temp_dir().join(format!("fastmcp-pins-sqlite-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("fastmcp.db");
        let s = SqlitePins::open(&path).unwrap();
        assert_eq!(s.load("a").unwrap(), None);
        s.pin_first("a", ServerPins::from([("x".into(), pin("1"))])).unwrap();
        assert_eq!(s.pin_first("e", ServerPins::new()).unwrap(), ServerPins::new());
        drop(s);
        let s = SqlitePins::open(&path).unwrap();
        let again = s.pin_first("a", ServerPins::from([("x".into(), pin("2"))])).unwrap();
        assert_eq!(again["x"].hash, "1", "a reopened store does not re-trust");
        assert_eq!(s.load("e").unwrap(), Some(ServerPins::new()), "pinned with no tools is still pinned");
        s.approve("a", "x", &pin("3")).unwrap();
        assert_eq!(s.load("a").unwrap().unwrap()["x"].hash, "3");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
