//! The real MCP client libraries of the client matrix, driven through one CLI each
//! (tests/py/client_common.py describes the shared command line, steps and output):
//!
//! - `ts-sdk`: `@modelcontextprotocol/sdk` (tests/node/client_ts.mjs, pinned in package.json)
//! - `py-sdk-2`: the official Python SDK 2.x (tests/py/client_mcp2.py in .venv)
//! - `py-sdk-1`: the official Python SDK 1.x (tests/py/client_mcp1.py in .venv-mcp1)
//! - `fastmcp`: the `fastmcp` Python client (tests/py/client_fastmcp.py in .venv-fastmcp)
//!
//! `scripts/setup-test-deps.sh` installs all four.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{repo, temp_dir, wait_discovered, DemoServer, EverythingServer, Gateway};

/// One client library and how to start its driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    TsSdk,
    PySdk2,
    PySdk1,
    FastMcp,
}

pub const ALL: [Client; 4] = [Client::TsSdk, Client::PySdk2, Client::PySdk1, Client::FastMcp];

/// Deadline of one driver run (the driver's own) and of one step inside it.
const RUN_SECONDS: u64 = 90;
const STEP_SECONDS: u64 = 20;

impl Client {
    pub fn label(self) -> &'static str {
        match self {
            Client::TsSdk => "ts-sdk",
            Client::PySdk2 => "py-sdk-2",
            Client::PySdk1 => "py-sdk-1",
            Client::FastMcp => "fastmcp",
        }
    }

    fn command(self) -> Command {
        let (program, script) = match self {
            Client::TsSdk => (PathBuf::from("node"), repo().join("tests/node/client_ts.mjs")),
            Client::PySdk2 => (super::python(), repo().join("tests/py/client_mcp2.py")),
            Client::PySdk1 => (repo().join(".venv-mcp1/bin/python"), repo().join("tests/py/client_mcp1.py")),
            Client::FastMcp => (repo().join(".venv-fastmcp/bin/python"), repo().join("tests/py/client_fastmcp.py")),
        };
        let mut cmd = Command::new(program);
        cmd.arg(script);
        cmd
    }
}

/// How a run declares and answers elicitation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elicit {
    /// Not declared at connect.
    None,
    /// Declared; every `elicitation/create` accepted (`confirm: true`) unless a step says otherwise.
    Accept,
    /// Declared; every `elicitation/create` declined unless a step says otherwise.
    Decline,
}

impl Elicit {
    fn arg(self) -> &'static str {
        match self {
            Elicit::None => "none",
            Elicit::Accept => "accept",
            Elicit::Decline => "decline",
        }
    }
}

/// Runs `steps` (a JSON array of steps) with `client` against `url` and returns its one JSON
/// line. A driver that outlives its own deadline is killed and reported as
/// `{"driver_hung": true}`; a driver that prints no JSON is a harness failure (panic).
pub fn run(client: Client, url: &str, token: Option<&str>, elicit: Elicit, steps: &Value) -> Value {
    let dir = temp_dir(&format!("client-{}", client.label()));
    let steps_file = dir.join("steps.json");
    std::fs::write(&steps_file, steps.to_string()).expect("write steps");
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut cmd = client.command();
    cmd.args(["--url", url, "--elicit", elicit.arg()])
        .arg(format!("--timeout={RUN_SECONDS}"))
        .arg(format!("--step-timeout={STEP_SECONDS}"));
    if let Some(t) = token {
        // `=` form: a URL-safe token may start with `-`.
        cmd.arg(format!("--token={t}"));
    }
    cmd.arg(format!("@{}", steps_file.display()))
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("start the {} driver ({e}); run scripts/setup-test-deps.sh", client.label()));
    let deadline = Instant::now() + Duration::from_secs(RUN_SECONDS + 20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return json!({"driver_hung": true, "connect": {"ok": false, "kind": "timeout"}, "steps": []});
            }
        }
    }
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_else(|| {
        panic!(
            "{} driver printed no JSON; stdout={stdout} stderr={}",
            client.label(),
            std::fs::read_to_string(&err_path).unwrap_or_default()
        )
    });
    let v: Value = serde_json::from_str(line).expect("driver JSON");
    let _ = std::fs::remove_dir_all(&dir);
    v
}

/// Each tool of a `list_tools` step's raw `tools/list` messages as the exact bytes received,
/// by name (in order). `None` when the driver could not see the raw messages.
pub fn raw_tools(step: &Value) -> Option<Vec<(String, String)>> {
    #[derive(serde::Deserialize)]
    struct Msg<'a> {
        #[serde(borrow)]
        result: Page<'a>,
    }
    #[derive(serde::Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        tools: Vec<&'a serde_json::value::RawValue>,
    }
    let pages = step.get("raw")?.as_array()?;
    let mut out = Vec::new();
    for page in pages {
        let text = page.as_str()?;
        let msg: Msg<'_> = serde_json::from_str(text).ok()?;
        for tool in msg.result.tools {
            let name = serde_json::from_str::<Value>(tool.get()).ok()?.get("name")?.as_str()?.to_string();
            out.push((name, tool.get().to_string()));
        }
    }
    Some(out)
}

/// The servers and the gateway the client tests share: the demo server (`/mcp/demo`),
/// server-everything (`/mcp/everything`, trusted annotations, `get-sum` tagged destructive so
/// it is held) and tests/fixtures/client_matrix_policies.yml.
pub struct MatrixEnv {
    pub demo: DemoServer,
    pub everything: EverythingServer,
    pub gw: Gateway,
    pub dir: PathBuf,
}

impl MatrixEnv {
    pub fn start(tag: &str) -> MatrixEnv {
        let dir = temp_dir(tag);
        let demo = DemoServer::start(&dir);
        let everything = EverythingServer::start(&dir);
        let gw = Gateway::builder(tag)
            .env("FASTMCP_POLICIES", &repo().join("tests/fixtures/client_matrix_policies.yml").display().to_string())
            .env("MCP_DEMO_URL", &demo.url())
            .env("MCP_DEMO_TRUSTED", "true")
            .env("MCP_EVERYTHING_URL", &everything.url())
            .env("MCP_EVERYTHING_TRUSTED", "true")
            .env("FASTMCP__MCP__SERVERS__EVERYTHING__TOOL_TAGS", "{get-sum: [destructive]}")
            // Rate limiting is not under test here; many runs call the same tools.
            .env("RATE_LIMIT_DEFAULT_RPS", "1000")
            .env("RATE_BUCKET_BURST", "1000")
            .start();
        wait_discovered(&gw, &["demo", "everything"], Duration::from_secs(30));
        MatrixEnv { demo, everything, gw, dir }
    }
}
