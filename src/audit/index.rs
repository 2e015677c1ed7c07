//! The SQLite index beside the chain (`<audit dir>/index.sqlite`): records by instance and
//! seq with the columns queries filter on. The chain stays the source of truth: the index is
//! fed by a sink (records as they become durable), brought up to date from the files before
//! every `fastmcp audit query`, and rebuilt from them by `fastmcp audit reindex`.

use std::borrow::Cow;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension};

use super::files;
use super::hub::Published;
use super::reader::{self, Item};
use super::sinks::Sink;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
  instance TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, tenant TEXT NOT NULL, sub TEXT NOT NULL,
  tool TEXT, outcome TEXT NOT NULL, action TEXT NOT NULL, phase TEXT NOT NULL, corr_id TEXT NOT NULL,
  record TEXT NOT NULL, PRIMARY KEY (instance, seq)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE INDEX IF NOT EXISTS records_sub ON records (sub, ts);
CREATE INDEX IF NOT EXISTS records_tool ON records (tool, ts);
CREATE INDEX IF NOT EXISTS records_tenant ON records (tenant, ts);
CREATE TABLE IF NOT EXISTS files (name TEXT PRIMARY KEY, bytes INTEGER NOT NULL);
";

/// The index file of an audit directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join("index.sqlite")
}

/// A query (`fastmcp audit query`): every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub tool: Option<String>,
    pub sub: Option<String>,
    pub tenant: Option<String>,
    /// `decision.result` (`allow`, `deny`, `hold`, `rate_limited`, …).
    pub outcome: Option<String>,
    pub instance: Option<String>,
    /// Inclusive lower bound of `ts` (normalized RFC 3339, UTC, microseconds).
    pub since: Option<String>,
    /// Exclusive upper bound of `ts`.
    pub until: Option<String>,
    pub limit: Option<u64>,
}

pub struct Index {
    conn: Connection,
}

/// The indexed columns of a record line, borrowed from it where no escape forces a copy
/// (the sink parses every record; a `Value` tree per record was most of its cost).
#[derive(serde::Deserialize)]
struct Row<'a> {
    seq: Option<u64>,
    #[serde(borrow, default)]
    ts: Cow<'a, str>,
    #[serde(borrow, default)]
    tenant: Cow<'a, str>,
    #[serde(borrow, default)]
    sub: Cow<'a, str>,
    #[serde(borrow, default, rename = "toolId")]
    tool: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    decision: RowDecision<'a>,
    #[serde(borrow, default)]
    action: Cow<'a, str>,
    #[serde(borrow, default)]
    phase: Cow<'a, str>,
    #[serde(borrow, default)]
    corr_id: Cow<'a, str>,
}

#[derive(serde::Deserialize, Default)]
struct RowDecision<'a> {
    #[serde(borrow, default)]
    result: Cow<'a, str>,
}

