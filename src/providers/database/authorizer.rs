//! The SQLite authorizer: the allow-list that makes caller SQL safe without reading its text.
//!
//! SQLite calls the authorizer for every action it finds while *compiling* a statement (reading a
//! column, calling a function, dropping a table, attaching a file, ...). A denial makes the
//! prepare fail with `SQLITE_AUTH`, so a refused statement never runs. Because SQLite reports
//! what the parser understood, comment tricks like `DROP/**/TABLE` and odd casing change nothing.
//!
//! The one statement that compiles without any action is `VACUUM` (and `VACUUM INTO`); the
//! caller catches it with `sqlite3_stmt_readonly` together with [`AuthLog::wrote`].

use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use super::Access;

/// Pragmas that only report schema facts, allowed as `PRAGMA table_info(t)` and as table-valued
/// functions (`pragma_table_info('t')`, which `get_schema` uses). Every other pragma, setters
/// included, is denied, and so is reading any other `pragma_*` function: some of them reveal
/// host details (`pragma_database_list` shows the file path). The price: a user table whose
/// name is `pragma_` plus a pragma name outside this list cannot be read.
const READ_PRAGMAS: &[&str] =
    &["table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"];

/// Object names are echoed in refusal messages; keep them short.
const MAX_NAME_CHARS: usize = 64;

/// What the authorizer saw while compiling statements on one connection since the last reset.
#[derive(Debug, Default)]
pub(super) struct AuthLog {
    /// An INSERT, UPDATE or DELETE on a user table was allowed: the only way a statement may
    /// legitimately be non-read-only.
    pub(super) wrote: bool,
    /// The first refused action, worded for the caller.
    pub(super) denied: Option<String>,
}

/// The log shared between one connection's authorizer callback and the code using it.
pub(super) type SharedLog = Arc<Mutex<AuthLog>>;

/// Installs the policy for `access` on `conn` and returns the log it writes to.
pub(super) fn install(conn: &mut Connection, access: Access) -> rusqlite::Result<SharedLog> {
    let log = SharedLog::default();
    let seen = Arc::clone(&log);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        let mut log = seen.lock();
        match decide(access, &ctx) {
            Ok(wrote) => {
                log.wrote |= wrote;
                Authorization::Allow
            }
            Err(reason) => {
                log.denied.get_or_insert(reason);
                Authorization::Deny
            }
        }
    }))?;
    Ok(log)
}

/// `Ok(true)` allows a write, `Ok(false)` allows a read-side action, `Err` denies with a reason.
fn decide(access: Access, ctx: &AuthContext<'_>) -> Result<bool, String> {
    match ctx.action {
        AuthAction::Read { table_name, .. } => match pragma_function(table_name) {
            Some(pragma) if !is_read_pragma(pragma) => Err(format!("PRAGMA {} is not permitted", clip(pragma))),
            _ => Ok(false),
        },
        AuthAction::Select | AuthAction::Recursive => Ok(false),
        // Extension loading is also disabled at the C level; denying here turns a call into a
        // clean refusal at compile time instead of a runtime error.
        AuthAction::Function { function_name } if !function_name.eq_ignore_ascii_case("load_extension") => Ok(false),
        AuthAction::Pragma { pragma_name, .. } if is_read_pragma(pragma_name) => Ok(false),
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
            if access == Access::Write && is_user_table(ctx.database_name, table_name) =>
        {
            Ok(true)
        }
        ref action => Err(format!("{} is not permitted in {access} mode", describe(action))),
    }
}

fn is_read_pragma(name: &str) -> bool {
    READ_PRAGMAS.iter().any(|p| p.eq_ignore_ascii_case(name))
}

/// The pragma behind a table-valued pragma function name (`pragma_table_info` → `table_info`).
fn pragma_function(table: &str) -> Option<&str> {
    table.get(..7).filter(|p| p.eq_ignore_ascii_case("pragma_")).and_then(|_| table.get(7..))
}

/// DML may touch only ordinary tables of the main database: never `sqlite_schema`,
/// `sqlite_sequence`, `sqlite_stat*` or anything in `temp`.
fn is_user_table(database: Option<&str>, table: &str) -> bool {
    database == Some("main") && !table.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("sqlite_"))
}

fn is_schema_table(table: &str) -> bool {
    ["sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(table))
}

/// Names the refused action the way a caller wrote it. The ATTACH file name is left out on
/// purpose: it is a host path.
fn describe(action: &AuthAction<'_>) -> String {
    use AuthAction as A;
    let (what, name) = match *action {
        A::CreateIndex { index_name, .. } => ("CREATE INDEX", Some(index_name)),
        A::CreateTempIndex { index_name, .. } => ("CREATE TEMP INDEX", Some(index_name)),
        A::CreateTable { table_name } => ("CREATE TABLE", Some(table_name)),
        A::CreateTempTable { table_name } => ("CREATE TEMP TABLE", Some(table_name)),
        A::CreateTrigger { trigger_name, .. } => ("CREATE TRIGGER", Some(trigger_name)),
        A::CreateTempTrigger { trigger_name, .. } => ("CREATE TEMP TRIGGER", Some(trigger_name)),
        A::CreateView { view_name } => ("CREATE VIEW", Some(view_name)),
        A::CreateTempView { view_name } => ("CREATE TEMP VIEW", Some(view_name)),
        A::CreateVtable { table_name, .. } => ("CREATE VIRTUAL TABLE", Some(table_name)),
        A::DropIndex { index_name, .. } | A::DropTempIndex { index_name, .. } => ("DROP INDEX", Some(index_name)),
        A::DropTable { table_name } | A::DropTempTable { table_name } => ("DROP TABLE", Some(table_name)),
        A::DropTrigger { trigger_name, .. } | A::DropTempTrigger { trigger_name, .. } => {
            ("DROP TRIGGER", Some(trigger_name))
        }
        A::DropView { view_name } | A::DropTempView { view_name } => ("DROP VIEW", Some(view_name)),
        A::DropVtable { table_name, .. } => ("DROP VIRTUAL TABLE", Some(table_name)),
        A::AlterTable { table_name, .. } => ("ALTER TABLE", Some(table_name)),
        // CREATE and DROP first ask to change the schema table, and SQLite stops at that denial.
        A::Insert { table_name } | A::Update { table_name, .. } | A::Delete { table_name }
            if is_schema_table(table_name) =>
        {
            ("changing the schema (CREATE, DROP, ALTER)", None)
        }
        A::Insert { table_name } => ("INSERT INTO", Some(table_name)),
        A::Update { table_name, .. } => ("UPDATE", Some(table_name)),
        A::Delete { table_name } => ("DELETE FROM", Some(table_name)),
        A::Pragma { pragma_name, .. } => ("PRAGMA", Some(pragma_name)),
        A::Attach { .. } => ("ATTACH", None),
        A::Detach { database_name } => ("DETACH", Some(database_name)),
        A::Transaction { .. } | A::Savepoint { .. } => ("transaction control", None),
        A::Reindex { .. } => ("REINDEX", None),
        A::Analyze { .. } => ("ANALYZE", None),
        A::Function { function_name } => ("function", Some(function_name)),
        _ => ("this statement", None),
    };
    match name {
        Some(name) => format!("{what} {}", clip(name)),
        None => what.to_owned(),
    }
}

fn clip(name: &str) -> String {
    name.chars().take(MAX_NAME_CHARS).collect()
}
