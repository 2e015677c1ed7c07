//! The sample tables a new database file starts with.

use rusqlite::{Connection, TransactionBehavior};

use super::error::startup;
use super::DbError;

/// `PRAGMA user_version` once the sample tables are in place.
const SEEDED_VERSION: i64 = 1;

/// Sample data for a new, empty database file.
const SEED_SQL: &str = "
CREATE TABLE customers (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, city TEXT
);
CREATE TABLE products (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL NOT NULL, stock INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers(id),
    product_id INTEGER NOT NULL REFERENCES products(id),
    quantity INTEGER NOT NULL DEFAULT 1,
    ordered_at TEXT NOT NULL
);
INSERT INTO customers (id, name, email, city) VALUES
    (1, 'Ada Lovelace', 'ada@example.com', 'London'),
    (2, 'Grace Hopper', 'grace@example.com', 'New York'),
    (3, 'Alan Turing', 'alan@example.com', 'Manchester'),
    (4, 'Katherine Johnson', 'katherine@example.com', NULL);
INSERT INTO products (id, name, price, stock) VALUES
    (1, 'Keyboard', 49.9, 120), (2, 'Mouse', 19.5, 300), (3, 'Monitor', 229.0, 40),
    (4, 'Laptop stand', 35.0, 75), (5, 'USB-C cable', 9.99, 500);
INSERT INTO orders (id, customer_id, product_id, quantity, ordered_at) VALUES
    (1, 1, 1, 1, '2024-01-05'), (2, 1, 2, 2, '2024-01-05'), (3, 2, 3, 1, '2024-02-11'),
    (4, 3, 5, 3, '2024-03-20');
";

/// Creates the sample tables in a file that has none and was never seeded. The immediate
/// transaction makes two gateways opening the same new file seed it once.
pub(super) fn seed(conn: &mut Connection) -> Result<(), DbError> {
    let fail = startup("seed the sample tables");
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&fail)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(&fail)?;
    let tables: i64 = tx.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0)).map_err(&fail)?;
    if version == 0 && tables == 0 {
        tx.execute_batch(SEED_SQL).map_err(&fail)?;
        tx.pragma_update(None, "user_version", SEEDED_VERSION).map_err(&fail)?;
    }
    tx.commit().map_err(&fail)
}
