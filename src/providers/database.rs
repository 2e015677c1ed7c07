//! The in-process SQLite provider behind the `database:*` tools (listTables, getSchema,
//! executeQuery).
//!
//! The seed guarded SQL with a keyword blocklist that `DROP/**/TABLE`, `VACUUM INTO` and
//! `ATTACH` walked past. Here no SQL text is ever inspected; SQLite enforces every rule:
//! - every statement compiles under an authorizer (`database/authorizer.rs`) that allows reads, plus
//!   INSERT/UPDATE/DELETE on user tables in [`Access::Write`], and denies everything else
//!   (schema changes, temp objects, ATTACH/DETACH, pragmas other than a few schema readers,
//!   transaction control, `load_extension`);
//! - a statement that would write without an allowed INSERT/UPDATE/DELETE (`VACUUM`,
//!   `VACUUM INTO`, which compile without any authorizer action) is refused through
//!   `sqlite3_stmt_readonly`;
//! - [`Access::Read`] uses connections opened `SQLITE_OPEN_READ_ONLY` with `PRAGMA query_only`;
//! - exactly one statement: what follows the first one must compile to nothing;
//! - a progress handler aborts a statement at its deadline ([`DbError::Timeout`]);
//! - defensive mode, untrusted schema, no attached databases (limit 0), bounded SQL and value
//!   sizes, extension loading left disabled.
//!
//! Concurrency: one read-write connection behind a mutex, so writes are serialized (waiting for
//! it counts against the query deadline). Reads take a read-only connection from a small pool
//! and open one more when all are busy, so they run in parallel with each other and, thanks to
//! WAL, with the writer. Pooling keeps the parsed schema warm; opening per call would redo it.
//!
//! The API is blocking: the gateway calls it through `tokio::task::spawn_blocking`.
//!
//! Results: `{"columns": [..], "rows": [[..], ..], "row_count": n, "truncated": bool}` for any
//! statement with result columns (including `RETURNING`), `{"rows_affected": n}` otherwise.
//! `truncated` is set when a row was left out for the row cap or the byte cap (the rows'
//! JSON size, measured on SQLite's buffers before any row is converted).
//! Integers and reals become JSON numbers (non-finite reals become `null`), text becomes a
//! string, and a BLOB becomes a standard padded base64 string.

mod authorizer;
mod error;
mod seed;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;
use rusqlite::config::DbConfig;
use rusqlite::fallible_iterator::FallibleIterator as _;
use rusqlite::limits::Limit;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Batch, Connection, OpenFlags};
use serde_json::{json, Value};

use authorizer::{AuthLog, SharedLog};
use error::{classify, clip, startup};
pub use error::{DbError, DbErrorKind};

/// Default for `DATABASE_MAX_ROWS`.
pub const DEFAULT_MAX_ROWS: usize = 1000;
/// Default for `providers.database.max_result_bytes`.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 4 << 20;
/// Default per-call deadline in milliseconds.
pub const DEFAULT_QUERY_TIMEOUT_MS: u64 = 5000;

/// Upper bound for `query_timeout_ms`: one hour is already far beyond any gateway deadline, and
/// the bound keeps the SQLite busy timeout (milliseconds in an `i32`) in range.
pub const MAX_QUERY_TIMEOUT_MS: u64 = 3_600_000;

/// Idle read connections kept for reuse; more may be open while calls are in flight.
const MAX_IDLE_READERS: usize = 4;
/// VM instructions between deadline checks: frequent enough for millisecond precision, rare
/// enough to cost nothing measurable.
const PROGRESS_OPS: i32 = 1000;
/// Longest SQL text accepted (bytes); the limit is SQLite's, so the error is a clean TooBig.
const MAX_SQL_BYTES: i32 = 100_000;
/// Largest string or BLOB a statement may build, so one call cannot allocate gigabytes.
const MAX_VALUE_BYTES: i32 = 1 << 20;

/// Where the database lives and how much one call may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConfig {
    /// The SQLite file (`DATABASE_PATH`); created and seeded when missing.
    pub path: PathBuf,
    /// Rows returned per query before `truncated` is set (`DATABASE_MAX_ROWS`).
    pub max_rows: usize,
    /// Bytes of rows (their JSON size) returned per query before `truncated` is set: a row
    /// that would cross it is left out, so the answer stays small whatever the rows hold.
    pub max_result_bytes: usize,
    /// Deadline per call, including the wait for the writer; 1 to [`MAX_QUERY_TIMEOUT_MS`].
    pub query_timeout_ms: u64,
}

impl DatabaseConfig {
    /// A config for `path` with the default limits.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_rows: DEFAULT_MAX_ROWS,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            query_timeout_ms: DEFAULT_QUERY_TIMEOUT_MS,
        }
    }
}

