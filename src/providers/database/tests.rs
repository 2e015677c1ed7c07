//! Every safety rule of the provider, tried against a real file in a scratch directory.
//! Each attack also checks that the database and its directory are unchanged afterwards.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, OpenFlags};
use serde_json::{json, Value};

use super::{Access, Database, DatabaseConfig, DbError, DbErrorKind};

/// A scratch directory removed on drop (no tempfile dependency for this one use).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("fastmcp-db-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn db_path(&self) -> PathBuf {
        self.0.join("gateway.db")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn open_with(scratch: &Scratch, max_rows: usize, query_timeout_ms: u64) -> Database {
    Database::open(DatabaseConfig { max_rows, query_timeout_ms, ..DatabaseConfig::new(scratch.db_path()) }).unwrap()
}

fn open(scratch: &Scratch) -> Database {
    open_with(scratch, 1000, 5000)
}

/// Everything an attack could change: files in the directory, schema objects, row counts.
#[derive(Debug, PartialEq)]
struct Snapshot {
    files: Vec<String>,
    schema: Vec<(String, String, Option<String>)>,
    counts: Vec<(String, i64)>,
}

fn snapshot(scratch: &Scratch) -> Snapshot {
    let mut files: Vec<String> =
        fs::read_dir(&scratch.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    // An independent connection, so the check does not rely on the code under test.
    let conn = Connection::open_with_flags(scratch.db_path(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY type, name").unwrap();
    let schema: Vec<(String, String, Option<String>)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
    let counts = schema
        .iter()
        .filter(|(kind, _, _)| kind == "table")
        .map(|(_, name, _)| {
            let n = conn.query_row(&format!("SELECT count(*) FROM \"{name}\""), [], |r| r.get(0)).unwrap();
            (name.clone(), n)
        })
        .collect();
    Snapshot { files, schema, counts }
}

fn query(db: &Database, sql: &str, mode: Access) -> Result<Value, DbError> {
    db.execute_query(sql, &[], mode)
}

/// Runs `sql` in `mode`, expects a refusal, and checks nothing changed.
fn assert_refused(scratch: &Scratch, db: &Database, sql: &str, mode: Access) -> String {
    let before = snapshot(scratch);
    let outcome = query(db, sql, mode);
    assert_eq!(snapshot(scratch), before, "{sql} ({mode}) changed the database");
    match outcome {
        Err(DbError::Refused(msg)) => msg,
        other => panic!("{sql} ({mode}): expected Refused, got {other:?}"),
    }
}

fn assert_invalid(scratch: &Scratch, db: &Database, sql: &str, params: &[Value], mode: Access) -> String {
    let before = snapshot(scratch);
    let outcome = db.execute_query(sql, params, mode);
    assert_eq!(snapshot(scratch), before, "{sql} ({mode}) changed the database");
    match outcome {
        Err(DbError::Invalid(msg)) => msg,
        other => panic!("{sql} ({mode}): expected Invalid, got {other:?}"),
    }
}

fn count(db: &Database, table: &str) -> i64 {
    let out = query(db, &format!("SELECT count(*) FROM {table}"), Access::Read).unwrap();
    out["rows"][0][0].as_i64().unwrap()
}

const BOTH: [Access; 2] = [Access::Read, Access::Write];

#[test]
fn database_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Database>();
}

#[test]
fn seeds_once_and_lists_tables_sorted() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    assert_eq!(
        db.list_tables().unwrap(),
        json!({ "tables": [
            {"name": "customers", "row_count": 4},
            {"name": "orders", "row_count": 4},
            {"name": "products", "row_count": 5},
        ] })
    );
    assert_eq!((count(&db, "customers"), count(&db, "products"), count(&db, "orders")), (4, 5, 4));

    query(&db, "DELETE FROM orders", Access::Write).unwrap();
    drop(db);
    let db = open(&scratch);
    assert_eq!(count(&db, "orders"), 0, "reopening must not reseed");
    assert_eq!(count(&db, "customers"), 4);
}

#[test]
fn file_is_in_wal_mode() {
    let scratch = Scratch::new();
    let _db = open(&scratch);
    let conn = Connection::open_with_flags(scratch.db_path(), OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn get_schema_reports_columns_and_unknown_tables_are_not_found() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let schema = db.get_schema("Products").unwrap();
    assert_eq!(schema["table"], "products");
    assert_eq!(
        schema["columns"],
        json!([
            { "name": "id", "type": "INTEGER", "notnull": false, "pk": 1, "default": null },
            { "name": "name", "type": "TEXT", "notnull": true, "pk": 0, "default": null },
            { "name": "price", "type": "REAL", "notnull": true, "pk": 0, "default": null },
            { "name": "stock", "type": "INTEGER", "notnull": true, "pk": 0, "default": "0" },
        ])
    );
    for missing in ["nope", "sqlite_schema", "sqlite_master", "customers; DROP TABLE customers"] {
        assert!(matches!(db.get_schema(missing), Err(DbError::NotFound(_))), "{missing}");
    }
}

#[test]
fn drop_table_hidden_by_a_comment_is_refused_in_both_modes() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    for mode in BOTH {
        let msg = assert_refused(&scratch, &db, "DROP/**/TABLE customers", mode);
        assert!(msg.contains("changing the schema"), "{msg}");
        assert_refused(&scratch, &db, "drop table if exists orders", mode);
    }
}

#[test]
fn vacuum_and_vacuum_into_are_refused_and_write_no_file() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let copy = scratch.0.join("copy.db");
    for mode in BOTH {
        assert_refused(&scratch, &db, &format!("VACUUM INTO '{}'", copy.display()), mode);
        assert!(!copy.exists(), "VACUUM INTO wrote a copy in {mode} mode");
        assert_refused(&scratch, &db, "VACUUM", mode);
    }
}

