//! Webhook notifications of new holds (`holds.notify`), so a chat bot can link to the
//! approvals console.
//!
//! - Body: JSON `{"event": "hold.created", "hold_id", "tenant", "sub", "agent", "tool_id",
//!   "server", "provider", "rules", "risk_tags", "needs_approval", "expires_at",
//!   "console_url"?}` — never the arguments nor the action token.
//! - Signature: `X-FastMCP-Timestamp: <unix seconds>` and `X-FastMCP-Signature:
//!   sha256=<hex HMAC-SHA256(key, "<timestamp>.<body>")>`; a receiver checks the HMAC and
//!   refuses old timestamps (replay).
//! - Delivery: a bounded queue drained by one background thread; a full queue drops the
//!   notification. Nothing here ever delays or fails the held call. One attempt per
//!   notification; results counted in `fastmcp_holds_notify_total{result}`.
//! - The URL is the operator's (config); nothing a caller sends chooses where it goes, and
//!   redirects are not followed.

use std::collections::BTreeMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use serde_json::json;

use crate::config::{HoldsNotifyConfig, WebhookConfig};
use crate::metrics::METRICS;
use crate::state::Hold;

/// Shortest HMAC key accepted (bytes).
pub const MIN_KEY_BYTES: usize = 16;

/// One resolved webhook: where, and its key.
#[derive(Clone)]
struct Hook {
    url: String,
    key: Vec<u8>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook").field("url", &self.url).finish_non_exhaustive()
    }
}

struct Job {
    hook: Hook,
    body: Vec<u8>,
}

/// The notifier: resolved webhooks and the sending thread's queue.
pub struct Notifier {
    default: Option<Hook>,
    tenants: BTreeMap<String, Hook>,
    console_url: String,
    tx: SyncSender<Job>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("default", &self.default).field("tenants", &self.tenants).finish()
    }
}

impl Notifier {
    /// From config (reads the key files and variables; a startup error names the key, never
    /// the secret). `None` when no webhook is configured.
    pub fn from_config(cfg: &HoldsNotifyConfig) -> Result<Option<Notifier>, String> {
        if !cfg.enabled() {
            return Ok(None);
        }
        let resolve = |key: &str, w: &WebhookConfig| -> Result<Option<Hook>, String> {
            if w.url.is_empty() {
                return Ok(None);
            }
            Ok(Some(Hook { url: w.url.clone(), key: read_key(key, w)? }))
        };
        let default = resolve("holds.notify", &cfg.default_hook())?;
        let mut tenants = BTreeMap::new();
        for (t, w) in &cfg.tenants {
            if let Some(h) = resolve(&format!("holds.notify.tenants.{t}"), w)? {
                tenants.insert(t.clone(), h);
            }
        }
        let (tx, rx) = sync_channel(cfg.queue.max(1));
        let timeout = Duration::from_millis(cfg.timeout_ms.max(1));
        std::thread::Builder::new()
            .name("fastmcp-hold-notify".into())
            .spawn(move || run(rx, timeout))
            .map_err(|e| format!("holds.notify: cannot start the sender thread: {e}"))?;
        Ok(Some(Notifier { default, tenants, console_url: cfg.console_url.clone(), tx }))
    }

    /// Queues the notification of `hold` (dropped and counted when the queue is full).
    pub fn hold_created(&self, hold: &Hold) {
        let Some(hook) = self.tenants.get(&hold.tenant).or(self.default.as_ref()) else { return };
        let body = self.body(hold);
        match self.tx.try_send(Job { hook: hook.clone(), body }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                METRICS.holds_notify.with_label_values(&["dropped"]).inc();
                tracing::warn!(hold = %hold.id, "hold notification dropped: the queue is full");
            }
        }
    }

    fn body(&self, h: &Hold) -> Vec<u8> {
        let mut v = json!({
            "event": "hold.created",
            "hold_id": h.id,
            "tenant": h.tenant,
            "sub": h.sub,
            "agent": h.view.agent,
            "tool_id": h.tool_id,
            "server": h.view.server,
            "provider": h.view.provider,
            "rules": h.view.rules,
            "risk_tags": h.view.risk_tags,
            "needs_approval": h.needs_approval,
            "expires_at": h.expires_at,
        });
        if !self.console_url.is_empty() {
            v["console_url"] = json!(self.console_url);
        }
        v.to_string().into_bytes()
    }
}

fn read_key(key: &str, w: &WebhookConfig) -> Result<Vec<u8>, String> {
    let secret = if !w.secret_file.is_empty() {
        std::fs::read_to_string(&w.secret_file).map_err(|e| format!("{key}.secret_file: {}: {e}", w.secret_file))?
    } else {
        std::env::var(&w.secret_env).map_err(|_| format!("{key}.secret_env: variable {} is not set", w.secret_env))?
    };
    let secret = secret.trim();
    if secret.len() < MIN_KEY_BYTES {
        return Err(format!("{key}: the webhook key must be at least {MIN_KEY_BYTES} bytes"));
    }
    Ok(secret.as_bytes().to_vec())
}

/// The sending thread: one POST per queued notification until the notifier is dropped.
fn run(rx: Receiver<Job>, timeout: Duration) {
    // No redirects: the notification goes to the configured URL or nowhere.
    let agent =
        crate::upstream::tls::ureq_agent_config().timeout_global(Some(timeout)).max_redirects(0).build().new_agent();
    while let Ok(job) = rx.recv() {
        let ts = chrono::Utc::now().timestamp().to_string();
        let sig = signature(&job.hook.key, &ts, &job.body);
        let sent = agent
            .post(&job.hook.url)
            .header("content-type", "application/json")
            .header("x-fastmcp-timestamp", &ts)
            .header("x-fastmcp-signature", &sig)
            .send(&job.body[..]);
        match sent {
            Ok(_) => METRICS.holds_notify.with_label_values(&["sent"]).inc(),
            Err(e) => {
                METRICS.holds_notify.with_label_values(&["failed"]).inc();
                tracing::warn!(url = %job.hook.url, error = %e, "hold notification failed");
            }
        }
    }
}

/// `sha256=<hex HMAC-SHA256(key, "<ts>.<body>")>`.
pub fn signature(key: &[u8], ts: &str, body: &[u8]) -> String {
    let mut msg = Vec::with_capacity(ts.len() + 1 + body.len());
    msg.extend_from_slice(ts.as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    format!("sha256={}", hex::encode(hmac_sha256(key, &msg)))
}

/// HMAC-SHA256 (RFC 2104), aws-lc's (the same library as every other digest here).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let tag = aws_lc_rs::hmac::sign(&aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key), msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test cases 2 and 6 (a key longer than the block).
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(hex::encode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let mac = hmac_sha256(&[0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First");
        assert_eq!(hex::encode(mac), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
        assert!(signature(b"k", "1", b"{}").starts_with("sha256="));
    }
}
