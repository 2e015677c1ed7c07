//! Where verification keys come from and how they are kept current.
//!
//! A JWKS URL or file is reloaded on a plain background thread (pingora owns the runtimes):
//! every `auth.jwks_refresh_seconds`, or — for a URL whose answer carries
//! `Cache-Control: max-age` (`no-cache`/`no-store` count as 0) — after that many seconds
//! clamped to `[auth.jwks_max_age_min_seconds, auth.jwks_max_age_max_seconds]`, so the key
//! server can neither stall refreshes nor cause a fetch storm. A failed reload keeps the
//! current keys and is retried sooner (1 s, doubling, capped at the refresh interval).

use std::path::PathBuf;
use std::sync::Weak;
use std::time::Duration;

use jsonwebtoken::Algorithm;

use super::keys::KeySet;
use super::store::{Install, KeyStore};
use crate::config::AuthConfig;
use crate::metrics::METRICS;

/// Where verification keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fixed keys (the dev key).
    Static,
    /// A JWKS file, re-read periodically.
    File(PathBuf),
    /// A JWKS URL, refetched periodically and on unknown kids.
    Url(String),
}

/// One successful load.
pub struct Loaded {
    pub set: KeySet,
    /// The answer's `Cache-Control` freshness in seconds (URLs only).
    pub max_age: Option<u64>,
}

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: u64 = 1 << 20;

impl KeySource {
    /// Loads the key set, blocking (a URL is fetched with a 5 s overall timeout; HTTPS is
    /// verified against the gateway's one root set, [`crate::upstream::tls`]). `Static` has
    /// nothing to load.
    pub fn load(&self, default_alg: Algorithm) -> Result<Option<Loaded>, String> {
        let (text, max_age, what) = match self {
            KeySource::Static => return Ok(None),
            KeySource::File(path) => {
                let what = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| format!("{what}: {e}"))?;
                (text, None, what)
            }
            KeySource::Url(url) => {
                let (text, max_age) = fetch(url)?;
                (text, max_age, url.clone())
            }
        };
        let (set, skipped) = KeySet::from_jwks_json(&text, default_alg).map_err(|e| format!("{what}: {e}"))?;
        for s in skipped {
            tracing::warn!(source = %what, reason = %s, "JWKS key skipped");
        }
        Ok(Some(Loaded { set, max_age }))
    }
}

fn fetch(url: &str) -> Result<(String, Option<u64>), String> {
    let agent =
        crate::upstream::tls::ureq_agent_config().timeout_global(Some(Duration::from_secs(5))).build().new_agent();
    let mut resp = agent.get(url).call().map_err(|e| format!("GET {url}: {e}"))?;
    let max_age = resp.headers().get(http::header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
    let text =
        resp.body_mut().with_config().limit(MAX_JWKS_BYTES).read_to_string().map_err(|e| format!("GET {url}: {e}"))?;
    Ok((text, max_age))
}

/// The freshness a `Cache-Control` value grants, in seconds: `max-age=N`, or 0 for
/// `no-cache`/`no-store`; `None` when it says neither (or says it unparseably).
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut found = None;
    for directive in cache_control.split(',') {
        let directive = directive.trim();
        let (name, value) =
            directive.split_once('=').map(|(n, v)| (n.trim(), Some(v.trim()))).unwrap_or((directive, None));
        if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age") {
            // RFC 9111 §1.2.2: an overflowing delta-seconds is "infinitely" fresh; the upper
            // bound clamps it anyway.
            let v = value?.trim_matches('"');
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            found = Some(v.parse::<u64>().unwrap_or(u64::MAX));
        }
    }
    found
}

/// When the next reload happens.
#[derive(Debug, Clone)]
pub struct Schedule {
    interval: Duration,
    max_age_min: Duration,
    max_age_max: Duration,
    failures: u32,
}

impl Schedule {
    pub fn new(cfg: &AuthConfig) -> Schedule {
        Schedule {
            interval: Duration::from_secs(cfg.jwks_refresh_seconds.max(1)),
            max_age_min: Duration::from_secs(cfg.jwks_max_age_min_seconds.max(1)),
            max_age_max: Duration::from_secs(cfg.jwks_max_age_max_seconds.max(cfg.jwks_max_age_min_seconds).max(1)),
            failures: 0,
        }
    }

    /// The wait after a successful load whose answer granted `max_age` seconds.
    pub fn after_success(&mut self, max_age: Option<u64>) -> Duration {
        self.failures = 0;
        match max_age {
            Some(s) => Duration::from_secs(s).clamp(self.max_age_min, self.max_age_max),
            None => self.interval,
        }
    }

