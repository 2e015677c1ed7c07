//! The approvals console's settings (`admin.console`) and hold notifications
//! (`holds.notify`), with their validation. Secret files and variables are only named here;
//! `holds::notify` reads them at startup.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;

/// The approvals console (`/admin/ui/`) and its live hold stream (`/admin/holds/stream`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Live hold streams open at once, over every operator; one more is refused with 503.
    #[serde(default = "default_max_streams")]
    pub max_streams: usize,
    /// How often (ms) a hold stream re-lists the state store. Holds made or decided on this
    /// instance show at once; with Redis state, ones made on other instances show within
    /// this interval.
    #[serde(default = "default_relist_ms")]
    pub relist_ms: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { max_streams: default_max_streams(), relist_ms: default_relist_ms() }
    }
}

fn default_max_streams() -> usize {
    16
}
fn default_relist_ms() -> u64 {
    2000
}

/// One webhook that is told when a hold is created (JSON body, HMAC-SHA256 signed).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://` or `https://` URL the notification is POSTed to (operator-configured only:
    /// nothing a caller sends chooses a host). Empty: no webhook.
    #[serde(default)]
    pub url: String,
    /// File holding the HMAC key (surrounding whitespace trimmed, at least 16 bytes), read
    /// at startup.
    #[serde(default)]
    pub secret_file: String,
    /// Name of an environment variable holding the HMAC key instead (at least 16 bytes).
    #[serde(default)]
    pub secret_env: String,
}

/// Notifications of new holds, so a chat bot can link to the console. Sent off the request
/// path from a bounded queue: a full queue or a failing webhook never delays or fails a call
/// (counted in `fastmcp_holds_notify_total{result}`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HoldsNotifyConfig {
    /// The webhook of every tenant without its own: its URL (`http://` or `https://`,
    /// operator-configured only; empty: none).
    #[serde(default)]
    pub url: String,
    /// The default webhook's HMAC key file (trimmed, at least 16 bytes), read at startup.
    #[serde(default)]
    pub secret_file: String,
    /// Or the environment variable holding the default webhook's HMAC key.
    #[serde(default)]
    pub secret_env: String,
    /// Per-tenant webhooks, replacing the default for that tenant.
    #[serde(default)]
    pub tenants: BTreeMap<String, WebhookConfig>,
    /// Notifications waiting to be sent; past it new ones are dropped (and counted).
    #[serde(default = "default_notify_queue")]
    pub queue: usize,
    /// Timeout of one webhook POST, milliseconds.
    #[serde(default = "default_notify_timeout_ms")]
    pub timeout_ms: u64,
    /// The console's address put into each notification as `console_url` (e.g.
    /// `https://admin.internal:9901/admin/ui/`). Empty: left out.
    #[serde(default)]
    pub console_url: String,
}

impl Default for HoldsNotifyConfig {
    fn default() -> Self {
        HoldsNotifyConfig {
            url: String::new(),
            secret_file: String::new(),
            secret_env: String::new(),
            tenants: BTreeMap::new(),
            queue: default_notify_queue(),
            timeout_ms: default_notify_timeout_ms(),
            console_url: String::new(),
        }
    }
}

fn default_notify_queue() -> usize {
    256
}
fn default_notify_timeout_ms() -> u64 {
    3000
}

impl HoldsNotifyConfig {
    /// The default webhook (`url` empty: none).
    pub fn default_hook(&self) -> WebhookConfig {
        WebhookConfig {
            url: self.url.clone(),
            secret_file: self.secret_file.clone(),
            secret_env: self.secret_env.clone(),
        }
    }

    /// Is any webhook configured?
    pub fn enabled(&self) -> bool {
        !self.url.is_empty() || self.tenants.values().any(|w| !w.url.is_empty())
    }
}

/// `holds.notify`: every configured webhook has an http(s) URL and exactly one secret
/// source (an unsigned notification is never sent).
pub fn validate_notify(n: &HoldsNotifyConfig) -> Result<(), ConfigError> {
    let default = n.default_hook();
    let hooks = std::iter::once(("holds.notify".to_string(), &default))
        .chain(n.tenants.iter().map(|(t, w)| (format!("holds.notify.tenants.{t}"), w)));
    for (key, w) in hooks {
        if w.url.is_empty() {
            if !w.secret_file.is_empty() || !w.secret_env.is_empty() {
                return Err(ConfigError::new(format!("{key}.url"), "a secret is set but no url"));
            }
            continue;
        }
        let scheme_ok = ["http://", "https://"].iter().any(|s| w.url.starts_with(s) && w.url.len() > s.len());
        if !scheme_ok || w.url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new(format!("{key}.url"), "must be an http:// or https:// URL"));
        }
        if w.secret_file.is_empty() == w.secret_env.is_empty() {
            return Err(ConfigError::new(
                format!("{key}.secret_file"),
                "a webhook needs exactly one of secret_file or secret_env (notifications are always signed)",
            ));
        }
    }
    if n.enabled() && n.queue == 0 {
        return Err(ConfigError::new("holds.notify.queue", "must be at least 1"));
    }
    Ok(())
}

/// `admin.console`: a stream needs a positive re-list interval.
pub fn validate_console(c: &ConsoleConfig) -> Result<(), ConfigError> {
    if c.relist_ms < 100 {
        return Err(ConfigError::new("admin.console.relist_ms", "must be at least 100"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(url: &str, file: &str, env: &str) -> WebhookConfig {
        WebhookConfig { url: url.into(), secret_file: file.into(), secret_env: env.into() }
    }

    #[test]
    fn webhooks_must_be_signed_http_urls() {
        let mut n = HoldsNotifyConfig::default();
        assert!(validate_notify(&n).is_ok() && !n.enabled());
        (n.url, n.secret_env) = ("https://hooks.example/x".into(), "HOOK_KEY".into());
        assert!(validate_notify(&n).is_ok() && n.enabled());
        n.tenants.insert("acme".into(), hook("http://127.0.0.1:9/acme", "/run/key", ""));
        assert!(validate_notify(&n).is_ok());
        n.tenants.insert("bad".into(), hook("http://127.0.0.1:9/acme", "", ""));
        assert_eq!(validate_notify(&n).unwrap_err().key, "holds.notify.tenants.bad.secret_file");
        for (bad, key) in [
            (hook("ftp://x", "", "K"), "holds.notify.url"),
            (hook("https://", "", "K"), "holds.notify.url"),
            (hook("https://x", "", ""), "holds.notify.secret_file"),
            (hook("https://x", "/f", "K"), "holds.notify.secret_file"),
            (hook("", "/f", ""), "holds.notify.url"),
        ] {
            let n = HoldsNotifyConfig {
                url: bad.url,
                secret_file: bad.secret_file,
                secret_env: bad.secret_env,
                ..Default::default()
            };
            assert_eq!(validate_notify(&n).unwrap_err().key, key);
        }
        assert!(validate_console(&ConsoleConfig { relist_ms: 10, ..Default::default() }).is_err());
    }
}
