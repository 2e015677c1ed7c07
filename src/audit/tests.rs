use super::verify::verify_dir;
use super::*;

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fastmcp-audit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn ev(i: usize) -> AuditEvent {
    AuditEvent { corr_id: format!("c{i}"), action: "tools.invoke".into(), phase: "decision", ..Default::default() }
}

async fn write_n(dir: &Path, n: usize) {
    let log = AuditLog::open(dir, "test".into()).unwrap();
    for i in 0..n {
        log.append(&ev(i), true).await.unwrap();
    }
}

fn lines(dir: &Path) -> (PathBuf, Vec<String>) {
    let f = chain_files(dir).unwrap().pop().unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    (f, text.lines().map(String::from).collect())
}

#[tokio::test]
async fn chain_verifies_and_continues_across_restarts() {
    let dir = tmpdir("ok");
    write_n(&dir, 3).await;
    write_n(&dir, 2).await;
    assert_eq!(verify_dir(&dir).unwrap(), 5);
}

#[tokio::test]
async fn edit_delete_and_reorder_are_named() {
    let dir = tmpdir("bad");
    write_n(&dir, 4).await;
    let (f, orig) = lines(&dir);

    let mut edited = orig.clone();
    edited[1] = edited[1].replace("c1", "cX");
    std::fs::write(&f, edited.join("\n") + "\n").unwrap();
    let b = verify_dir(&dir).unwrap_err();
    assert_eq!((b.line, b.seq), (2, Some(2)), "{b}");
    assert!(b.reason.contains("modified"));

    let mut deleted = orig.clone();
    deleted.remove(1);
    std::fs::write(&f, deleted.join("\n") + "\n").unwrap();
    let b = verify_dir(&dir).unwrap_err();
    assert_eq!(b.line, 2, "{b}");

    let mut swapped = orig.clone();
    swapped.swap(1, 2);
    std::fs::write(&f, swapped.join("\n") + "\n").unwrap();
    assert_eq!(verify_dir(&dir).unwrap_err().line, 2);
}

