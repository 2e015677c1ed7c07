use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "fastmcp-manifests-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        TempDir(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("sub").join("manifests.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(path: &Path) -> ManifestStore {
    ManifestStore::open(path).unwrap_or_else(|e| panic!("{e}"))
}

fn memory() -> ManifestStore {
    ManifestStore::open_in_memory().unwrap_or_else(|e| panic!("{e}"))
}

fn tool(id: &str, tenant: &str, tags: &[&str]) -> Manifest {
    let provider = id.split(':').next().unwrap_or_default();
    Manifest::from_value(json!({
        "toolId": id, "name": id, "inputs": {"type": "object"}, "provider_id": provider,
        "tenant": tenant, "safety_tags": tags
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn seeds_on_first_open_sorted() {
    let store = memory();
    let ids: Vec<String> = store.list().into_iter().map(|m| m.tool_id).collect();
    assert_eq!(
        ids,
        [
            "ads:createCampaign",
            "database:executeQuery",
            "database:getSchema",
            "database:listTables",
            "pipedrive:createContact",
            "pipedrive:createDeal",
            "pipedrive:getDeal",
            "pipedrive:updateDeal"
        ]
    );
    let ads = store.entry("ads:createCampaign").unwrap_or_else(|| panic!("seeded"));
    assert_eq!(ads.version, 1);
    assert_eq!(ads.updated_by, SEED_ACTOR);
    assert_eq!(ads.manifest.safety_tags, ["financial"]);
    assert_eq!(ads.manifest.required_scopes, ["ads.write"]);
    assert!(store.get("nope:nothing").is_none());
}

#[test]
fn persists_and_never_reseeds() {
    let dir = TempDir::new();
    {
        let store = open(&dir.db());
        let mut ads = store.get("ads:createCampaign").unwrap_or_else(|| panic!("seeded"));
        ads.safety_tags.clear();
        ads.description = "changed".into();
        let out = store.upsert(ads, "admin-1").unwrap_or_else(|e| panic!("{e}"));
        assert!(!out.created);
        assert_eq!(out.version, 2);
        store.upsert(tool("crm:x", "acme", &[]), "admin-1").unwrap_or_else(|e| panic!("{e}"));
    }
    let store = open(&dir.db());
    let ads = store.entry("ads:createCampaign").unwrap_or_else(|| panic!("kept"));
    assert_eq!(ads.manifest.description, "changed", "a restart does not overwrite the row with the seed");
    assert!(ads.manifest.safety_tags.is_empty());
    assert_eq!((ads.version, ads.updated_by.as_str()), (2, "admin-1"));
    assert_eq!(store.list().len(), 9);
    let mode: String = store.conn.lock().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap_or_default();
    assert_eq!(mode, "wal");
}

#[test]
fn an_untouched_seed_row_gets_the_new_list_tables_output_and_an_edited_one_does_not() {
    let (old, current) = match super::super::seed::seed_output_upgrades().into_iter().next() {
        Some((_, old, current)) => (old, current),
        None => panic!("no upgrade"),
    };
    let dir = TempDir::new();
    let rewind = |updated_by: &str| {
        let conn = rusqlite::Connection::open(dir.db()).unwrap_or_else(|e| panic!("{e}"));
        let json: String = conn
            .query_row("SELECT manifest FROM manifests WHERE tool_id = 'database:listTables'", [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{e}"));
        let mut m: serde_json::Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        m["outputs"] = old.clone();
        conn.execute(
            "UPDATE manifests SET manifest = ?1, updated_by = ?2, version = 1 WHERE tool_id = 'database:listTables'",
            params![m.to_string(), updated_by],
        )
        .unwrap_or_else(|e| panic!("{e}"));
    };
    drop(open(&dir.db()));
    // A store seeded by an older build: the row as it was seeded then.
    rewind(SEED_ACTOR);
    let store = open(&dir.db());
    let entry = store.entry("database:listTables").unwrap_or_else(|| panic!("seeded"));
    assert_eq!(entry.manifest.outputs, current);
    assert_eq!((entry.version, entry.updated_by.as_str()), (2, SEED_ACTOR));
    drop(store);
    // An operator's row with the old outputs stays as the operator left it.
    rewind("admin-1");
    let store = open(&dir.db());
    let entry = store.entry("database:listTables").unwrap_or_else(|| panic!("kept"));
    assert_eq!(entry.manifest.outputs, old);
    assert_eq!((entry.version, entry.updated_by.as_str()), (1, "admin-1"));
}

#[test]
fn upsert_reports_previous() {
    let store = memory();
    let first = store.upsert(tool("crm:x", "acme", &["financial"]), "a").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((first.created, first.version, first.previous.clone()), (true, 1, None));
    let second = store.upsert(tool("crm:x", "acme", &[]), "b").unwrap_or_else(|e| panic!("{e}"));
    assert!(!second.created);
    assert_eq!(second.version, 2);
    let prev = second.previous.unwrap_or_else(|| panic!("previous"));
    assert_eq!(prev.safety_tags, ["financial"]);
    assert_eq!(removed_tags(Some(&prev), &tool("crm:x", "acme", &[])), ["financial"]);
    assert_eq!(store.entry("crm:x").map(|e| e.updated_by.clone()), Some("b".to_string()));
}

#[test]
fn invalid_manifest_is_not_written() {
    let store = memory();
    let mut bad = tool("crm:x", "acme", &[]);
    bad.provider_id = "other".into();
    assert!(matches!(store.upsert(bad, "a"), Err(StoreError::Invalid(e)) if e.field == "provider_id"));
    assert!(store.get("crm:x").is_none());
}

#[test]
fn rejected_check_writes_nothing() {
    let store = memory();
    store.upsert(tool("crm:x", "acme", &["destructive"]), "a").unwrap_or_else(|e| panic!("{e}"));
    // Another tenant may not replace it.
    let theirs = tool("crm:x", "globex", &[]);
    let res = store.upsert_if(theirs, "mallory", |prev| match prev {
        Some(p) if p.tenant != "globex" => Err("tenant"),
        _ => Ok(()),
    });
    assert!(matches!(res, Err(UpsertError::Rejected("tenant"))));
    let kept = store.entry("crm:x").unwrap_or_else(|| panic!("kept"));
    assert_eq!((kept.manifest.tenant.as_str(), kept.version), ("acme", 1));
    // And a fresh store on the same data sees the same thing (nothing half-written).
    store.reload().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.entry("crm:x").map(|e| e.version), Some(1));
}

#[test]
fn check_and_write_are_atomic_across_threads() {
    // Every writer checks that the stored version is the one it saw; with the check inside the
    // transaction exactly one of the racers that saw version 1 can win.
    let store = Arc::new(memory());
    store.upsert(tool("crm:x", "acme", &["financial"]), "a").unwrap_or_else(|e| panic!("{e}"));
    let seen = store.entry("crm:x").map(|e| e.manifest.clone());
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            let seen = seen.clone();
            std::thread::spawn(move || {
                let new = tool("crm:x", "acme", &[if i % 2 == 0 { "write" } else { "read_only" }]);
                store
                    .upsert_if(new, &format!("t{i}"), |prev| if prev == seen.as_ref() { Ok(()) } else { Err(()) })
                    .is_ok()
            })
        })
        .collect();
    let wins = handles.into_iter().map(|h| h.join().unwrap_or(false)).filter(|w| *w).count();
    assert_eq!(wins, 1);
    assert_eq!(store.entry("crm:x").map(|e| e.version), Some(2));
}

#[test]
fn corrupt_rows_fail_the_open() {
    let dir = TempDir::new();
    drop(open(&dir.db()));
    {
        let conn = Connection::open(dir.db()).unwrap_or_else(|e| panic!("{e}"));
        conn.execute("UPDATE manifests SET manifest = '{' WHERE tool_id = 'ads:createCampaign'", [])
            .unwrap_or_else(|e| panic!("{e}"));
    }
    match ManifestStore::open(&dir.db()) {
        Err(StoreError::Corrupt { tool_id, .. }) => assert_eq!(tool_id, "ads:createCampaign"),
        other => panic!("expected Corrupt, got {:?}", other.err()),
    }
}

#[test]
fn newer_layout_is_refused() {
    let dir = TempDir::new();
    drop(open(&dir.db()));
    {
        let conn = Connection::open(dir.db()).unwrap_or_else(|e| panic!("{e}"));
        conn.pragma_update(None, "user_version", 99).unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(matches!(ManifestStore::open(&dir.db()), Err(StoreError::NewerLayout(99))));
}

#[test]
fn opens_from_a_url() {
    let dir = TempDir::new();
    let loc = crate::catalog::sqlite_url::path_from_url("sqlite://m.db", &dir.0).unwrap_or_else(|e| panic!("{e}"));
    let store = ManifestStore::open_location(&loc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.list().len(), 8);
    assert!(dir.0.join("m.db").exists());
}
