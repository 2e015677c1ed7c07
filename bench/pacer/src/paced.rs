//! The paced (open-loop, wrk2-style) run: request `k` is due at `t0 + k / rate`; one blocking
//! thread per keep-alive connection takes the next due request from a shared counter, sleeps
//! until it is due (nanosleep: tens of microseconds late at worst, where tokio's 1 ms timer
//! would add up to a millisecond), sends it and reads the answer. Latency runs from the DUE
//! time, not the send time, so a stalled server is charged for every request that queued
//! behind it (coordinated omission corrected): when all connections are busy, the next
//! request is sent late and its lateness counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::request::{Conn, Target};
use crate::schedule::{Schedule, Summary};

pub struct Options {
    pub target: Target,
    pub schedule: Schedule,
    pub connections: usize,
    /// The whole request, built once.
    pub request: Vec<u8>,
    /// Connect and per-response read timeout.
    pub timeout: Duration,
}

/// Counts of one thread, merged at the end.
#[derive(Default)]
struct Tally {
    sent: u64,
    ok: u64,
    non2xx: u64,
    errors: u64,
    latencies_ns: Vec<u64>,
    last_done: Option<Instant>,
}

pub struct Report {
    pub rate: f64,
    pub sent: u64,
    pub ok: u64,
    pub non2xx: u64,
    pub errors: u64,
    pub latency: Summary,
    /// Completed responses per second, from t0 to the last one.
    pub achieved_rps: f64,
    /// The first error seen, for the log.
    pub first_error: Option<String>,
}

impl Report {
    /// The one machine-readable line.
    pub fn line(&self) -> String {
        let l = &self.latency;
        format!(
            "PACED rate={} sent={} ok={} non2xx={} errors={} p50_us={} p90_us={} p99_us={} p999_us={} max_us={} achieved_rps={:.0}",
            self.rate, self.sent, self.ok, self.non2xx, self.errors, l.p50, l.p90, l.p99, l.p999, l.max, self.achieved_rps
        )
    }
}

pub fn run(opts: Options, rate: f64) -> Result<Report, String> {
    let addr = opts.target.addr()?;
    // Connections are opened before t0, so the schedule does not start with connect times.
    let conns: Vec<Option<Conn>> = (0..opts.connections).map(|_| Conn::connect(addr, opts.timeout).ok()).collect();
    let opts = Arc::new(opts);
    let next = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let t0 = Instant::now() + Duration::from_millis(5);
    let workers: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let (opts, next, first_error) = (opts.clone(), next.clone(), first_error.clone());
            std::thread::spawn(move || worker(&opts, addr, conn, &next, t0, &first_error))
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = w.join().map_err(|_| "worker thread panicked".to_string())?;
        all.sent += t.sent;
        all.ok += t.ok;
        all.non2xx += t.non2xx;
        all.errors += t.errors;
        all.latencies_ns.extend_from_slice(&t.latencies_ns);
        all.last_done = all.last_done.max(t.last_done);
    }
    let done = (all.ok + all.non2xx) as f64;
    let achieved_rps = match all.last_done {
        Some(end) if end > t0 => done / (end - t0).as_secs_f64(),
        _ => 0.0,
    };
    let first_error = first_error.lock().ok().and_then(|mut e| e.take());
    Ok(Report {
        rate,
        sent: all.sent,
        ok: all.ok,
        non2xx: all.non2xx,
        errors: all.errors,
        latency: Summary::of(&mut all.latencies_ns),
        achieved_rps,
        first_error,
    })
}

fn worker(
    opts: &Options,
    addr: std::net::SocketAddr,
    mut conn: Option<Conn>,
    next: &AtomicU64,
    t0: Instant,
    first_error: &std::sync::Mutex<Option<String>>,
) -> Tally {
    let share = opts.schedule.total() as usize / opts.connections.max(1) + 16;
    let mut t = Tally { latencies_ns: Vec::with_capacity(share), ..Tally::default() };
    let fail = |t: &mut Tally, e: String| {
        t.errors += 1;
        if let Ok(mut first) = first_error.lock() {
            first.get_or_insert(e);
        }
    };
    loop {
        let k = next.fetch_add(1, Ordering::Relaxed);
        if k >= opts.schedule.total() {
            return t;
        }
        let due = t0 + opts.schedule.due(k);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        if conn.is_none() {
            match Conn::connect(addr, opts.timeout) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail(&mut t, format!("connect: {e}"));
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        if let Err(e) = std::io::Write::write_all(&mut c.sock, &opts.request) {
            fail(&mut t, format!("write: {e}"));
            conn = None;
            continue;
        }
        t.sent += 1;
        match c.read_response() {
            Ok(r) => {
                let end = Instant::now();
                t.latencies_ns.push((end - due).as_nanos() as u64);
                t.last_done = Some(end);
                if (200..300).contains(&r.head.status) {
                    t.ok += 1;
                } else {
                    t.non2xx += 1;
                }
                if r.head.close {
                    conn = None;
                }
            }
            Err(e) => {
                fail(&mut t, format!("read: {e}"));
                conn = None;
            }
        }
    }
}