#[test]
fn serialization_is_canonical() {
    let ev = AuditEvent {
        corr_id: "c".into(),
        tool_id: Some("t".into()),
        decision: AuditDecision { reasons: vec!["r".into()], ..Default::default() },
        outcome: AuditOutcome { status: Some(200), error_code: Some("X".into()) },
        latency_ms: 1.25,
        ..Default::default()
    };
    let direct = serde_json::to_string(&ev).unwrap();
    let canonical = crate::canonical::to_string(&serde_json::to_value(&ev).unwrap());
    assert_eq!(direct, canonical, "AuditEvent fields must be declared in JSON-name byte order");
    assert!(!direct.contains("actor"), "no actor: the field is absent, not null");
    let acted =
        AuditEvent { actor: Some(AuditActor { kind: "jwt", sub: "ops".into(), tenant: "platform".into() }), ..ev };
    let direct = serde_json::to_string(&acted).unwrap();
    let canonical = crate::canonical::to_string(&serde_json::to_value(&acted).unwrap());
    assert_eq!(direct, canonical, "AuditActor fields too");
    assert!(direct.contains(r#""actor":{"kind":"jwt","sub":"ops","tenant":"platform"}"#), "{direct}");
    let pinned =
        AuditEvent { pin: Some(AuditPin { definition_hash: Some("ab".into()), mode: "warn", pinned: false }), ..acted };
    let direct = serde_json::to_string(&pinned).unwrap();
    let canonical = crate::canonical::to_string(&serde_json::to_value(&pinned).unwrap());
    assert_eq!(direct, canonical, "AuditPin fields too");
    assert!(direct.contains(r#""pin":{"definition_hash":"ab","mode":"warn","pinned":false}"#), "{direct}");
}

mod trail {
    use super::super::checkpoint::{Signer, TrustedKeys};
    use super::super::verify::{verify, VerifyOptions};
    use super::super::*;
    use super::{ev, tmpdir};
    use std::sync::Arc;

    /// A clock the test moves.
    fn clock(day: &str) -> (Arc<parking_lot::Mutex<chrono::DateTime<chrono::Utc>>>, Clock) {
        let t = chrono::DateTime::parse_from_rfc3339(&format!("{day}T12:00:00Z")).unwrap().with_timezone(&chrono::Utc);
        let cell = Arc::new(parking_lot::Mutex::new(t));
        let c = cell.clone();
        (cell, Arc::new(move || *c.lock()))
    }

    fn signed(dir: &Path, every: u64, clock: Option<Clock>) -> (AuditLog, TrustedKeys) {
        let key = dir.with_extension("key");
        let signer = Signer::load_or_create(&key).unwrap();
        let pubfile = dir.with_extension("pub");
        std::fs::write(&pubfile, signer.public_b64()).unwrap();
        let opts = Options {
            checkpoints: Some(CheckpointOptions {
                signer,
                every_records: every,
                every: std::time::Duration::from_secs(3600),
                file_dir: dir.to_path_buf(),
            }),
            clock,
            ..Options::new("gw")
        };
        (AuditLog::open_with(dir, opts).unwrap(), TrustedKeys::load(&pubfile).unwrap())
    }

    fn with_keys(keys: &TrustedKeys) -> VerifyOptions {
        VerifyOptions { keys: Some(keys.clone()), checkpoint_dir: None, max_unsigned: 10 }
    }

    /// Waits (bounded) until the checkpoint file names `n` checkpoints.
    fn wait_checkpoints(dir: &Path, n: usize) {
        let path = files::checkpoint_file(dir, "gw");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while checkpoint::read_file(&path).unwrap().len() < n {
            assert!(std::time::Instant::now() < deadline, "checkpoint file never reached {n} lines");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[tokio::test]
    async fn a_torn_tail_is_quarantined_and_named_by_a_recovery_record() {
        let dir = tmpdir("torn");
        let log = AuditLog::open(&dir, "gw".into()).unwrap();
        for i in 0..3 {
            log.append(&ev(i), true).await.unwrap();
        }
        drop(log);
        let file = chain_files(&dir).unwrap().pop().unwrap();
        let whole = std::fs::read(&file).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&file).unwrap();
        std::io::Write::write_all(&mut f, b"{\"action\":\"tools.inv").unwrap();
        let report = verify(&dir, &VerifyOptions::default()).unwrap();
        assert!(report[0].torn.is_some(), "verify reports the torn tail apart: {report:?}");
        let log = AuditLog::open(&dir, "gw".into()).unwrap();
        log.append(&ev(9), true).await.unwrap();
        let report = verify(&dir, &VerifyOptions::default()).unwrap();
        assert_eq!(report[0].records, 5, "3 + recovery + 1");
        assert!(report[0].torn.is_none());
        assert_eq!(report[0].recoveries.len(), 1, "{report:?}");
        let q = dir.join(format!(
            "quarantine/{}.{}-{}",
            file.file_name().unwrap().to_str().unwrap(),
            whole.len(),
            whole.len() + 20
        ));
        assert_eq!(std::fs::read(q).unwrap(), b"{\"action\":\"tools.inv");
    }

    #[tokio::test]
    async fn checkpoints_reveal_truncation_dropped_files_and_rewrites() {
        let dir = tmpdir("ckpt");
        let (cell, clk) = clock("2025-01-01");
        let (log, keys) = signed(&dir, 3, Some(clk));
        for i in 0..6 {
            log.append(&ev(i), true).await.unwrap();
        }
        *cell.lock() += chrono::Duration::days(1);
        for i in 6..12 {
            log.append(&ev(i), true).await.unwrap();
        }
        wait_checkpoints(&dir, 4);
        drop(log);
        let report = verify(&dir, &with_keys(&keys)).unwrap();
        assert!(report[0].checkpoints >= 4, "{report:?}");
        let files = chain_files(&dir).unwrap();
        assert_eq!(files.len(), 2);
        let newest = files[1].clone();
        let text = std::fs::read_to_string(&newest).unwrap();

        // Drop the last two records.
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&newest, lines[..lines.len() - 2].join("\n") + "\n").unwrap();
        assert!(verify(&dir, &VerifyOptions::default()).is_ok(), "the hash chain alone cannot tell");
        let b = verify(&dir, &with_keys(&keys)).unwrap_err();
        assert!(b.reason.contains("truncated"), "{b}");

        // Drop the newest file.
        std::fs::remove_file(&newest).unwrap();
        let b = verify(&dir, &with_keys(&keys)).unwrap_err();
        assert!(b.reason.contains("truncated"), "{b}");

        // Rewrite it with a recomputed chain (one record changed).
        let mut prev = String::new();
        let mut out = Vec::new();
        let first_text = std::fs::read_to_string(&files[0]).unwrap();
        for (i, l) in first_text.lines().chain(text.lines()).enumerate() {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("hash");
            if i > 0 {
                o.insert("prev_hash".into(), prev.clone().into());
            }
            if i == 7 {
                o.insert("corr_id".into(), "forged".into());
            }
            prev = crate::canonical::hash(&v);
            v["hash"] = prev.clone().into();
            out.push(v.to_string());
        }
        let split = first_text.lines().count();
        std::fs::write(&files[0], out[..split].join("\n") + "\n").unwrap();
        std::fs::write(&newest, out[split..].join("\n") + "\n").unwrap();
        assert!(verify(&dir, &VerifyOptions::default()).is_ok(), "a recomputed chain passes the hash checks");
        let b = verify(&dir, &with_keys(&keys)).unwrap_err();
        assert!(b.reason.contains("rewritten"), "{b}");
    }

    #[tokio::test]
    async fn a_failed_write_fails_closed_and_recovers_without_a_restart() {
        let dir = tmpdir("fail");
        let (cell, clk) = clock("2025-01-01");
        let log = AuditLog::open_with(&dir, Options { clock: Some(clk), ..Options::new("gw") }).unwrap();
        log.append(&ev(0), true).await.unwrap();
        // The next day's file cannot be created: the directory is gone.
        let moved = dir.with_extension("moved");
        std::fs::rename(&dir, &moved).unwrap();
        *cell.lock() += chrono::Duration::days(1);
        assert!(log.append_written(&ev(1)).await.is_err());
        assert!(!log.healthy());
        assert!(log.append(&ev(2), false).await.is_err());
        std::fs::rename(&moved, &dir).unwrap();
        log.append_written(&ev(3)).await.unwrap().wait().await.unwrap();
        assert!(log.healthy(), "a record written and synced again recovers the trail");
        assert_eq!(verify(&dir, &VerifyOptions::default()).unwrap()[0].records, 2);
    }

    #[tokio::test]
    async fn retention_deletes_covered_files_and_the_cut_still_verifies() {
        let dir = tmpdir("retain");
        let (cell, clk) = clock("2025-01-01");
        let (log, keys) = signed(&dir, 2, Some(clk));
        for day in 0..3 {
            for i in 0..4 {
                log.append(&ev(day * 10 + i), true).await.unwrap();
            }
            if day < 2 {
                *cell.lock() += chrono::Duration::days(1);
            }
        }
        wait_checkpoints(&dir, 6);
        let done = retention::run_once(&log, 1, retention::RetentionAction::Delete, &dir).unwrap().unwrap();
        assert_eq!(done.files.len(), 1, "only the file older than a day: {done:?}");
        assert_eq!(chain_files(&dir).unwrap().len(), 2);
        log.append(&ev(99), true).await.unwrap();
        log.checkpoint_now();
        log.append(&ev(100), true).await.unwrap();
        let report = verify(&dir, &with_keys(&keys)).unwrap();
        assert!(report[0].first_seq > 1 && report[0].warnings.iter().any(|w| w.contains("retention")), "{report:?}");
        // Without the retention record, the same cut is a deleted file.
        let f = chain_files(&dir).unwrap().pop().unwrap();
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(text.contains("audit.retention"));
        let files = chain_files(&dir).unwrap();
        std::fs::remove_file(&files[0]).unwrap();
        assert!(verify(&dir, &VerifyOptions::default()).is_err(), "an unexplained cut is reported");
    }

    #[tokio::test]
    async fn durable_records_are_published_in_order() {
        let dir = tmpdir("pub");
        let log = AuditLog::open(&dir, "gw".into()).unwrap();
        let mut sub = log.subscribe(None);
        for i in 0..5 {
            log.append(&ev(i), i % 2 == 0).await.unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 5 {
            let r = tokio::time::timeout(std::time::Duration::from_secs(5), sub.live.recv()).await.unwrap().unwrap();
            got.push(r.seq);
        }
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
        let again = log.subscribe(Some(2));
        assert_eq!(again.backlog.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
    }
}

#[tokio::test]
async fn several_instances_and_a_legacy_chain_verify_in_one_directory() {
    let dir = tmpdir("multi");
    let a = AuditLog::open(&dir, "gw-a".into()).unwrap();
    let b = AuditLog::open(&dir, "gw-b".into()).unwrap();
    for i in 0..3 {
        a.append(&ev(i), true).await.unwrap();
        b.append(&ev(i), true).await.unwrap();
    }
    drop((a, b));
    // A chain written before chains were per instance: `audit-YYYYMMDD.jsonl`.
    let old = tmpdir("multi-old");
    write_n(&old, 2).await;
    let (f, _) = lines(&old);
    std::fs::rename(&f, dir.join("audit-20240101.jsonl")).unwrap();
    let report = super::verify::verify(&dir, &Default::default()).unwrap();
    let chains: Vec<(&str, u64)> = report.iter().map(|c| (c.instance.as_str(), c.records)).collect();
    assert_eq!(chains, vec![("", 2), ("gw-a", 3), ("gw-b", 3)]);
    // Tampering in one instance's chain names that instance's file.
    let (fb, mut lb) = (dir.join(chain_files(&dir).unwrap()[2].file_name().unwrap()), Vec::<String>::new());
    lb.extend(std::fs::read_to_string(&fb).unwrap().lines().map(String::from));
    lb[1] = lb[1].replace("c1", "cX");
    std::fs::write(&fb, lb.join("\n") + "\n").unwrap();
    let b = verify_dir(&dir).unwrap_err();
    assert!(b.file.starts_with("audit-gw-b-") && b.line == 2, "{b}");
}