#[test]
fn attach_is_refused_and_creates_no_file() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let other = scratch.0.join("x.db");
    for mode in BOTH {
        let msg = assert_refused(&scratch, &db, &format!("ATTACH DATABASE '{}' AS x", other.display()), mode);
        assert!(!msg.contains("x.db"), "the host path must not be echoed: {msg}");
        assert!(!other.exists(), "ATTACH created a file in {mode} mode");
        assert_refused(&scratch, &db, "DETACH DATABASE main", mode);
    }
}

#[test]
fn pragma_writes_are_refused() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    for mode in BOTH {
        for sql in [
            "PRAGMA writable_schema=ON",
            "PRAGMA query_only=OFF",
            "PRAGMA journal_mode=DELETE",
            "PRAGMA foreign_keys=OFF",
            "PRAGMA user_version=7",
        ] {
            assert_refused(&scratch, &db, sql, mode);
        }
    }
    // Table-valued pragma functions follow the same list: the file path stays private.
    for sql in ["SELECT file FROM pragma_database_list", "SELECT * FROM PRAGMA_compile_options"] {
        assert_refused(&scratch, &db, sql, Access::Read);
    }
    // The schema readers stay available.
    let info = query(&db, "PRAGMA table_info(customers)", Access::Read).unwrap();
    assert_eq!(info["row_count"], 4);
    let info = query(&db, "SELECT name FROM pragma_table_info('orders') WHERE pk = 1", Access::Read).unwrap();
    assert_eq!(info["rows"], json!([["id"]]));
}

#[test]
fn a_second_statement_is_invalid_and_never_runs() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    for mode in BOTH {
        for sql in
            ["SELECT 1; DROP TABLE customers", "SELECT 1; SELECT 2", "SELECT 1; DELETE FROM orders", "SELECT 1; x"]
        {
            let msg = assert_invalid(&scratch, &db, sql, &[], mode);
            assert!(msg.contains("one SQL statement"), "{msg}");
        }
    }
    // A `;` inside a string or a trailing `;` and comment are one statement.
    let out = query(&db, "SELECT 'a;b' AS s; -- done\n", Access::Read).unwrap();
    assert_eq!(out["rows"], json!([["a;b"]]));
    assert!(matches!(query(&db, "  -- nothing\n", Access::Read), Err(DbError::Invalid(_))));
}