    /// The wait after a failed load: 1 s, doubling per consecutive failure, at most the
    /// refresh interval.
    pub fn after_failure(&mut self) -> Duration {
        let backoff = Duration::from_secs(1u64 << self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        backoff.min(self.interval)
    }
}

/// Loads from `source` once and installs the result; returns the wait before the next load.
pub fn refresh_once(store: &KeyStore, source: &KeySource, default_alg: Algorithm, schedule: &mut Schedule) -> Duration {
    let seq = store.begin_fetch();
    match source.load(default_alg) {
        Ok(Some(loaded)) => {
            let result = match store.install(seq, loaded.set) {
                Install::Changed { added, removed } => {
                    tracing::info!(added, removed, keys = store.key_count(), "JWKS keys changed");
                    "changed"
                }
                Install::Unchanged | Install::Stale => "unchanged",
            };
            METRICS.jwks_refreshes.with_label_values(&[result]).inc();
            schedule.after_success(loaded.max_age)
        }
        Ok(None) => schedule.after_success(None),
        Err(e) => {
            METRICS.jwks_refreshes.with_label_values(&["error"]).inc();
            let wait = schedule.after_failure();
            tracing::warn!(error = %e, retry_in_s = wait.as_secs(), keys = store.key_count(), "JWKS refresh failed; keeping the current keys");
            wait
        }
    }
}

/// Starts the periodic reload thread; it waits `first`, then reloads on `schedule` until the
/// store is dropped. Nothing to do for a static source.
pub fn spawn(
    store: Weak<KeyStore>,
    source: KeySource,
    default_alg: Algorithm,
    mut schedule: Schedule,
    first: Duration,
) -> Result<(), String> {
    if matches!(source, KeySource::Static) {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("fastmcp-jwks-refresh".into())
        .spawn(move || {
            let mut wait = first;
            loop {
                std::thread::sleep(wait);
                // The strong reference ends with the iteration: a sleeping thread keeps
                // nothing alive.
                let Some(store) = store.upgrade() else { return };
                wait = refresh_once(&store, &source, default_alg, &mut schedule);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("JWKS refresh thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(interval: u64, min: u64, max: u64) -> Schedule {
        let mut cfg = crate::config::Config::load(None, Vec::new()).unwrap().auth;
        cfg.jwks_refresh_seconds = interval;
        cfg.jwks_max_age_min_seconds = min;
        cfg.jwks_max_age_max_seconds = max;
        Schedule::new(&cfg)
    }

    #[test]
    fn cache_control_parsing() {
        assert_eq!(max_age("max-age=120"), Some(120));
        assert_eq!(max_age("public, MAX-AGE = 45 , must-revalidate"), Some(45));
        assert_eq!(max_age("max-age=\"30\""), Some(30));
        assert_eq!(max_age("no-cache"), Some(0));
        assert_eq!(max_age("max-age=600, no-store"), Some(0));
        assert_eq!(max_age("max-age=99999999999999999999999"), Some(u64::MAX));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=-5"), None);
        assert_eq!(max_age("max-age=abc"), None);
        assert_eq!(max_age("max-age"), None);
        assert_eq!(max_age("s-maxage=10"), None);
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        let mut s = schedule(300, 30, 900);
        assert_eq!(s.after_success(None), Duration::from_secs(300), "no max-age: the configured interval");
        assert_eq!(s.after_success(Some(120)), Duration::from_secs(120), "within bounds: as the server says");
        assert_eq!(s.after_success(Some(0)), Duration::from_secs(30), "no fetch storm: raised to the minimum");
        assert_eq!(s.after_success(Some(86_400)), Duration::from_secs(900), "no stall: lowered to the maximum");
        assert_eq!(s.after_success(Some(u64::MAX)), Duration::from_secs(900));
    }

    #[test]
    fn failures_back_off_up_to_the_interval_and_success_resets() {
        let mut s = schedule(10, 30, 900);
        let waits: Vec<u64> = (0..6).map(|_| s.after_failure().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
        s.after_success(None);
        assert_eq!(s.after_failure(), Duration::from_secs(1));
        let mut fast = schedule(1, 30, 900);
        assert_eq!((fast.after_failure(), fast.after_failure()), (Duration::from_secs(1), Duration::from_secs(1)));
    }

    #[test]
    fn file_source_reloads_and_failures_keep_the_keys() {
        let dir = std::env::temp_dir().join(format!("fastmcp-refresh-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwks.json");
        let jwk = |kid: &str| {
            serde_json::json!({"kty": "EC", "crv": "P-256", "kid": kid,
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})
        };
        std::fs::write(&path, serde_json::json!({"keys": [jwk("a")]}).to_string()).unwrap();
        let source = KeySource::File(path.clone());
        let first = source.load(Algorithm::ES256).unwrap().unwrap();
        let store = KeyStore::new(first.set, super::super::cache::TokenCache::new(10, 60));
        let mut s = schedule(300, 30, 900);

        std::fs::write(&path, serde_json::json!({"keys": [jwk("b")]}).to_string()).unwrap();
        assert_eq!(refresh_once(&store, &source, Algorithm::ES256, &mut s), Duration::from_secs(300));
        assert!(store.key_for(Some("a")).is_none() && store.key_for(Some("b")).is_some(), "the new file is serving");

        std::fs::write(&path, "{ half-written").unwrap();
        assert_eq!(refresh_once(&store, &source, Algorithm::ES256, &mut s), Duration::from_secs(1));
        std::fs::remove_file(&path).unwrap();
        assert_eq!(refresh_once(&store, &source, Algorithm::ES256, &mut s), Duration::from_secs(2));
        assert!(store.key_for(Some("b")).is_some(), "a broken or missing file keeps the current keys");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
