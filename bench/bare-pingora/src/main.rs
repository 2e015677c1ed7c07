//! `bare-pingora`: the floor of the FastMCP load benchmark (`bench/run.sh`).
//!
//! A pingora `ProxyHttp` that does as little as pingora allows: every request goes to one
//! upstream, unchanged (method, path, headers, body), and the body is streamed by pingora,
//! never read by us. Same pingora (version, features, vendor patches), allocator and worker
//! settings as the gateway, so `full ÷ bare-pingora` is the cost of everything FastMCP adds.
//!
//! ```text
//! bare-pingora --listen 127.0.0.1:3100 --upstream 127.0.0.1:3001 [--threads N]
//! BARE_LISTEN=127.0.0.1:3100 BARE_UPSTREAM=127.0.0.1:3001 bare-pingora
//! ```
//!
//! `--threads 0` (the default, like the gateway's `threads: 0`) is one worker per CPU.
//! Upstream connections are pooled and reused by pingora (keep-alive, no idle timeout), as in
//! the gateway. SIGTERM stops it after a one-second grace period.

use std::net::SocketAddr;
use std::process::ExitCode;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::RunArgs;
use pingora::upstreams::peer::HttpPeer;

// The gateway's allocator (src/main.rs), so allocation costs compare like for like.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What the command line (or the environment) asked for.
#[derive(Debug, PartialEq)]
struct Args {
    /// Where the proxy listens (`--listen`, `BARE_LISTEN`).
    listen: SocketAddr,
    /// Where every request goes (`--upstream`, `BARE_UPSTREAM`), plain HTTP/1.1.
    upstream: SocketAddr,
    /// Worker threads (`--threads`, `BARE_THREADS`); 0 = one per CPU.
    threads: usize,
}

const USAGE: &str = "usage: bare-pingora --listen ADDR:PORT --upstream ADDR:PORT [--threads N]\n\
                     (or BARE_LISTEN, BARE_UPSTREAM, BARE_THREADS; threads 0 = one per CPU)";

/// Parses `--flag value` pairs over the environment defaults. `env` is injected for tests.
fn parse_args(argv: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Args, String> {
    let mut listen = env("BARE_LISTEN");
    let mut upstream = env("BARE_UPSTREAM");
    let mut threads = env("BARE_THREADS");
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let slot = match flag.as_str() {
            "--listen" => &mut listen,
            "--upstream" => &mut upstream,
            "--threads" => &mut threads,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        *slot = Some(it.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?.clone());
    }
    let addr = |name: &str, v: Option<String>| -> Result<SocketAddr, String> {
        let v = v.ok_or_else(|| format!("{name} is required\n{USAGE}"))?;
        v.parse().map_err(|e| format!("{name} {v:?}: {e} (want IP:PORT)"))
    };
    let threads = match threads {
        None => 0,
        Some(t) => t.parse().map_err(|e| format!("threads {t:?}: {e}"))?,
    };
    Ok(Args { listen: addr("listen", listen)?, upstream: addr("upstream", upstream)?, threads })
}

/// The proxy: one fixed upstream, no per-request state.
struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        // Plain HTTP; pingora's pool reuses the connection (keyed by the peer) after each answer.
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv, |k| std::env::var(k).ok()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bare-pingora: {e}");
            return ExitCode::from(2);
        }
    };
    // As the gateway's src/server.rs: 0 means one worker thread per CPU.
    let threads = if args.threads == 0 {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
    } else {
        args.threads
    };
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        // Per process, so two instances never share pingora's default upgrade socket.
        upgrade_sock: std::env::temp_dir()
            .join(format!("bare-pingora-{}.sock", std::process::id()))
            .display()
            .to_string(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Some(Opt::default()), conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream: args.upstream });
    proxy.add_tcp(&args.listen.to_string());
    server.add_service(proxy);
    eprintln!("bare-pingora: {} -> {} ({threads} threads)", args.listen, args.upstream);
    server.run(RunArgs::default());
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn flags_override_the_environment() {
        let env = |k: &str| match k {
            "BARE_LISTEN" => Some("127.0.0.1:1".to_string()),
            "BARE_UPSTREAM" => Some("127.0.0.1:2".to_string()),
            _ => None,
        };
        let a = parse_args(&argv(&["--listen", "127.0.0.1:9", "--threads", "3"]), env).unwrap();
        assert_eq!(
            a,
            Args { listen: "127.0.0.1:9".parse().unwrap(), upstream: "127.0.0.1:2".parse().unwrap(), threads: 3 }
        );
    }

    #[test]
    fn missing_or_bad_values_are_errors() {
        let none = |_: &str| None;
        assert!(parse_args(&argv(&["--listen", "127.0.0.1:9"]), none).unwrap_err().contains("upstream is required"));
        assert!(parse_args(&argv(&["--listen", "nope", "--upstream", "127.0.0.1:2"]), none).is_err());
        assert!(parse_args(&argv(&["--listen"]), none).unwrap_err().contains("needs a value"));
        assert!(parse_args(&argv(&["--bogus"]), none).unwrap_err().contains("unknown argument"));
    }
}