#[test]
fn delete_is_refused_in_read_mode_and_works_in_write_mode() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    assert_refused(&scratch, &db, "DELETE FROM customers", Access::Read);
    assert_refused(&scratch, &db, "UPDATE products SET price = 0", Access::Read);
    assert_refused(
        &scratch,
        &db,
        "INSERT INTO orders (customer_id, product_id, ordered_at) VALUES (4, 1, 'x')",
        Access::Read,
    );

    // Foreign keys are enforced: customers with orders cannot go first, and nothing changes.
    let msg = assert_invalid(&scratch, &db, "DELETE FROM customers", &[], Access::Write);
    assert!(msg.contains("FOREIGN KEY"), "{msg}");
    assert_eq!(query(&db, "DELETE FROM orders", Access::Write).unwrap(), json!({ "rows_affected": 4 }));
    assert_eq!(query(&db, "DELETE FROM customers", Access::Write).unwrap(), json!({ "rows_affected": 4 }));
    assert_eq!(count(&db, "customers"), 0);
}

#[test]
fn bound_parameters_are_stored_literally() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let evil = "Robert'); DROP TABLE customers;--";
    let out = db
        .execute_query(
            "INSERT INTO customers (name, email, city) VALUES (?, ?2, :city)",
            &[json!(evil), json!("bobby@example.com"), Value::Null],
            Access::Write,
        )
        .unwrap();
    assert_eq!(out, json!({ "rows_affected": 1 }));
    let out = db.execute_query(
        "SELECT name, city FROM customers WHERE email = ?",
        &[json!("bobby@example.com")],
        Access::Read,
    );
    assert_eq!(out.unwrap()["rows"], json!([[evil, null]]));
    let tables = db.list_tables().unwrap();
    assert_eq!(tables["tables"][0], json!({"name": "customers", "row_count": 5}), "{tables}");
    assert_eq!(tables["tables"][1], json!({"name": "orders", "row_count": 4}), "{tables}");
    assert_eq!(count(&db, "customers"), 5);
}

#[test]
fn returning_gives_rows_in_write_mode() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let out = db
        .execute_query(
            "UPDATE products SET stock = stock - ? WHERE id = 1 RETURNING id, stock",
            &[json!(20)],
            Access::Write,
        )
        .unwrap();
    assert_eq!(out, json!({ "columns": ["id", "stock"], "rows": [[1, 100]], "row_count": 1, "truncated": false }));
}

#[test]
fn infinite_recursive_query_times_out() {
    let scratch = Scratch::new();
    let db = open_with(&scratch, 1000, 200);
    let sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n";
    for mode in BOTH {
        assert_eq!(query(&db, sql, mode), Err(DbError::Timeout));
    }
    // The connections stay usable after an interrupt.
    assert_eq!(count(&db, "products"), 5);
}

#[test]
fn results_are_truncated_at_max_rows() {
    let scratch = Scratch::new();
    let db = open_with(&scratch, 3, 5000);
    let out = query(&db, "SELECT id FROM products ORDER BY id", Access::Read).unwrap();
    assert_eq!(out["rows"], json!([[1], [2], [3]]));
    assert_eq!((out["row_count"].clone(), out["truncated"].clone()), (json!(3), json!(true)));
    let out = query(&db, "SELECT id FROM products WHERE id <= 3", Access::Read).unwrap();
    assert_eq!((out["row_count"].clone(), out["truncated"].clone()), (json!(3), json!(false)));
    // An endless row stream stops at the limit instead of timing out.
    let out =
        query(&db, "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT x FROM n", Access::Read);
    assert_eq!(out.unwrap()["rows"], json!([[1], [2], [3]]));
}