/// What a query may do; the gateway picks it from the caller's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read-only connection: SELECT and schema-reading pragmas only.
    Read,
    /// Also INSERT, UPDATE and DELETE on user tables; never schema changes.
    Write,
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
        })
    }
}

/// One connection and the log its authorizer writes to.
struct Conn {
    conn: Connection,
    log: SharedLog,
}

/// The provider: one SQLite file, one writer, a pool of readers. `Send + Sync`; share it in an
/// `Arc`.
pub struct Database {
    cfg: DatabaseConfig,
    writer: Mutex<Conn>,
    readers: Mutex<Vec<Conn>>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

impl Database {
    /// Opens the file (creating it if missing), switches it to WAL, and seeds the sample tables
    /// (customers, products, orders) when the file has no tables and was never seeded. Opening
    /// again never reseeds, even if the sample tables were emptied.
    pub fn open(cfg: DatabaseConfig) -> Result<Self, DbError> {
        if !(1..=MAX_QUERY_TIMEOUT_MS).contains(&cfg.query_timeout_ms) {
            return Err(DbError::Invalid(format!("query_timeout_ms must be between 1 and {MAX_QUERY_TIMEOUT_MS}")));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&cfg.path, flags).map_err(startup("open the database"))?;
        // WAL lets readers run while a write is in progress; the mode is stored in the file.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(startup("enable WAL"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DbError::Internal(format!("could not enable WAL mode (journal_mode is {mode})")));
        }
        conn.pragma_update(None, "foreign_keys", true).map_err(startup("enable foreign keys"))?;
        harden(&conn, cfg.query_timeout_ms)?;
        seed::seed(&mut conn)?;
        // Installed after seeding, which needs CREATE TABLE.
        let log = authorizer::install(&mut conn, Access::Write).map_err(startup("install the authorizer"))?;
        let db = Self { cfg, writer: Mutex::new(Conn { conn, log }), readers: Mutex::new(Vec::new()) };
        // Open one reader now so a problem with read-only access fails at startup.
        let reader = db.open_reader()?;
        db.readers.lock().push(reader);
        Ok(db)
    }

