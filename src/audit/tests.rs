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
}

#[tokio::test]
async fn two_writers_on_one_directory_extend_one_chain() {
    // As during `serve --upgrade`: the draining old gateway and the new one both append.
    let dir = tmpdir("two-writers");
    let old = AuditLog::open(&dir, "old".into()).unwrap();
    old.append(&ev(0), false).await.unwrap();
    let new = AuditLog::open(&dir, "new".into()).unwrap();
    for i in 1..9 {
        let log = if i % 3 == 0 { &old } else { &new };
        log.append(&ev(i), i % 2 == 0).await.unwrap();
    }
    assert_eq!(verify_dir(&dir).unwrap(), 9);
    let (_, lines) = lines(&dir);
    let seqs: Vec<u64> =
        lines.iter().map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=9).collect::<Vec<u64>>());
}