#[test]
fn results_are_truncated_at_max_result_bytes() {
    let scratch = Scratch::new();
    let cfg = DatabaseConfig { max_result_bytes: 10_000, ..DatabaseConfig::new(scratch.db_path()) };
    let db = Database::open(cfg).unwrap();
    // 300 rows of 3000-byte blobs (4000 base64 characters each): two fit, the third is left out.
    let sql = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300) \
               SELECT x, randomblob(3000) FROM n";
    let out = query(&db, sql, Access::Read).unwrap();
    assert_eq!((out["row_count"].clone(), out["truncated"].clone()), (json!(2), json!(true)));
    let rows = serde_json::to_vec(&out["rows"]).unwrap();
    assert!(rows.len() <= 10_000, "{} bytes of rows", rows.len());
    // A row alone over the cap: no rows, truncated.
    let out = query(&db, "SELECT randomblob(20000)", Access::Read).unwrap();
    assert_eq!((out["row_count"].clone(), out["truncated"].clone()), (json!(0), json!(true)));
    // Under the cap nothing changes; escapes and multi-byte text are counted as serialized.
    let out = query(&db, "SELECT 'a\"b', 'é', 1.5, NULL, 12345", Access::Read).unwrap();
    assert_eq!(out["truncated"], json!(false));
    let out = db.execute_query("SELECT ?", &[json!("\u{1}".repeat(1700))], Access::Read).unwrap();
    assert_eq!(out["row_count"], json!(0), "control characters count 6 bytes each once escaped");
}

#[test]
fn json_size_is_exact_for_plain_values_and_an_upper_bound_otherwise() {
    use rusqlite::types::ValueRef;
    for (v, exact) in [
        (ValueRef::Null, true),
        (ValueRef::Integer(-1234), true),
        (ValueRef::Text("plain \"quoted\" \\ é\n".as_bytes()), true),
        (ValueRef::Text(&[0xff, 0xfe, b'a']), false),
        (ValueRef::Blob(&[1, 2, 3, 4]), true),
        (ValueRef::Real(0.1), false),
    ] {
        let real = serde_json::to_vec(&super::to_json(v)).unwrap().len();
        let size = super::json_size(v);
        assert!(if exact { size == real } else { size >= real }, "{v:?}: {size} vs {real}");
    }
}

#[test]
fn missing_table_is_invalid() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let msg = assert_invalid(&scratch, &db, "SELECT * FROM nope", &[], Access::Read);
    assert!(msg.contains("no such table: nope"), "{msg}");
    assert_invalid(&scratch, &db, "SELEC 1", &[], Access::Read);
}

#[test]
fn bad_parameters_are_invalid() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let sql = "SELECT * FROM customers WHERE id = ? AND city = ?";
    for params in [vec![json!(1)], vec![json!(1), json!("x"), json!(3)], vec![]] {
        let msg = assert_invalid(&scratch, &db, sql, &params, Access::Read);
        assert!(msg.contains("takes 2 parameter"), "{msg}");
    }
    for bad in [json!([1]), json!({ "a": 1 }), json!(u64::MAX)] {
        let msg = assert_invalid(&scratch, &db, "SELECT ?", std::slice::from_ref(&bad), Access::Read);
        assert!(msg.starts_with("parameter 1"), "{bad}: {msg}");
    }
}

#[test]
fn schema_changes_are_refused_in_both_modes() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    for mode in BOTH {
        for sql in [
            "CREATE TEMP TABLE t(x)",
            "CREATE TABLE t(x)",
            "CREATE TEMP VIEW v AS SELECT 1",
            "CREATE TEMP TRIGGER tr AFTER INSERT ON customers BEGIN SELECT 1; END",
            "CREATE INDEX i ON customers(city)",
            "ALTER TABLE customers ADD COLUMN x",
            "CREATE VIRTUAL TABLE f USING fts5(x)",
            "REINDEX",
            "ANALYZE",
        ] {
            assert_refused(&scratch, &db, sql, mode);
        }
    }
    // DML on SQLite's own tables is not a loophole in write mode. SQLite itself rejects it while
    // compiling, before the authorizer is asked, so the error is Invalid rather than Refused.
    for sql in ["UPDATE sqlite_schema SET sql = ''", "DELETE FROM sqlite_master"] {
        let before = snapshot(&scratch);
        assert!(matches!(query(&db, sql, Access::Write), Err(DbError::Invalid(_) | DbError::Refused(_))), "{sql}");
        assert_eq!(snapshot(&scratch), before, "{sql}");
    }
}