    /// The user tables and views, sorted, with their row counts, in the seed's shape:
    /// `{"tables": [{"name": "customers", "row_count": 4}, ...]}`. SQLite's own `sqlite_*`
    /// tables are left out. Counting runs under the same deadline as any query.
    pub fn list_tables(&self) -> Result<Value, DbError> {
        self.with_reader(self.deadline(), |c| {
            let mut stmt = c.conn.prepare(
                "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
            )?;
            let names = stmt.query_map([], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            let mut tables = Vec::with_capacity(names.len());
            for name in names {
                // A quoted identifier (embedded quotes doubled): the name comes from the
                // schema, but a table may be called anything.
                let sql = format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\""));
                let rows: i64 = c.conn.query_row(&sql, [], |row| row.get(0))?;
                tables.push(json!({ "name": name, "row_count": rows }));
            }
            Ok(json!({ "tables": tables }))
        })
    }

    /// The columns of one table or view (name matched case-insensitively):
    /// `{"table": name, "columns": [{"name", "type", "notnull": bool, "pk": n, "default"}]}`,
    /// where `pk` is the column's 1-based position in the primary key (0 when not part of it)
    /// and `default` is the default expression as SQL text or `null`. Unknown names and
    /// SQLite's internal tables are [`DbError::NotFound`].
    pub fn get_schema(&self, table: &str) -> Result<Value, DbError> {
        self.with_reader(self.deadline(), |c| {
            let name: Option<String> = c
                .conn
                .prepare(
                    "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') \
                     AND name = ?1 COLLATE NOCASE AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
                )?
                .query_map([table], |row| row.get(0))?
                .next()
                .transpose()?;
            let Some(name) = name else {
                return Err(Fail::Db(DbError::NotFound(format!("no table named {}", clip(table)))));
            };
            let mut stmt = c
                .conn
                .prepare("SELECT name, type, \"notnull\", pk, dflt_value FROM pragma_table_info(?1) ORDER BY cid")?;
            let columns = stmt
                .query_map([&name], |row| {
                    Ok(json!({
                        "name": row.get::<_, String>(0)?,
                        "type": row.get::<_, String>(1)?,
                        "notnull": row.get::<_, bool>(2)?,
                        "pk": row.get::<_, i64>(3)?,
                        "default": row.get::<_, Option<String>>(4)?,
                    }))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(json!({ "table": name, "columns": columns }))
        })
    }

    /// Runs exactly one SQL statement. `params[i]` binds SQL parameter number `i + 1` (`?`,
    /// `?N`, or named parameters, which SQLite numbers in order of first appearance); their
    /// count must match the statement's. JSON `null`, booleans (as 0/1), integers, floats and
    /// strings bind as SQL values; arrays, objects and integers beyond `i64` are
    /// [`DbError::Invalid`]. A query on a missing table is `Invalid` (SQLite rejects it while
    /// compiling), not `NotFound`. In [`Access::Write`] mode reads run on the writer too, so
    /// they queue behind writes.
    pub fn execute_query(&self, sql: &str, params: &[Value], mode: Access) -> Result<Value, DbError> {
        let deadline = self.deadline();
        let params = params.iter().enumerate().map(|(i, v)| bind_value(i + 1, v)).collect::<Result<Vec<_>, _>>()?;
        let caps = Caps { rows: self.cfg.max_rows, bytes: self.cfg.max_result_bytes };
        match mode {
            Access::Read => self.with_reader(deadline, |c| Ok(run(c, sql, &params, mode, caps)?)),
            Access::Write => {
                let mut writer = self.writer.try_lock_until(deadline).ok_or(DbError::Timeout)?;
                arm_deadline(&mut writer.conn, deadline)?;
                run(&mut writer, sql, &params, mode, caps)
            }
        }
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.cfg.query_timeout_ms)
    }

    /// Borrows a pooled read-only connection (or opens one) for `f`, then returns it to the pool.
    fn with_reader<T>(&self, deadline: Instant, f: impl FnOnce(&mut Conn) -> Result<T, Fail>) -> Result<T, DbError> {
        let pooled = self.readers.lock().pop();
        let mut c = match pooled {
            Some(c) => c,
            None => self.open_reader()?,
        };
        arm_deadline(&mut c.conn, deadline)?;
        // A denial logged during an earlier call must not explain this call's failure.
        *c.log.lock() = AuthLog::default();
        let out = f(&mut c).map_err(|fail| match fail {
            Fail::Db(e) => e,
            Fail::Sqlite(e) => classify(e, c.log.lock().denied.take()),
        });
        let mut idle = self.readers.lock();
        if idle.len() < MAX_IDLE_READERS {
            idle.push(c);
        }
        out
    }

    fn open_reader(&self) -> Result<Conn, DbError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&self.cfg.path, flags).map_err(startup("open a read connection"))?;
        conn.pragma_update(None, "query_only", true).map_err(startup("set query_only"))?;
        harden(&conn, self.cfg.query_timeout_ms)?;
        let log = authorizer::install(&mut conn, Access::Read).map_err(startup("install the authorizer"))?;
        Ok(Conn { conn, log })
    }
}

/// Internal failure type of the reader closures: a finished [`DbError`] or a raw SQLite error
/// still to be classified (so `?` works on rusqlite calls).
enum Fail {
    Db(DbError),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite(e)
    }
}

impl From<DbError> for Fail {
    fn from(e: DbError) -> Self {
        Self::Db(e)
    }
}

/// How much of a result one call returns.
#[derive(Debug, Clone, Copy)]
struct Caps {
    rows: usize,
    bytes: usize,
}

/// Compiles, checks and runs one caller statement on `c`.
fn run(c: &mut Conn, sql: &str, params: &[SqlValue], mode: Access, caps: Caps) -> Result<Value, DbError> {
    *c.log.lock() = AuthLog::default();
    let mut batch = Batch::new(&c.conn, sql);
    let first = batch.next();
    let seen = std::mem::take(&mut *c.log.lock());
    let mut stmt = match first {
        Ok(Some(stmt)) => stmt,
        Ok(None) => return Err(DbError::Invalid("no SQL statement given".into())),
        Err(e) => return Err(classify(e, seen.denied)),
    };
    // Exactly one statement: whatever follows must compile to nothing (whitespace, comments, a
    // trailing `;`). The rest is only compiled, never run, and any outcome but "nothing"
    // (another statement, a syntax error, a refusal) means the caller sent more than one.
    if !matches!(batch.next(), Ok(None)) {
        return Err(DbError::Invalid("exactly one SQL statement is allowed per call".into()));
    }
    // From here a denial can only come from SQLite recompiling the statement after a schema
    // change; start a clean log for it.
    *c.log.lock() = AuthLog::default();
    if !stmt.readonly() {
        if mode == Access::Read {
            return Err(DbError::Refused("the statement would modify the database; read mode is read-only".into()));
        }
        // VACUUM (INTO) compiles without any authorizer action; writes must come from DML.
        if !seen.wrote {
            return Err(DbError::Refused("only INSERT, UPDATE and DELETE may modify the database".into()));
        }
    }
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(DbError::Invalid(format!("the statement takes {expected} parameter(s), {} given", params.len())));
    }
    let fail = |e: rusqlite::Error| classify(e, c.log.lock().denied.take());
    for (i, value) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value).map_err(fail)?;
    }
    let columns: Vec<String> = stmt.column_names().map(str::to_owned).collect();
    if columns.is_empty() {
        let rows_affected = stmt.raw_execute().map_err(fail)?;
        return Ok(json!({ "rows_affected": rows_affected }));
    }
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    let mut truncated = false;
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(fail)? {
        if out.len() == caps.rows {
            truncated = true;
            break;
        }
        // Sized from SQLite's own buffers before anything is copied: a row that would cross
        // the byte cap is never converted.
        let size = (0..columns.len()).map(|i| row.get_ref(i).map(json_size)).sum::<Result<usize, _>>();
        let size = size.map_err(fail)? + columns.len() + 2;
        if bytes.saturating_add(size) > caps.bytes {
            truncated = true;
            break;
        }
        bytes += size;
        let values = (0..columns.len()).map(|i| row.get_ref(i).map(to_json)).collect::<Result<Vec<_>, _>>();
        out.push(Value::Array(values.map_err(fail)?));
    }
    Ok(json!({ "columns": columns, "row_count": out.len(), "rows": out, "truncated": truncated }))
}