impl Index {
    pub fn open(path: &Path) -> Result<Index, String> {
        let show = path.display();
        let conn = Connection::open(path).map_err(|e| format!("{show}: {e}"))?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| format!("{show}: {e}"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| format!("{show}: {e}"))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| format!("{show}: {e}"))?;
        conn.execute_batch(SCHEMA).map_err(|e| format!("{show}: {e}"))?;
        Ok(Index { conn })
    }

    /// Deletes the index of `dir` and builds it again from the chain files.
    pub fn rebuild(dir: &Path) -> Result<(Index, u64), String> {
        let p = path(dir);
        for suffix in ["", "-wal", "-shm"] {
            let f = PathBuf::from(format!("{}{suffix}", p.display()));
            match std::fs::remove_file(&f) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", f.display())),
            }
        }
        let mut idx = Index::open(&p)?;
        let n = idx.catch_up(dir)?;
        Ok((idx, n))
    }

    /// The highest indexed seq of `instance`.
    pub fn position(&self, instance: &str) -> Result<u64, String> {
        self.conn
            .query_row("SELECT MAX(seq) FROM records WHERE instance = ?1", [instance], |r| r.get::<_, Option<i64>>(0))
            .map(|s| s.unwrap_or(0) as u64)
            .map_err(|e| e.to_string())
    }

    /// Indexes record lines of `instance` (already indexed ones are skipped).
    pub fn insert<'a>(&mut self, instance: &str, lines: impl IntoIterator<Item = &'a [u8]>) -> Result<u64, String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let mut n = 0;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO records (instance, seq, ts, tenant, sub, tool, outcome, action, phase, corr_id, record)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .map_err(|e| e.to_string())?;
            for line in lines {
                let Ok(row) = serde_json::from_slice::<Row>(line) else { continue };
                let Some(seq) = row.seq else { continue };
                let text = String::from_utf8_lossy(line);
                n += stmt
                    .execute(params![
                        instance,
                        seq as i64,
                        row.ts,
                        row.tenant,
                        row.sub,
                        row.tool,
                        row.decision.result,
                        row.action,
                        row.phase,
                        row.corr_id,
                        text
                    ])
                    .map_err(|e| e.to_string())? as u64;
            }
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(n)
    }

    /// Indexes what the chain files of `dir` hold beyond what was indexed; returns how many
    /// records were added. A plain file is read from where the last catch-up stopped.
    pub fn catch_up(&mut self, dir: &Path) -> Result<u64, String> {
        let mut added = 0;
        for f in files::list(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let done: Option<i64> = self
                .conn
                .query_row("SELECT bytes FROM files WHERE name = ?1", [&f.name], |r| r.get(0))
                .optional()
                .map_err(|e| e.to_string())?;
            let size = std::fs::metadata(&f.path).map(|m| m.len()).map_err(|e| format!("{}: {e}", f.path.display()))?;
            let start = match done {
                Some(d) if f.compressed || d as u64 == size => continue,
                Some(d) if !f.compressed && (d as u64) < size => d as u64,
                _ => 0,
            };
            let mut lines: Vec<Vec<u8>> = Vec::new();
            let mut end = start;
            let r: Box<dyn std::io::BufRead> = if f.compressed {
                reader::open(&f).map_err(|e| e.to_string())?
            } else {
                let mut file = std::fs::File::open(&f.path).map_err(|e| e.to_string())?;
                file.seek(SeekFrom::Start(start)).map_err(|e| e.to_string())?;
                Box::new(std::io::BufReader::new(file))
            };
            reader::scan(r, |item| {
                if let Item::Line { offset, text, .. } = item {
                    end = start + offset + text.len() as u64 + 1;
                    lines.push(text);
                }
                true
            })
            .map_err(|e| e.to_string())?;
            for chunk in lines.chunks(5000) {
                added += self.insert(&f.instance, chunk.iter().map(Vec::as_slice))?;
            }
            let bytes = if f.compressed { size } else { end };
            self.conn
                .execute(
                    "INSERT INTO files (name, bytes) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET bytes = ?2",
                    params![f.name, bytes as i64],
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(added)
    }

    /// The record lines matching `q`, oldest first.
    pub fn query(&self, q: &Query) -> Result<Vec<String>, String> {
        let mut sql = String::from("SELECT record FROM records WHERE 1 = 1");
        let mut args: Vec<String> = Vec::new();
        for (col, op, val) in [
            ("tool", "=", &q.tool),
            ("sub", "=", &q.sub),
            ("tenant", "=", &q.tenant),
            ("outcome", "=", &q.outcome),
            ("instance", "=", &q.instance),
            ("ts", ">=", &q.since),
            ("ts", "<", &q.until),
        ] {
            if let Some(v) = val {
                args.push(v.clone());
                sql.push_str(&format!(" AND {col} {op} ?{}", args.len()));
            }
        }
        sql.push_str(" ORDER BY ts, instance, seq");
        if let Some(l) = q.limit {
            sql.push_str(&format!(" LIMIT {l}"));
        }
        let mut stmt = self.conn.prepare(&sql).map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, String>(0))
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())
    }
}

/// `--since` / `--until` values: RFC 3339, `YYYY-MM-DD` (UTC midnight), or an age (`90s`,
/// `30m`, `2h`, `7d`) before now. Returns the normalized timestamp records compare against.
pub fn parse_time(s: &str, now: chrono::DateTime<chrono::Utc>) -> Result<String, String> {
    let s = s.trim();
    let t = if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        t.with_timezone(&chrono::Utc)
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).ok_or("bad date")?.and_utc()
    } else {
        let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
        let n: i64 = num.parse().map_err(|_| format!("{s:?}: expected RFC 3339, YYYY-MM-DD or an age like 2h"))?;
        let secs = match unit {
            "s" | "" => n,
            "m" => n * 60,
            "h" => n * 3600,
            "d" => n * 86_400,
            _ => return Err(format!("{s:?}: unknown unit {unit:?}")),
        };
        now - chrono::Duration::seconds(secs)
    };
    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// The index as a sink (records as they become durable).
pub struct IndexSink {
    path: PathBuf,
    idx: Option<Index>,
}

impl IndexSink {
    pub fn new(dir: &Path) -> IndexSink {
        IndexSink { path: path(dir), idx: None }
    }

    fn idx(&mut self) -> Result<&mut Index, String> {
        if self.idx.is_none() {
            self.idx = Some(Index::open(&self.path)?);
        }
        self.idx.as_mut().ok_or_else(|| "index not open".to_string())
    }
}

impl Sink for IndexSink {
    fn name(&self) -> &'static str {
        "index"
    }

    fn position(&mut self, instance: &str) -> Result<u64, String> {
        let r = self.idx()?.position(instance);
        if r.is_err() {
            self.idx = None;
        }
        r
    }

    /// One transaction per write: gathering records for a while costs one commit, not one
    /// per fsync round (the index is a query aid, brought up to date before every query).
    fn linger(&self) -> std::time::Duration {
        std::time::Duration::from_millis(200)
    }

    fn write(&mut self, instance: &str, records: &[Arc<Published>]) -> Result<(), String> {
        let r = self.idx()?.insert(instance, records.iter().map(|r| r.line.as_slice()));
        if r.is_err() {
            self.idx = None;
        }
        r.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_normalize_to_record_form() {
        let now = chrono::DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z").unwrap().with_timezone(&chrono::Utc);
        assert_eq!(parse_time("2025-01-01", now).unwrap(), "2025-01-01T00:00:00.000000Z");
        assert_eq!(parse_time("2h", now).unwrap(), "2025-01-02T01:04:05.000000Z");
        assert_eq!(parse_time("2025-01-01T10:00:00+01:00", now).unwrap(), "2025-01-01T09:00:00.000000Z");
        assert!(parse_time("soon", now).is_err());
    }
}