#[test]
fn load_extension_is_refused() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    for mode in BOTH {
        let msg = assert_refused(&scratch, &db, "SELECT load_extension('x')", mode);
        assert!(msg.contains("load_extension"), "{msg}");
    }
}

#[test]
fn transaction_control_is_refused_and_autocommit_stays() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    for sql in ["BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT s", "COMMIT", "ROLLBACK"] {
        assert_refused(&scratch, &db, sql, Access::Write);
    }
    query(&db, "DELETE FROM orders WHERE id = 1", Access::Write).unwrap();
    // Committed at once: an independent connection sees it.
    assert_eq!(snapshot(&scratch).counts.iter().find(|(t, _)| t == "orders").map(|c| c.1), Some(3));
}

#[test]
fn values_convert_to_json() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let out = db.execute_query(
        "SELECT 1 AS i, 1.5 AS r, 'x' AS t, NULL AS n, x'00ff' AS b, ? AS yes, ? AS f",
        &[json!(true), json!(2.25)],
        Access::Read,
    );
    assert_eq!(
        out.unwrap(),
        json!({
            "columns": ["i", "r", "t", "n", "b", "yes", "f"],
            "rows": [[1, 1.5, "x", null, "AP8=", 1, 2.25]],
            "row_count": 1,
            "truncated": false,
        })
    );
}

#[test]
fn long_sql_is_not_echoed_back() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    let sql = format!("SELECT {} FROM customers", "x".repeat(5000));
    let msg = assert_invalid(&scratch, &db, &sql, &[], Access::Read);
    assert!(msg.chars().count() <= 201, "{} chars", msg.len());
    let huge = format!("SELECT '{}'", "y".repeat(200_000));
    assert_invalid(&scratch, &db, &huge, &[], Access::Read);
}

#[test]
fn reads_run_in_parallel_and_writes_are_serialized() {
    let scratch = Scratch::new();
    let db = open(&scratch);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let mut last = 5;
                for _ in 0..25 {
                    let now = count(&db, "products");
                    assert!((last..=25).contains(&now), "{last} then {now}");
                    last = now;
                }
            });
        }
        for w in 0..2 {
            let db = &db;
            s.spawn(move || {
                for i in 0..10 {
                    let params = [json!(format!("p{w}-{i}")), json!(1.0)];
                    db.execute_query("INSERT INTO products (name, price) VALUES (?, ?)", &params, Access::Write)
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(count(&db, "products"), 25);
}

#[test]
fn error_kinds_match_the_gateway_table() {
    let cases = [
        (DbError::Invalid(String::new()), 422, "VALIDATION_ERROR"),
        (DbError::Refused(String::new()), 403, "FORBIDDEN"),
        (DbError::NotFound(String::new()), 404, "NOT_FOUND"),
        (DbError::Timeout, 504, "PROVIDER_TIMEOUT"),
        (DbError::Internal(String::new()), 502, "PROVIDER_ERROR"),
    ];
    for (err, status, code) in cases {
        let kind: DbErrorKind = err.kind();
        assert_eq!((kind.status(), kind.code()), (status, code), "{err:?}");
    }
}

#[test]
fn out_of_range_timeouts_are_rejected() {
    let scratch = Scratch::new();
    for query_timeout_ms in [0, u64::MAX] {
        let cfg = DatabaseConfig { query_timeout_ms, ..DatabaseConfig::new(scratch.db_path()) };
        assert!(matches!(Database::open(cfg), Err(DbError::Invalid(_))), "{query_timeout_ms}");
    }
    assert!(!Path::new(&scratch.db_path()).exists());
}

#[test]
fn reads_do_not_wait_for_the_writer_or_each_other() {
    let scratch = Scratch::new();
    let db = open_with(&scratch, 1000, 200);
    let writer = db.writer.lock();
    // A read inside a read: two read connections at once, while the writer is held.
    let nested = db.with_reader(db.deadline(), |_| Ok(count(&db, "products")));
    assert_eq!(nested, Ok(5));
    // A write cannot get the writer before its deadline.
    assert_eq!(query(&db, "DELETE FROM orders", Access::Write), Err(DbError::Timeout));
    drop(writer);
    assert_eq!(count(&db, "orders"), 4);
}