/// Connection settings shared by the writer and the readers, beyond the authorizer.
fn harden(conn: &Connection, timeout_ms: u64) -> Result<(), DbError> {
    let fail = startup("configure the connection");
    conn.busy_timeout(Duration::from_millis(timeout_ms)).map_err(&fail)?;
    for (option, on) in [
        // No writes to sqlite_schema or other corruption tricks, even if something slipped by.
        (DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true),
        // Functions with side effects may not run from inside schema objects (views, triggers).
        (DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_FTS3_TOKENIZER, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_CREATE, false),
        (DbConfig::SQLITE_DBCONFIG_ENABLE_ATTACH_WRITE, false),
    ] {
        conn.set_db_config(option, on).map_err(&fail)?;
    }
    // ATTACH is denied by the authorizer; with zero slots it could not work anyway. VACUUM INTO
    // attaches its output internally, so this also stops it at run time.
    conn.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0).map_err(&fail)?;
    conn.set_limit(Limit::SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES).map_err(&fail)?;
    conn.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES).map_err(&fail)?;
    Ok(())
}

/// Makes every statement on `conn` stop at `deadline`. Set per call: connections are reused.
/// The progress handler does not run while SQLite sleeps on a lock, so the busy wait gets
/// only the time left.
fn arm_deadline(conn: &mut Connection, deadline: Instant) -> Result<(), DbError> {
    conn.busy_timeout(deadline.saturating_duration_since(Instant::now()))
        .and_then(|()| conn.progress_handler(PROGRESS_OPS, Some(move || Instant::now() >= deadline)))
        .map_err(|e| DbError::Internal(clip(&format!("could not set the query deadline: {e}"))))
}

/// JSON parameter → SQL value.
fn bind_value(index: usize, value: &Value) -> Result<SqlValue, DbError> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SqlValue::Integer(i),
            (None, Some(_)) if n.is_u64() => {
                return Err(DbError::Invalid(format!("parameter {index}: integer out of range")));
            }
            (None, Some(f)) => SqlValue::Real(f),
            (None, None) => return Err(DbError::Invalid(format!("parameter {index}: unsupported number"))),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Array(_) | Value::Object(_) => {
            return Err(DbError::Invalid(format!(
                "parameter {index}: arrays and objects cannot be bound (pass JSON text as a string)"
            )));
        }
    })
}

/// The length of [`to_json`]'s output for `value` once serialized, or an upper bound of it
/// (text that is not UTF-8 counts 3 bytes per non-ASCII byte, a replacement character).
fn json_size(value: ValueRef<'_>) -> usize {
    match value {
        ValueRef::Null => 4,
        ValueRef::Integer(i) => i.to_string().len(),
        // `f64` prints in at most 24 characters (`-2.2250738585072014e-308`).
        ValueRef::Real(_) => 24,
        ValueRef::Text(bytes) => {
            let utf8 = std::str::from_utf8(bytes).is_ok();
            2 + bytes
                .iter()
                .map(|&b| match b {
                    b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
                    0..=0x1f => 6,
                    0x80.. if !utf8 => 3,
                    _ => 1,
                })
                .sum::<usize>()
        }
        ValueRef::Blob(bytes) => 2 + bytes.len().div_ceil(3) * 4,
    }
}

/// SQL value → JSON, as documented at the top of this module.
fn to_json(value: ValueRef<'_>) -> Value {
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}
