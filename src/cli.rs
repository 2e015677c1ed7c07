//! Command line (DESIGN §2): `serve`, `token mint`, `audit verify|pubkey|reindex|query`
//! (`cli/audit.rs`), `policy test|eval|diff` (`cli/policy_diff.rs`: offline replay of an
//! audit trail against a live and a candidate policy).

mod audit;
mod policy_diff;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::auth::devkeys::DevKey;
use crate::auth::parse_alg;
use crate::config::Config;
use crate::policy::{testrunner, CompiledPolicy, PolicySources};
use audit::AuditCommand;

#[derive(Parser)]
#[command(name = "fastmcp", version, about = "Policy enforcement point for AI-agent tool traffic")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (embedded defaults when no --config).
    Serve {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Take over the listening sockets of the running gateway (send it SIGQUIT within
        /// 5 s) instead of binding them: a zero-downtime upgrade (README "Starts and stops").
        #[arg(long)]
        upgrade: bool,
    },
    /// Dev tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Audit trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Policy tools.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// List the tools found on the configured MCP servers (JSON; exit 1 if any is down).
    Discover {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a JWT signed by the dev key.
    Mint {
        #[arg(long)]
        sub: String,
        #[arg(long, default_value = "public")]
        tenant: String,
        /// Comma-separated roles.
        #[arg(long, default_value = "")]
        roles: String,
        /// Comma-separated scopes.
        #[arg(long, default_value = "")]
        scopes: String,
        /// Lifetime: 3600, 3600s, 30m, 1h, 1d.
        #[arg(long, default_value = "1h")]
        ttl: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run every test_* rule of *_test.rego (like `opa test`).
    Test {
        /// Rego directories (default: the configured rego_dir).
        dirs: Vec<PathBuf>,
        /// Also print line coverage of the policy modules.
        #[arg(long)]
        coverage: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the decision for one input document.
    Eval {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Replay recorded decisions (an audit file or directory) against two policies and print
    /// the decisions that change.
    Diff {
        /// The live policy: DIR/policies.yml and *.rego under DIR (embedded copy if missing).
        #[arg(long)]
        live: PathBuf,
        /// The candidate bundle, laid over the live policy (policies.yml and/or *.rego).
        #[arg(long)]
        candidate: PathBuf,
        /// Audit trail: a .jsonl file or a directory of them.
        #[arg(long)]
        inputs: PathBuf,
        /// JSON {sub: {"roles": [...], "scopes": [...], "claims": {...}}}: what the audit
        /// record does not hold about each subject.
        #[arg(long)]
        subjects: Option<PathBuf>,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Serve { config, upgrade } => serve(config, upgrade),
        Command::Token { command: TokenCommand::Mint { sub, tenant, roles, scopes, ttl, config } } => {
            with_config(config, |cfg| mint(&cfg, &sub, &tenant, &roles, &scopes, &ttl))
        }
        Command::Audit { command } => audit::run(command),
        Command::Policy { command: PolicyCommand::Test { dirs, coverage, config } } => with_config(config, |cfg| {
            let dirs = if dirs.is_empty() { vec![cfg.policy.rego_dir.clone()] } else { dirs };
            policy_test(&cfg, &dirs, coverage)
        }),
        Command::Policy { command: PolicyCommand::Eval { input, config } } => {
            with_config(config, |cfg| policy_eval(&cfg, &input))
        }
        Command::Policy { command: PolicyCommand::Diff { live, candidate, inputs, subjects } } => {
            policy_diff::run(&live, &candidate, &inputs, subjects.as_deref())
        }
        Command::Discover { config } => with_config(config, |cfg| discover(&cfg)),
    }
}

/// `fastmcp discover`: connects to every configured server (with the discovery retries) and
/// prints each one's status and tools as catalog manifests.
fn discover(cfg: &Config) -> i32 {
    let catalog = match crate::catalog::Catalog::new(&cfg.mcp.servers) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let timeout = std::time::Duration::from_secs(cfg.limits.upstream_timeout_seconds);
    let servers: Vec<_> =
        catalog.servers().iter().map(|s| (s.name.clone(), crate::mcp::upstream::transport(s, timeout))).collect();
    let opts = crate::mcp::discovery::DiscoveryOptions {
        retries: cfg.mcp.discovery_retries,
        backoff_ms: cfg.mcp.discovery_backoff_ms,
        refresh_interval: std::time::Duration::from_secs(cfg.mcp.refresh_interval_seconds.max(1)),
    };
    let found = crate::mcp::discovery::Discovery::discover_once(servers, &opts);
    let mut all_up = true;
    let mut out = serde_json::Map::new();
    for (name, state) in found {
        all_up &= state.status == crate::mcp::discovery::ServerStatus::Up;
        let manifests: Vec<serde_json::Value> = match catalog.server(&name) {
            Some(server) => state
                .tools
                .iter()
                .filter_map(|t| {
                    let tool = t.get("name")?.as_str()?;
                    let mut m = catalog.tool_resource(&server, tool, t.get("annotations"));
                    m["description"] = t.get("description").cloned().unwrap_or_default();
                    m["inputs"] = t.get("inputSchema").cloned().unwrap_or_else(|| serde_json::json!({}));
                    Some(m)
                })
                .collect(),
            None => vec![],
        };
        out.insert(name, serde_json::json!({"status": state.status, "era": state.era, "tools": manifests}));
    }
    println!("{}", serde_json::to_string_pretty(&serde_json::json!({"servers": out})).unwrap_or_default());
    if all_up {
        0
    } else {
        1
    }
}

fn with_config(path: Option<PathBuf>, f: impl FnOnce(Config) -> i32) -> i32 {
    match Config::from_process(path.as_deref()) {
        Ok(cfg) => f(cfg),
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}

fn init_logging(level: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(level).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().json().with_env_filter(filter).with_current_span(false).try_init();
}

fn serve(config: Option<PathBuf>, upgrade: bool) -> i32 {
    let cfg = match Config::from_process(config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    init_logging(&cfg.log_level);
    match crate::server::serve(cfg, upgrade) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("startup failed: {e}");
            2
        }
    }
}

fn parse_ttl(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, mult) = match s.chars().last()? {
        's' => (&s[..s.len() - 1], 1),
        'm' => (&s[..s.len() - 1], 60),
        'h' => (&s[..s.len() - 1], 3600),
        'd' => (&s[..s.len() - 1], 86400),
        _ => (s, 1),
    };
    num.parse::<i64>().ok().map(|n| n * mult)
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(String::from).collect()
}

fn mint(cfg: &Config, sub: &str, tenant: &str, roles: &str, scopes: &str, ttl: &str) -> i32 {
    let Some(ttl) = parse_ttl(ttl) else {
        eprintln!("--ttl: expected seconds or a number with s/m/h/d, got {ttl:?}");
        return 2;
    };
    let key = match DevKey::load_or_create(&cfg.data_dir, parse_alg(&cfg.auth.algorithm)) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("dev key: {e}");
            return 2;
        }
    };
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": cfg.auth.issuer, "aud": cfg.auth.audience, "sub": sub, "tenant": tenant,
        "roles": list(roles), "scopes": list(scopes), "iat": now, "nbf": now, "exp": now + ttl,
    });
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    let signed = key.encoding_key().and_then(|k| jsonwebtoken::encode(&header, &claims, &k).map_err(|e| e.to_string()));
    match signed {
        Ok(t) => {
            println!("{t}");
            0
        }
        Err(e) => {
            eprintln!("signing failed: {e}");
            2
        }
    }
}

