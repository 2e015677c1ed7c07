//! pacer: the FastMCP benchmark's fixed-rate load generator and idle-SSE opener.
//!
//! ```text
//! pacer [paced] --url http://127.0.0.1:P/mcp/bench --rate R --duration S --connections C \
//!       [--header 'authorization: Bearer X']... --body-file F [--timeout S]
//!   -> PACED rate=R sent=n ok=n non2xx=n errors=n p50_us=… p90_us=… p99_us=… p999_us=… max_us=… achieved_rps=…
//! pacer sse-idle --url http://127.0.0.1:P/mcp --count N [--header H]... [--parallel P]
//!       [--hold S] [--timeout S]
//!   -> SSE open=n failed=n   (then holds the streams: S seconds, or until stdin closes)
//! ```
//!
//! Paced POSTs carry `content-type: application/json` and
//! `accept: application/json, text/event-stream` unless a `--header` names them.
//! Durations: `10`, `10s`, `500ms`, `2m`.

mod http;
mod paced;
mod request;
mod schedule;
mod sse;

use std::io::{Read, Write};
use std::time::Duration;

use request::Target;

fn main() {
    tighten_timer_slack();
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match args.first().map(String::as_str) {
        Some("sse-idle") => Mode::SseIdle,
        Some("paced") => Mode::Paced,
        _ => {
            args.insert(0, "paced".into());
            Mode::Paced
        }
    };
    let flags = match Flags::parse(&args[1..]) {
        Ok(f) => f,
        Err(e) => usage(&e),
    };
    let result = match mode {
        Mode::Paced => run_paced(flags),
        Mode::SseIdle => run_sse(flags),
    };
    if let Err(e) = result {
        eprintln!("pacer: {e}");
        std::process::exit(1);
    }
}

/// Linux lets a sleeping thread wake up to 50 us late by default (timer slack) so wake-ups
/// can be batched; 1 ns keeps the schedule tight. Threads spawned later inherit it.
#[cfg(target_os = "linux")]
fn tighten_timer_slack() {
    extern "C" {
        fn prctl(option: i32, ...) -> i32;
    }
    const PR_SET_TIMERSLACK: i32 = 29;
    // SAFETY: prctl(PR_SET_TIMERSLACK, n) only changes this thread's timer slack; std links libc.
    unsafe {
        prctl(PR_SET_TIMERSLACK, 1u64);
    }
}
#[cfg(not(target_os = "linux"))]
fn tighten_timer_slack() {}

enum Mode {
    Paced,
    SseIdle,
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("pacer: {msg}");
    }
    eprintln!(
        "usage: pacer [paced] --url URL --rate R --duration S --connections C [--header H]... --body-file F [--timeout S]\n       \
         pacer sse-idle --url URL --count N [--header H]... [--parallel P] [--hold S] [--timeout S]"
    );
    std::process::exit(if msg.is_empty() { 0 } else { 2 });
}

#[derive(Default, Debug)]
struct Flags {
    url: Option<String>,
    rate: Option<f64>,
    duration: Option<Duration>,
    connections: Option<usize>,
    headers: Vec<String>,
    body_file: Option<String>,
    timeout: Option<Duration>,
    count: Option<usize>,
    parallel: Option<usize>,
    hold: Option<Duration>,
}

impl Flags {
    fn parse(args: &[String]) -> Result<Flags, String> {
        let mut f = Flags::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (name, inline) = match a.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            if name == "-h" || name == "--help" {
                usage("");
            }
            let mut value = || inline.clone().or_else(|| it.next().cloned()).ok_or(format!("{name} needs a value"));
            let num = |v: String| v.parse::<f64>().map_err(|_| format!("{name}: not a number: {v:?}"));
            let int = |v: String| v.parse::<usize>().map_err(|_| format!("{name}: not a count: {v:?}"));
            match name {
                "--url" => f.url = Some(value()?),
                "--rate" => f.rate = Some(num(value()?)?),
                "--duration" => f.duration = Some(parse_duration(&value()?)?),
                "--connections" | "-c" => f.connections = Some(int(value()?)?),
                "--header" | "-H" => f.headers.push(value()?),
                "--body-file" => f.body_file = Some(value()?),
                "--timeout" => f.timeout = Some(parse_duration(&value()?)?),
                "--count" => f.count = Some(int(value()?)?),
                "--parallel" => f.parallel = Some(int(value()?)?),
                "--hold" => f.hold = Some(parse_duration(&value()?)?),
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        for h in &f.headers {
            if !h.contains(':') || h.contains('\r') || h.contains('\n') {
                return Err(format!("--header {h:?}: expected 'name: value'"));
            }
        }
        Ok(f)
    }
}

/// `10`, `10s`, `2.5s`, `500ms`, `2m` → a duration.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

fn run_paced(f: Flags) -> Result<(), String> {
    let target = Target::parse(f.url.as_deref().ok_or("--url is required")?)?;
    let rate = f.rate.ok_or("--rate is required")?;
    let duration = f.duration.ok_or("--duration is required")?;
    let schedule = schedule::Schedule::new(rate, duration.as_secs_f64())
        .ok_or("--rate and --duration must be positive (and give at least one request)")?;
    let connections = f.connections.unwrap_or(32);
    if connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let path = f.body_file.ok_or("--body-file is required")?;
    let body = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let defaults = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    let request = request::build("POST", &target, &defaults, &f.headers, &body);
    let timeout = f.timeout.unwrap_or(Duration::from_secs(10));
    let report = paced::run(paced::Options { target, schedule, connections, request, timeout }, rate)?;
    if let Some(e) = &report.first_error {
        eprintln!("pacer: {} error(s), first: {e}", report.errors);
    }
    println!("{}", report.line());
    Ok(())
}

fn run_sse(f: Flags) -> Result<(), String> {
    let target = Target::parse(f.url.as_deref().ok_or("--url is required")?)?;
    let count = f.count.ok_or("--count is required")?;
    let opts = sse::Options {
        target,
        count,
        headers: f.headers,
        parallel: f.parallel.unwrap_or(4),
        timeout: f.timeout.unwrap_or(Duration::from_secs(30)),
    };
    let opened = sse::open(opts)?;
    for e in &opened.first_errors {
        eprintln!("pacer: stream failed: {e}");
    }
    println!("SSE open={} failed={}", opened.streams.len(), opened.failed);
    let _ = std::io::stdout().flush();
    match f.hold {
        Some(d) => std::thread::sleep(d),
        None => {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        }
    }
    drop(opened.streams);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2.5s").unwrap(), Duration::from_millis(2500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn flags() {
        let f = Flags::parse(&args("--url http://a:1/p --rate=5000.5 --duration 3s -c 8 --header x:1 -H y:2")).unwrap();
        assert_eq!(f.url.as_deref(), Some("http://a:1/p"));
        assert_eq!((f.rate, f.connections), (Some(5000.5), Some(8)));
        assert_eq!(f.duration, Some(Duration::from_secs(3)));
        assert_eq!(f.headers, vec!["x:1", "y:2"]);
        assert!(Flags::parse(&args("--rate")).is_err());
        assert!(Flags::parse(&args("--rate x")).is_err());
        assert!(Flags::parse(&args("--bogus 1")).is_err());
        assert!(Flags::parse(&args("--header novalue")).is_err());
    }
}
