//! Acceptance: "`cargo run --release -- serve` with no files starts both listeners; /metrics
//! parses as Prometheus text", and a bad config exits 2 with one line naming the key.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn serve_with_no_files_starts_both_listeners() {
    // No .config(): `serve` without --config, cwd an empty temp dir (no policies/, no rego/).
    let gw = Gateway::builder("defaults").start();
    assert!(!gw.dir.join("policies").exists() && !gw.dir.join("rego").exists());

    let r = http("GET", &gw.url("/health"), &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("x-correlation-id").is_some_and(|c| !c.is_empty()));
    assert_eq!(r.json()["status"], "ok");

    let r = http("GET", &gw.url("/health"), &[("x-correlation-id", "corr-abc-123")], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-correlation-id"), Some("corr-abc-123"), "the caller's id is kept");

    let r = http("GET", &gw.url("/no/such/route"), &[], b"");
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["error"]["code"], "NOT_FOUND", "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(body["error"]["corr_id"].as_str(), r.header("x-correlation-id"), "{body}");

    let r = http("GET", &gw.admin_url("/health"), &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let r = http("GET", &gw.admin_url("/ready"), &[], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["ready"], true, "{}", String::from_utf8_lossy(&r.body));

    // Dev keys were created under the data dir and the startup log says so.
    assert!(gw.dir.join("data/dev-keys/dev-rs256.pem").is_file());
    let log = gw.log();
    assert!(log.contains("DEV KEYS"), "no dev-keys warning in the log:\n{log}");
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let gw = Gateway::builder("metrics").start();
    assert_eq!(http("GET", &gw.url("/health"), &[], b"").status, 200);
    assert_eq!(http("GET", &gw.url("/nope"), &[], b"").status, 404);

    // Request metrics are recorded after the response is written: poll (bounded) until both
    // requests show.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (resp, families) = loop {
        let r = http("GET", &gw.admin_url("/metrics"), &[], b"");
        assert_eq!(r.status, 200);
        let text = String::from_utf8(r.body.clone()).expect("metrics are UTF-8");
        let families = parse_prometheus(&text).unwrap_or_else(|e| panic!("{e}\n---\n{text}"));
        let has = |name: &str| families.samples.iter().any(|s| s.name == name);
        let counted: f64 =
            families.samples.iter().filter(|s| s.name == "fastmcp_requests_total").map(|s| s.value).sum();
        if counted >= 2.0 && has("fastmcp_request_duration_seconds_bucket") {
            break (r, families);
        }
        assert!(Instant::now() < deadline, "request metrics never appeared:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let ct = resp.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "content-type {ct:?}");

    assert_eq!(families.types["fastmcp_requests_total"], "counter");
    assert_eq!(families.types["fastmcp_request_duration_seconds"], "histogram");
    let requests: f64 = families.samples.iter().filter(|s| s.name == "fastmcp_requests_total").map(|s| s.value).sum();
    assert!(requests >= 2.0, "two gateway requests counted, got {requests}");
    let inf = families.samples.iter().find(|s| {
        s.name == "fastmcp_request_duration_seconds_bucket" && s.labels.get("le").is_some_and(|v| v == "+Inf")
    });
    assert!(inf.is_some(), "histogram has a +Inf bucket");

    // The standard process collector, with live values.
    for (name, kind) in [
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(families.types.get(name).map(String::as_str), Some(kind), "{name}");
        let v = families.samples.iter().find(|s| s.name == name).map(|s| s.value);
        assert!(v.is_some_and(|v| v >= 0.0), "{name} = {v:?}");
    }
    let value = |name: &str| families.samples.iter().find(|s| s.name == name).map(|s| s.value).unwrap_or(0.0);
    assert!(value("process_resident_memory_bytes") > 1e6, "a running gateway holds more than a megabyte");
    assert!(value("process_open_fds") >= 3.0 && value("process_open_fds") <= value("process_max_fds"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(started > now - 3600.0 && started <= now + 1.0, "started {started}, now {now}");

    // Build info: version from Cargo.toml, the git revision this build came from.
    let info: Vec<&Sample> = families.samples.iter().filter(|s| s.name == "fastmcp_build_info").collect();
    assert_eq!(info.len(), 1, "one build_info series");
    assert_eq!(info[0].value, 1.0);
    assert_eq!(info[0].labels["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info[0].labels["revision"], expected_revision());

    // And Prometheus' own linter has nothing to say about the exposition.
    let text = String::from_utf8(resp.body.clone()).expect("utf8");
    promtool_check_metrics(&text);
}

/// What build.rs put into `fastmcp_build_info{revision}`: `FASTMCP_REVISION` at build time,
/// else the short git HEAD (this test builds with the binary, from the same tree).
fn expected_revision() -> String {
    if let Some(r) = option_env!("FASTMCP_REVISION").filter(|r| !r.is_empty()) {
        return r.to_string();
    }
    let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(repo()).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        _ => "unknown".to_string(),
    }
}

/// `promtool check metrics` (Debian package `prometheus`; `.ci/run` installs it) must exit 0
/// with no lint findings.
fn promtool_check_metrics(text: &str) {
    use std::io::Write as _;
    let promtool = std::env::var("FASTMCP_TEST_PROMTOOL").unwrap_or_else(|_| "promtool".into());
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{promtool}: {e} (install Debian's `prometheus` package or set FASTMCP_TEST_PROMTOOL)")
        });
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics: {}\n{said}", out.status);
}

/// One sample line.
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

struct Exposition {
    types: HashMap<String, String>,
    samples: Vec<Sample>,
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// Parses `{a="x",b="y\"z"}` (the text after the metric name); returns labels and the rest.
fn parse_labels(s: &str) -> Result<(HashMap<String, String>, &str), String> {
    let mut labels = HashMap::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = rest[..eq].trim();
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut chars = rest[eq + 1..].strip_prefix('"').ok_or("label value not quoted")?.char_indices();
        let mut value = String::new();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("duplicate label {name}"));
        }
        rest = &rest[eq + 1..][1 + end + 1..];
        rest = rest.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// A strict parser for the Prometheus text exposition format (version 0.0.4).
fn parse_prometheus(text: &str) -> Result<Exposition, String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(help) = line.strip_prefix("# HELP ") {
            let name = help.split(' ').next().unwrap_or("");
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            continue;
        }
        if let Some(ty) = line.strip_prefix("# TYPE ") {
            let parts: Vec<&str> = ty.split(' ').collect();
            let [name, kind] = parts[..] else {
                return Err(at("TYPE needs a name and a type".into()));
            };
            if !is_metric_name(name) {
                return Err(at(format!("bad metric name {name:?}")));
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind:?}")));
            }
            if types.insert(name.to_string(), kind.to_string()).is_some() {
                return Err(at(format!("second TYPE for {name}")));
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(at("comment that is neither HELP nor TYPE".into()));
        }
        let name_end = line.find(['{', ' ']).ok_or_else(|| at("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(at)?
        } else {
            (HashMap::new(), &line[name_end..])
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let value = match fields[..] {
            [v] | [v, _] => parse_value(v).ok_or_else(|| at(format!("bad value {v:?}")))?,
            _ => return Err(at("expected `value [timestamp]`".into())),
        };
        if let [_, ts] = fields[..] {
            ts.parse::<i64>().map_err(|_| at(format!("bad timestamp {ts:?}")))?;
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|suffix| name.strip_suffix(suffix))
            .find(|base| matches!(types.get(*base).map(String::as_str), Some("histogram" | "summary")))
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(at(format!("sample of {family} before its # TYPE")));
        }
        if name.ends_with("_bucket") && !labels.contains_key("le") {
            return Err(at("histogram bucket without le".into()));
        }
        samples.push(Sample { name: name.to_string(), labels, value });
    }
    Ok(Exposition { types, samples })
}

#[test]
fn the_metrics_parser_rejects_malformed_text() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"z\"} 3\n";
    assert!(parse_prometheus(ok).is_ok());
    for bad in [
        "a_total 1\n",                        // no TYPE
        "# TYPE a counter\na{x=1} 1\n",       // unquoted label value
        "# TYPE a counter\na{x=\"1\"} one\n", // bad value
        "# TYPE a counter\n9a 1\n",           // bad name
        "# TYPE a thing\na 1\n",              // unknown type
        "# TYPE a counter\na{x=\"1\" 1\n",    // unterminated labels
        "# TYPE h histogram\nh_bucket 1\n",   // bucket without le
        "# comment\n",                        // stray comment
    ] {
        assert!(parse_prometheus(bad).is_err(), "accepted {bad:?}");
    }
}

/// Runs `fastmcp serve` (expected to refuse its config) and returns (exit code, stderr).
fn serve_expecting_exit(tag: &str, config: Option<&str>, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = temp_dir(tag);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastmcp"));
    cmd.arg("serve").current_dir(&dir);
    if let Some(yaml) = config {
        let path = dir.join("config.yaml");
        std::fs::write(&path, yaml).expect("write config");
        cmd.arg("--config").arg(path);
    }
    let stderr_path = dir.join("stderr.txt");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut child = cmd
        .env("FASTMCP_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("FASTMCP_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("FASTMCP_DATA_DIR", dir.join("data"))
        .env("AUDIT_WORM_DIR", dir.join("audit"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("spawn fastmcp");
    // A refused config exits at once; a gateway that started anyway is killed and reported.
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{tag}: `serve` did not exit on a bad config: {}", read(&stderr_path));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = read(&stderr_path);
    let _ = std::fs::remove_dir_all(&dir);
    (status.code(), stderr)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn assert_config_error(tag: &str, config: Option<&str>, env: &[(&str, &str)], key: &str) {
    let (code, stderr) = serve_expecting_exit(tag, config, env);
    assert_eq!(code, Some(2), "{tag}: exit code; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{tag}: expected one line on stderr, got {stderr:?}");
    assert!(lines[0].contains(key), "{tag}: {:?} does not name {key}", lines[0]);
}

#[test]
fn a_bad_config_exits_2_with_one_line_naming_the_key() {
    assert_config_error("bad-ttl", None, &[("CONFIRM_TTL_SEC", "soon")], "holds.ttl_seconds");
    assert_config_error("bad-bytes", None, &[("ACTION_TOKEN_BYTES", "8")], "holds.token_bytes");
    assert_config_error("bad-key", Some("audit:\n  nope: 1\n"), &[], "audit");
}