fn policy_test(cfg: &Config, dirs: &[PathBuf], coverage: bool) -> i32 {
    let sources = match PolicySources::load(&cfg.policy.policies_file, dirs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let run = if coverage {
        testrunner::run_with_coverage(&sources).map(|(r, c)| (r, Some(c)))
    } else {
        testrunner::run(&sources).map(|r| (r, None))
    };
    let (results, coverage) = match run {
        Ok(r) => r,
        Err(e) => {
            eprintln!("policy does not compile: {e}");
            return 1;
        }
    };
    let failed = results.iter().filter(|r| !r.passed).count();
    for r in &results {
        if r.passed {
            println!("PASS {}: {}", r.file, r.rule);
        } else {
            println!("FAIL {}: {} — {}", r.file, r.rule, r.detail);
        }
    }
    for f in coverage.unwrap_or_default() {
        let total = f.covered + f.not_covered;
        let pct = if total == 0 { 100.0 } else { 100.0 * f.covered as f64 / total as f64 };
        println!("COVERAGE {}: {}/{} lines ({pct:.1}%)", f.file, f.covered, total);
    }
    println!("{} passed, {} failed", results.len() - failed, failed);
    if failed > 0 || results.is_empty() {
        1
    } else {
        0
    }
}

fn policy_eval(cfg: &Config, input: &std::path::Path) -> i32 {
    let run = || -> Result<serde_json::Value, String> {
        let text = std::fs::read_to_string(input).map_err(|e| format!("{}: {e}", input.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", input.display()))?;
        let sources = PolicySources::load(&cfg.policy.policies_file, std::slice::from_ref(&cfg.policy.rego_dir))?;
        let d = CompiledPolicy::compile(&sources)?.decide_json(&doc).map_err(|e| e.to_string())?;
        Ok(serde_json::json!({"allow": d.allow, "require_confirmation": d.require_confirmation, "reasons": d.reasons,
            "rate_limit": d.rate_limit.map(|r| serde_json::json!({"rps": r.rps, "burst": r.burst}))}))
    };
    match run() {
        Ok(v) => {
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("{e}");
            2
        }
    }
}
