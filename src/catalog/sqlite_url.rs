//! `SQLITE_URL` parsing: where the manifest store lives.
//!
//! Accepted forms (relative paths resolve against the data dir, `FASTMCP_DATA_DIR`):
//! - `sqlite::memory:` (also `:memory:` and `sqlite://:memory:`): in memory, lost on exit;
//! - `sqlite:///abs/path.db`: absolute path;
//! - `sqlite:////abs/path.db`: absolute path (SQLAlchemy's spelling);
//! - `sqlite:///./rel.db`, `sqlite:///../rel.db`: relative path (the seed's SQLAlchemy
//!   spelling, `sqlite:///./fastmcp.db`, keeps meaning "relative");
//! - `sqlite://rel.db`, `sqlite://dir/rel.db`, `sqlite:rel.db`: relative path (as sqlx);
//! - a plain path, absolute or relative.
//!
//! A query string (`?mode=rwc`, SQLAlchemy's `?check_same_thread=…`) is ignored.

use std::path::{Path, PathBuf};

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A private in-memory database.
    Memory,
    /// A database file.
    File(PathBuf),
}

/// Parses `SQLITE_URL`, resolving relative paths against `data_dir`.
///
/// # Errors
/// The URL is empty, names no file, or uses another scheme than `sqlite:`.
pub fn path_from_url(url: &str, data_dir: &Path) -> Result<SqliteLocation, String> {
    let url = url.trim();
    let url = url.split_once('?').map_or(url, |(before, _)| before);
    if url.is_empty() {
        return Err("SQLITE_URL is empty".into());
    }
    if matches!(url, ":memory:" | "sqlite::memory:" | "sqlite://:memory:" | "sqlite:///:memory:") {
        return Ok(SqliteLocation::Memory);
    }
    let path = match url.strip_prefix("sqlite:") {
        Some(rest) => from_url_rest(rest),
        None if has_scheme(url) => return Err(format!("SQLITE_URL must start with sqlite: ({url:?})")),
        None => url.to_string(),
    };
    if path.is_empty() || path.ends_with('/') {
        return Err(format!("SQLITE_URL names no file ({url:?})"));
    }
    let path = PathBuf::from(path);
    Ok(SqliteLocation::File(if path.is_absolute() { path } else { data_dir.join(path) }))
}

/// The path part after `sqlite:`.
fn from_url_rest(rest: &str) -> String {
    let Some(after) = rest.strip_prefix("//") else {
        return rest.to_string();
    };
    // `sqlite:///./x` and `sqlite:///../x` are SQLAlchemy relative paths.
    if let Some(rel) = after.strip_prefix('/').filter(|r| r.starts_with("./") || r.starts_with("../")) {
        return rel.to_string();
    }
    // `sqlite:////abs` (SQLAlchemy) and `sqlite:///abs` (sqlx) are both absolute.
    if let Some(abs) = after.strip_prefix("//") {
        return format!("/{}", abs.trim_start_matches('/'));
    }
    // `sqlite:///abs` keeps its leading slash; `sqlite://dir/x.db` is relative (sqlx), never
    // a host.
    after.to_string()
}

/// `scheme:` followed by `//` (so `C:\x` or `file.db` are plain paths).
fn has_scheme(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(url: &str) -> Result<SqliteLocation, String> {
        path_from_url(url, Path::new("/data"))
    }

    fn file(p: &str) -> Result<SqliteLocation, String> {
        Ok(SqliteLocation::File(PathBuf::from(p)))
    }

    #[test]
    fn memory_forms() {
        for url in ["sqlite::memory:", ":memory:", "sqlite://:memory:"] {
            assert_eq!(at(url), Ok(SqliteLocation::Memory), "{url}");
        }
    }

    #[test]
    fn absolute_forms() {
        assert_eq!(at("sqlite:///abs/path.db"), file("/abs/path.db"));
        assert_eq!(at("sqlite:////abs/path.db"), file("/abs/path.db"));
        assert_eq!(at("/abs/path.db"), file("/abs/path.db"));
    }

    #[test]
    fn relative_forms_resolve_in_the_data_dir() {
        assert_eq!(at("sqlite://rel.db"), file("/data/rel.db"));
        assert_eq!(at("sqlite:rel.db"), file("/data/rel.db"));
        assert_eq!(at("sqlite://dir/rel.db"), file("/data/dir/rel.db"));
        assert_eq!(at("sqlite:///./fastmcp.db"), file("/data/./fastmcp.db"));
        assert_eq!(at("sqlite://./x/y.db"), file("/data/./x/y.db"));
        assert_eq!(at("rel/x.db"), file("/data/rel/x.db"));
    }

    #[test]
    fn query_strings_are_ignored() {
        assert_eq!(at("sqlite:///abs.db?mode=rwc"), file("/abs.db"));
        assert_eq!(at("sqlite::memory:?cache=shared"), Ok(SqliteLocation::Memory));
    }

    #[test]
    fn bad_urls() {
        assert!(at("").is_err());
        assert!(at("sqlite://").is_err());
        assert!(at("sqlite:///").is_err());
        assert!(at("sqlite:///data/").is_err());
        assert!(at("postgres://db/x").is_err());
    }
}
