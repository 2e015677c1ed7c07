//! Acceptance: the MCP conformance suite (`@modelcontextprotocol/conformance`, server mode)
//! against server-everything directly and through `/mcp/everything` — the gateway adds no
//! failures. Runs `scripts/conformance.sh` (which starts every process on free ports and
//! compares per scenario and per check) with this build's binary, and reads its JSON report.
//!
//! A second run with a policy that denies tool calls must be reported as a regression, so the
//! comparison is shown to detect a gateway that changes results.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use common::*;
use serde_json::Value;

/// Two suite runs at once would compete for the two cores; run them one after the other.
static SERIAL: Mutex<()> = Mutex::new(());

struct Run {
    code: Option<i32>,
    output: String,
    report: Value,
}

fn run(tag: &str, extra: &[&str]) -> Run {
    let dir = temp_dir(tag);
    let json = dir.join("report.json");
    let out = Command::new("bash")
        .arg(repo().join("scripts/conformance.sh"))
        .arg("--json")
        .arg(&json)
        .args(extra)
        .env("FASTMCP_BIN", env!("CARGO_BIN_EXE_fastmcp"))
        .env("FASTMCP_TEST_PYTHON", python())
        .env("TMPDIR", &dir)
        .output()
        .expect("run scripts/conformance.sh");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| panic!("no JSON report (run scripts/setup-test-deps.sh first?); output:\n{output}"));
    Run { code: out.status.code(), output, report }
}

fn num(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or_else(|| panic!("{path} missing in {v}"))
}

fn strings(v: &Value, path: &str) -> Vec<String> {
    v.pointer(path)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{path} missing in {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn gateway_adds_no_conformance_failures() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = run("conformance", &[]);
    let (o, rep) = (&r.output, &r.report);

    // The direct run really ran: the suite's scenarios, with checks that pass and checks that
    // fail (the suite targets its own reference server, not server-everything).
    let scenarios = num(rep, "/direct/scenarios");
    assert!(scenarios >= 25, "direct run ran only {scenarios} scenarios:\n{o}");
    assert!(num(rep, "/direct/checks_passed") >= 10, "direct run passed too few checks:\n{o}");
    assert!(num(rep, "/direct/checks_failed") > 0, "server-everything unexpectedly passes everything:\n{o}");
    for s in ["server-initialize", "tools-list", "tools-call-simple-text", "server-sse-multiple-streams", "ping"] {
        assert_eq!(rep["direct_scenarios"][s], "pass", "{s} should pass directly:\n{o}");
    }

    // Through the gateway: the same scenarios ran, none passes less.
    assert_eq!(num(rep, "/gateway/scenarios"), scenarios, "scenarios missing through the gateway:\n{o}");
    assert_eq!(strings(rep, "/regressions"), Vec::<String>::new(), "the gateway adds failures:\n{o}");
    assert!(
        num(rep, "/gateway/checks_passed") >= num(rep, "/direct/checks_passed"),
        "fewer checks pass through the gateway:\n{o}"
    );
    assert_eq!(r.code, Some(0), "conformance.sh failed:\n{o}");
}

#[test]
fn comparison_detects_a_gateway_that_changes_results() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Allows every request except tool calls, which a deny rule refuses (403).
    let dir = temp_dir("conformance-deny");
    let policies = dir.join("policies.yml");
    std::fs::write(
        &policies,
        r#"version: 1
roles:
  conformance: ["mcp.everything", "tools.invoke:write"]
rules:
  - id: conformance-everything
    effect: allow
    when:
      resource.server: "everything"
      subject.roles: ["conformance"]
  - id: deny-tool-calls
    effect: deny
    when:
      action: tools.invoke
"#,
    )
    .expect("write policy");
    let r = run("conformance-neg", &["--policies", &path_str(&policies)]);
    let (o, rep) = (&r.output, &r.report);
    assert_eq!(r.code, Some(1), "a denied tool call must fail the comparison:\n{o}");
    let regressions = strings(rep, "/regressions");
    assert!(regressions.contains(&"tools-call-simple-text".to_string()), "{regressions:?}\n{o}");
    assert!(o.contains("GATEWAY ADDS FAILURE"), "the differing scenarios are printed:\n{o}");
    // Scenarios without tool calls still pass through the gateway.
    assert_eq!(rep["gateway_scenarios"]["server-initialize"], "pass", "{o}");
    assert_eq!(rep["gateway_scenarios"]["ping"], "pass", "{o}");
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}
