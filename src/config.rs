//! Configuration: the embedded `conf/fastmcp.yaml`, an optional file merged over it, then
//! environment overrides (the seed's names and the generic `FASTMCP__SECTION__KEY`).
//!
//! These structs are the documentation of the configuration: every field says what it does.
//! A bad value fails at startup with [`ConfigError`], one line naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;

mod console;
mod listener;

pub use console::{ConsoleConfig, HoldsNotifyConfig, WebhookConfig};
use listener::validate_tls;
pub use listener::ListenerTls;

/// The default configuration, compiled in so `fastmcp serve` runs with no files.
pub const EMBEDDED_CONFIG: &str = include_str!("../conf/fastmcp.yaml");

/// A configuration problem: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("config error: {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self { key: key.into(), problem: problem.into() }
    }
}

/// A secret string (brokered credentials). Never printed by `Debug`.
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Gateway listener address (agents connect here). Env `FASTMCP_LISTEN`.
    pub listen: String,
    /// Admin listener (metrics, health, readiness). Env `FASTMCP_ADMIN_LISTEN`.
    pub admin_listen: String,
    /// Directory for dev keys and local state. Env `FASTMCP_DATA_DIR`.
    pub data_dir: PathBuf,
    /// Unix socket through which `serve --upgrade` takes over the listening sockets of the
    /// running gateway (pingora's zero-downtime upgrade, README "Starts and stops"). Empty:
    /// `upgrade.sock` in `data_dir`. Keep it where only the gateway's user can reach it:
    /// pingora makes the socket world-writable while the new process waits on it, and
    /// whoever connects then hands that process its listening sockets. At most 107 bytes
    /// (the Unix socket path limit). Env `FASTMCP__UPGRADE_SOCK`.
    #[serde(default)]
    pub upgrade_sock: String,
    /// tracing filter directive. Env `LOG_LEVEL`.
    pub log_level: String,
    /// Gateway worker threads; 0 means one per CPU.
    pub threads: usize,
    /// Seconds in-flight requests get to finish on SIGTERM, after the listeners stopped
    /// accepting (pingora waits this long even when nothing is in flight); runtimes then get
    /// up to `min(this, 10)` more before the process exits 0 (README "Starts and stops").
    pub grace_period_seconds: u64,
    /// TLS on the gateway listener (`listen`): rustls, certificate and key re-read when the
    /// files change (new connections get the new certificate; open ones keep theirs). Empty
    /// `cert_file`: plain HTTP.
    #[serde(default)]
    pub tls: ListenerTls,
    /// Require a client certificate on the gateway listener (mTLS). Env `REQUIRE_MTLS`. Needs
    /// `tls.cert_file`, `tls.key_file` and `tls.client_ca_file`: a handshake without a
    /// certificate, or with one that CA did not issue, is refused. The certificate's URI and
    /// DNS names are given to the policy as `input.subject.peer`.
    #[serde(default)]
    pub require_mtls: bool,
    /// The origin clients reach the gateway at (`https://gw.example.com`, or with a port;
    /// no path), e.g. behind a TLS-terminating load balancer. When set, the RFC 9728
    /// metadata (`resource`), the `WWW-Authenticate` challenge and a hold's `confirm_url`
    /// name it, and its host is an allowed `Host`. Empty: built per request from the
    /// listener's scheme and the `Host` header (or `X-Forwarded-*` from `trusted_proxies`),
    /// and `confirm_url` is a path.
    #[serde(default)]
    pub public_url: String,
    /// Proxies (CIDR blocks or single IPs, e.g. `10.0.0.0/8`, `127.0.0.1`) whose
    /// `X-Forwarded-Proto` and `X-Forwarded-Host` are believed when no `public_url` is set,
    /// judged on the TCP peer address. From any other peer those headers are ignored.
    /// Env `FASTMCP__TRUSTED_PROXIES` (a YAML list).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Host names the gateway answers to besides loopback names (DNS-rebinding protection):
    /// on a loopback listener any other `Host` gets 403; on other listeners, when set, only
    /// these. Env `FASTMCP__ALLOWED_HOSTS` (a YAML list).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// JWT authentication of agents.
    pub auth: AuthConfig,
    /// Who may use the admin listener (`admin_listen`) and from which hosts.
    #[serde(default)]
    pub admin: AdminConfig,
    /// Rego policy.
    pub policy: PolicyConfig,
    /// Per tenant + subject + tool rate limits.
    pub rate_limit: RateLimitConfig,
    /// Confirmation holds.
    pub holds: HoldsConfig,
    /// Hash-chained audit trail.
    pub audit: AuditConfig,
    /// Request size and upstream time limits.
    pub limits: LimitsConfig,
    /// Shared state backend.
    #[serde(default)]
    pub state: StateConfig,
    /// MCP servers behind `/mcp/{name}`.
    pub mcp: McpConfig,
    /// The REST tool API: manifests, idempotency, approvals.
    #[serde(default)]
    pub rest: RestConfig,
    /// Tool providers behind the REST API and their brokered credentials.
    #[serde(default)]
    pub providers: ProvidersConfig,
    /// Traces: W3C trace context is continued or started on every request and forwarded on
    /// every upstream call; spans are exported over OTLP/HTTP when `otel.endpoint` is set.
    #[serde(default)]
    pub otel: crate::otel::OtelConfig,
}

/// Access to the admin listener. Every route but `open_paths` needs a credential: the admin
/// bearer token, or a gateway JWT (verified exactly like an agent's) carrying one of `roles`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// File holding the admin bearer token (surrounding whitespace trimmed; at least 16
    /// bytes), read once at startup. Empty: no file.
    #[serde(default)]
    pub token_file: String,
    /// The admin bearer token itself (at least 16 bytes). Env `FASTMCP_ADMIN_TOKEN`; prefer
    /// `token_file`. Setting both is refused. Empty: no token (then only JWTs with `roles`
    /// get in; with `auth.enabled=false` too, no one does).
    #[serde(default)]
    pub token: Secret,
    /// JWT roles that may use the admin API (platform-wide: every tenant's holds).
    #[serde(default = "default_admin_roles")]
    pub roles: Vec<String>,
    /// JWT roles of tenant approvers: they may use the approvals console and its routes
    /// (`/admin/session`, `/admin/holds`, `/admin/holds/stream`, approve/deny, the audit
    /// stream) for holds and records of their own token's tenant only; every other admin
    /// route answers them 403. Empty (default): only `roles` and the admin token get in.
    #[serde(default)]
    pub approver_roles: Vec<String>,
    /// The approvals console and its live hold stream.
    #[serde(default)]
    pub console: ConsoleConfig,
    /// Paths served without a credential (exact match). Only the read-only status routes
    /// may be listed: `/health`, `/ready`, `/metrics`, `/admin/mcp/servers`.
    #[serde(default = "default_admin_open_paths")]
    pub open_paths: Vec<String>,
    /// Host names the admin listener answers besides loopback names (DNS-rebinding
    /// protection, as `allowed_hosts` for the gateway listener): on a loopback listener any
    /// other `Host` gets 403; on other listeners, when set, only these.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// TLS on the admin listener, as `tls` for the gateway listener (its own files; point
    /// both at the same ones to share a certificate). Empty `cert_file`: plain HTTP.
    #[serde(default)]
    pub tls: ListenerTls,
    /// Require a client certificate issued by `admin.tls.client_ca_file` on the admin
    /// listener. The certificate only opens the connection: every admin route still needs
    /// the admin token or an admin JWT.
    #[serde(default)]
    pub require_mtls: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token_file: String::new(),
            token: Secret::default(),
            roles: default_admin_roles(),
            approver_roles: vec![],
            console: ConsoleConfig::default(),
            open_paths: default_admin_open_paths(),
            allowed_hosts: vec![],
            tls: ListenerTls::default(),
            require_mtls: false,
        }
    }
}

/// The routes `admin.open_paths` may list: read-only status, nothing that shows holds or acts.
pub const ADMIN_OPENABLE_PATHS: &[&str] = &["/health", "/ready", "/metrics", "/admin/mcp/servers"];

/// The shortest admin bearer token accepted (bytes).
pub const ADMIN_TOKEN_MIN_BYTES: usize = 16;

fn default_admin_roles() -> Vec<String> {
    vec!["platform-admin".into()]
}
fn default_admin_open_paths() -> Vec<String> {
    vec!["/health".into(), "/ready".into(), "/metrics".into()]
}

/// The REST tool API (DESIGN §4).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// Manifest store. Env `SQLITE_URL`: `sqlite:///abs.db`, `sqlite://rel.db` (under the
    /// data dir), `sqlite::memory:` or a path.
    #[serde(default = "default_sqlite_url")]
    pub sqlite_url: String,
    /// Seconds an `Idempotency-Key` record is kept (replays within it get the stored answer).
    #[serde(default = "default_idempotency_ttl")]
    pub idempotency_ttl_seconds: u64,
    /// Bytes all `Idempotency-Key` records may take together (answers plus per-record
    /// overhead). Past it the oldest stored answers are dropped first; the record stays, so a
    /// replay is told the answer is gone (409) and the call never runs twice.
    #[serde(default = "default_idempotency_max_bytes")]
    pub idempotency_max_bytes: usize,
    /// Bytes one caller (tenant + subject) may take in the idempotency store: its own oldest
    /// answers are dropped first, so no caller can push out another's.
    #[serde(default = "default_idempotency_max_bytes_per_subject")]
    pub idempotency_max_bytes_per_subject: usize,
    /// An answer larger than this is not stored; a replay of its key gets 409 (the call ran
    /// once and is not run again; a new key runs it again).
    #[serde(default = "default_idempotency_max_answer_bytes")]
    pub idempotency_max_answer_bytes: usize,
    /// Approver mode: roles that may confirm someone else's held call. Empty turns it off.
    #[serde(default)]
    pub approver_roles: Vec<String>,
    /// In approver mode, holds on tools with any of these safety tags need an approver (or
    /// `POST /admin/holds/{id}/approve`) before the caller's own confirm runs them.
    #[serde(default = "default_approval_tags")]
    pub approval_tags: Vec<String>,
}

impl Default for RestConfig {
    fn default() -> Self {
        RestConfig {
            sqlite_url: default_sqlite_url(),
            idempotency_ttl_seconds: default_idempotency_ttl(),
            idempotency_max_bytes: default_idempotency_max_bytes(),
            idempotency_max_bytes_per_subject: default_idempotency_max_bytes_per_subject(),
            idempotency_max_answer_bytes: default_idempotency_max_answer_bytes(),
            approver_roles: vec![],
            approval_tags: default_approval_tags(),
        }
    }
}

fn default_sqlite_url() -> String {
    "sqlite://fastmcp.db".into()
}
fn default_idempotency_ttl() -> u64 {
    86_400
}
fn default_idempotency_max_bytes() -> usize {
    64 << 20
}
fn default_idempotency_max_bytes_per_subject() -> usize {
    8 << 20
}
fn default_idempotency_max_answer_bytes() -> usize {
    1 << 20
}
fn default_approval_tags() -> Vec<String> {
    vec!["financial".into()]
}

/// Providers behind the REST API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersConfig {
    /// The in-process SQLite database provider.
    #[serde(default)]
    pub database: DatabaseProviderConfig,
    /// Pipedrive and Google Ads endpoints (base URLs are overridable for tests), and the
    /// egress policy of manifest-described HTTP tools (`egress`).
    #[serde(default)]
    pub http: crate::providers::http::HttpProvidersConfig,
    /// Brokered credentials by provider id (`pipedrive`, `ads`, a generic tool's provider).
    /// Env `PIPEDRIVE_API_TOKEN` sets `pipedrive` to a static secret. Each is bound to its
    /// `allowed_urls` (default: the built-in provider's base URL; nowhere for other ids).
    #[serde(default)]
    pub credentials: BTreeMap<String, crate::broker::CredentialConfig>,
    /// Refresh a cached provider token this many seconds before it expires.
    #[serde(default = "default_refresh_margin")]
    pub token_refresh_margin_seconds: u64,
}

fn default_refresh_margin() -> u64 {
    60
}

/// The `database:*` tools' SQLite file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseProviderConfig {
    /// Database file. Env `DATABASE_PATH`. Empty: `demo.db` in the data dir (seeded with
    /// sample tables on first use).
    #[serde(default)]
    pub path: String,
    /// Rows returned at most (`truncated: true` beyond). Env `DATABASE_MAX_ROWS`.
    #[serde(default = "default_max_rows")]
    pub max_rows: usize,
    /// Bytes of result rows (as JSON) returned at most: rows past it are left out and
    /// `truncated: true` is set, as for `max_rows`, so a few huge rows cannot make a huge answer.
    #[serde(default = "default_max_result_bytes")]
    pub max_result_bytes: usize,
    /// A statement running longer is stopped (504).
    #[serde(default = "default_query_timeout_ms")]
    pub query_timeout_ms: u64,
}

impl Default for DatabaseProviderConfig {
    fn default() -> Self {
        DatabaseProviderConfig {
            path: String::new(),
            max_rows: default_max_rows(),
            max_result_bytes: default_max_result_bytes(),
            query_timeout_ms: default_query_timeout_ms(),
        }
    }
}

fn default_max_rows() -> usize {
    1000
}
fn default_max_result_bytes() -> usize {
    4 << 20
}
fn default_query_timeout_ms() -> u64 {
    5000
}

fn default_jwks_refresh_seconds() -> u64 {
    300
}
fn default_jwks_max_age_min_seconds() -> u64 {
    30
}
fn default_jwks_max_age_max_seconds() -> u64 {
    300
}

/// JWT verification settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `false` treats every caller as anonymous. For benchmarks only; logged loudly.
    pub enabled: bool,
    /// Required `iss`. Env `JWT_ISSUER`.
    pub issuer: String,
    /// Required `aud`. Env `JWT_AUDIENCE`.
    pub audience: String,
    /// Algorithm of the dev key and of JWKS keys without `alg`: RS256 or ES256. Env `JWT_ALG`.
    pub algorithm: String,
    /// JWKS file, re-read every `jwks_refresh_seconds`. Env `JWKS_FILE`.
    pub jwks_file: String,
    /// JWKS URL, refetched every `jwks_refresh_seconds` and on an unknown kid. Env `JWKS_URL`.
    pub jwks_url: String,
    /// Minimum seconds between refetches caused by unknown kids.
    pub jwks_refresh_min_interval_seconds: u64,
    /// Seconds between background reloads of the JWKS (URL or file): a key removed from the
    /// JWKS stops verifying — cached tokens included — within this long. A failed reload keeps
    /// the current keys and is retried sooner (1 s, doubling, up to this). 1..=86400.
    #[serde(default = "default_jwks_refresh_seconds")]
    pub jwks_refresh_seconds: u64,
    /// Lower bound on a JWKS server's `Cache-Control: max-age` (and `no-cache`/`no-store`,
    /// which count as 0), so the server cannot make the gateway fetch in a loop. At least 1.
    #[serde(default = "default_jwks_max_age_min_seconds")]
    pub jwks_max_age_min_seconds: u64,
    /// Upper bound on a JWKS server's `Cache-Control: max-age`, so the server cannot stall
    /// refreshes (and with it key revocation). At least `jwks_max_age_min_seconds`, at most
    /// 86400. The default equals the default refresh interval: `max-age` can then only make
    /// refreshes more frequent.
    #[serde(default = "default_jwks_max_age_max_seconds")]
    pub jwks_max_age_max_seconds: u64,
    /// Allowed clock skew for `exp`, `nbf` and `iat` (a token issued further in the future is
    /// refused), seconds.
    pub leeway_seconds: u64,
    /// Tokens longer than this many bytes are refused unparsed.
    pub max_token_bytes: usize,
    /// Verified tokens remembered until their `exp`, and only while the key that verified
    /// them is in the current key set.
    pub cache_entries: usize,
    /// Authorization servers advertised in RFC 9728 metadata. Empty: the issuer when it is an
    /// HTTPS URL and a JWKS is configured; none in dev mode (dev keys sign the tokens, there
    /// is no authorization server to send an OAuth client to).
    pub authorization_servers: Vec<String>,
    /// Scopes advertised in RFC 9728 metadata.
    pub scopes_supported: Vec<String>,
}

/// Where the policy comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `false` allows every call. For benchmarks only; logged loudly.
    pub enabled: bool,
    /// Seed-format roles and rules. Env `FASTMCP_POLICIES`. Missing path: embedded copy.
    pub policies_file: PathBuf,
    /// Directory of `*.rego` files. Env `FASTMCP_REGO_DIR`. Missing path: embedded copy.
    pub rego_dir: PathBuf,
    /// How often (milliseconds) the files are checked for changes; 0 turns watching off
    /// (`POST /admin/policy/reload` still works).
    pub watch_interval_ms: u64,
    /// A candidate bundle directory (`policies.yml` and/or `*.rego`) loaded at startup as the
    /// shadow policy: compiled and tested like a reload, evaluated beside the live policy on
    /// every decision, never served until `POST /admin/policy/shadow/promote`. A broken
    /// candidate is logged and not loaded (the gateway still starts). Unset: no shadow.
    #[serde(default)]
    pub shadow_dir: Option<PathBuf>,
    /// Shadow evaluations waiting for the shadow thread; past this, new ones are dropped
    /// (counted in `fastmcp_policy_shadow_dropped_total`), never waited for.
    #[serde(default = "default_shadow_queue")]
    pub shadow_queue: usize,
    /// How many differing decisions `GET /admin/policy/shadow/diff` keeps (the first ones).
    #[serde(default = "default_shadow_keep")]
    pub shadow_keep_differences: usize,
    /// Largest bundle `POST /admin/policy/shadow` accepts, in bytes (413 above).
    #[serde(default = "default_shadow_max_bundle_bytes")]
    pub shadow_max_bundle_bytes: usize,
}

fn default_shadow_queue() -> usize {
    1024
}

fn default_shadow_keep() -> usize {
    100
}

fn default_shadow_max_bundle_bytes() -> usize {
    1 << 20
}

/// Token-bucket rate limiting, applied after policy allows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// `false` disables rate limiting.
    pub enabled: bool,
    /// Sustained calls per second. Env `RATE_LIMIT_DEFAULT_RPS`.
    pub default_rps: f64,
    /// Bucket capacity. Env `RATE_BUCKET_BURST`.
    pub burst: u64,
    /// Sustained rate of protocol plumbing (`initialize`, `ping`, `tools/list`,
    /// notifications, the GET stream, …) per tenant + subject + server + method: generous,
    /// since clients send several per session, but bounded so no caller floods a server.
    #[serde(default = "default_plumbing_rps")]
    pub plumbing_rps: f64,
    /// Bucket capacity for protocol plumbing.
    #[serde(default = "default_plumbing_burst")]
    pub plumbing_burst: u64,
}

fn default_plumbing_rps() -> f64 {
    50.0
}
fn default_plumbing_burst() -> u64 {
    200
}

/// Confirmation holds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldsConfig {
    /// Action token lifetime, seconds. Env `CONFIRM_TTL_SEC`.
    pub ttl_seconds: u64,
    /// Random bytes per action token, at least 24. Env `ACTION_TOKEN_BYTES`.
    pub token_bytes: usize,
    /// Largest input (canonical JSON bytes) a hold keeps for its confirmation; a call whose
    /// input is larger is refused with 413 when it would be held (nothing is held).
    #[serde(default = "default_hold_max_input_bytes")]
    pub max_input_bytes: usize,
    /// Bytes the pending holds of one caller (tenant + subject) may take, inputs included;
    /// a hold past it is refused with 413 (the caller's other holds stay pending).
    #[serde(default = "default_hold_max_bytes_per_subject")]
    pub max_bytes_per_subject: usize,
    /// Bytes all pending holds may take together; a hold past it is refused with 413.
    #[serde(default = "default_hold_max_bytes_total")]
    pub max_bytes_total: usize,
    /// Webhooks told when a hold is created (per tenant, or a default).
    #[serde(default)]
    pub notify: HoldsNotifyConfig,
}

fn default_hold_max_input_bytes() -> usize {
    256 << 10
}
fn default_hold_max_bytes_per_subject() -> usize {
    4 << 20
}
fn default_hold_max_bytes_total() -> usize {
    256 << 20
}

/// Audit trail.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Directory of `audit-YYYYMMDD.jsonl`. Env `AUDIT_WORM_DIR`.
    pub dir: PathBuf,
    /// fsync a write-class call's record before answering it.
    pub durable: bool,
    /// Minimum microseconds between two audit fsyncs (group commit): under load, records that
    /// arrive meanwhile share one fsync, at the cost of up to this much added latency.
    pub group_commit_us: u64,
    /// Instance name in records and chain file names (`audit-<instance>-YYYYMMDD.jsonl`);
    /// empty means the host name. Instances sharing a directory must have distinct names.
    pub instance: String,
    /// What an admitted read-only call does when its record cannot be written or synced:
    /// `fail_closed` (503, the default: nothing happens unrecorded) or `continue` (let
    /// through, counted in `fastmcp_audit_unrecorded_total`). Write-class calls are always
    /// refused.
    #[serde(default)]
    pub on_error: crate::audit::OnError,
    /// Signed checkpoints (truncation and rewrite evidence).
    #[serde(default)]
    pub checkpoint: AuditCheckpointConfig,
    /// The live stream `GET /admin/audit/stream`.
    #[serde(default)]
    pub stream: AuditStreamConfig,
    /// Keep the SQLite index `<dir>/index.sqlite` up to date (for `fastmcp audit query`).
    #[serde(default = "default_true")]
    pub index: bool,
    /// The Redis Stream sink, used when `REDIS_URL` is set.
    #[serde(default)]
    pub redis: AuditRedisConfig,
    /// Also print every record to stdout as a JSON line (for log shippers).
    #[serde(default)]
    pub stdout: bool,
    /// Archive or delete this instance's daily files older than this many days (0: keep
    /// all), once a signed checkpoint covers them. Needs `checkpoint.enabled`.
    #[serde(default)]
    pub retention_days: u32,
    /// `archive` (gzip beside the chain, still verified) or `delete`.
    #[serde(default)]
    pub retention_action: crate::audit::retention::RetentionAction,
}

/// Signed audit checkpoints.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditCheckpointConfig {
    /// Sign checkpoints.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A checkpoint after this many records…
    #[serde(default = "default_checkpoint_records")]
    pub every_records: u64,
    /// …or this many seconds after the last one, when records came meanwhile.
    #[serde(default = "default_checkpoint_seconds")]
    pub every_seconds: u64,
    /// The Ed25519 signing key (PKCS#8 DER), created with mode 0600 when absent. Empty:
    /// `<data_dir>/audit-checkpoint.key`. Instances may share one key or have their own.
    #[serde(default)]
    pub key_file: String,
    /// Directory of `checkpoints-<instance>.jsonl`; empty: the audit directory. Put it on
    /// another disk or host mount to keep evidence out of reach of whoever can edit the chain.
    #[serde(default)]
    pub dir: String,
}

impl Default for AuditCheckpointConfig {
    fn default() -> Self {
        AuditCheckpointConfig {
            enabled: true,
            every_records: default_checkpoint_records(),
            every_seconds: default_checkpoint_seconds(),
            key_file: String::new(),
            dir: String::new(),
        }
    }
}

/// The live audit stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditStreamConfig {
    /// Records kept in memory for `Last-Event-ID` resumption (older ones are read from the
    /// files).
    #[serde(default = "default_stream_buffer")]
    pub buffer: usize,
    /// Records a consumer may fall behind before it is dropped (it can resume).
    #[serde(default = "default_stream_queue")]
    pub queue: usize,
}

impl Default for AuditStreamConfig {
    fn default() -> Self {
        AuditStreamConfig { buffer: default_stream_buffer(), queue: default_stream_queue() }
    }
}

/// The audit Redis Stream sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRedisConfig {
    /// Write records to the stream when `REDIS_URL` is set.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The stream key; `<key>:pos` holds each instance's last added seq (keep a `{…}` hash
    /// tag for Redis Cluster).
    #[serde(default = "default_audit_stream_key")]
    pub stream_key: String,
    /// `XADD … MAXLEN ~` this many entries.
    #[serde(default = "default_audit_stream_maxlen")]
    pub maxlen: u64,
    /// Connect, read and write timeout of the sink's connection (milliseconds).
    #[serde(default = "default_audit_redis_timeout")]
    pub timeout_ms: u64,
}

impl Default for AuditRedisConfig {
    fn default() -> Self {
        AuditRedisConfig {
            enabled: true,
            stream_key: default_audit_stream_key(),
            maxlen: default_audit_stream_maxlen(),
            timeout_ms: default_audit_redis_timeout(),
        }
    }
}

fn default_checkpoint_records() -> u64 {
    1000
}
fn default_checkpoint_seconds() -> u64 {
    60
}
fn default_stream_buffer() -> usize {
    10_000
}
fn default_stream_queue() -> usize {
    1024
}
fn default_audit_stream_key() -> String {
    "{fastmcp}:audit".into()
}
fn default_audit_stream_maxlen() -> u64 {
    1_000_000
}
fn default_audit_redis_timeout() -> u64 {
    2000
}

/// Size and time limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Upstream connect timeout, seconds.
    pub connect_timeout_seconds: u64,
    /// Upstream read timeout (between response bytes), seconds.
    pub upstream_timeout_seconds: u64,
}

/// State backend selection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// Redis for state shared by several gateway instances (rate limits, holds, idempotency,
    /// MCP sessions and their pending elicitations, the MRTR sealing key). Env `REDIS_URL`.
    /// `redis://[user:password@]host:port[/db]`, or `rediss://…` for TLS (verified against the
    /// same trusted roots as every upstream: `SSL_CERT_FILE` / `SSL_CERT_DIR`, else the
    /// platform store). Empty (default): everything stays in this process's memory.
    #[serde(default)]
    pub redis_url: Secret,
    /// How the Redis backend is reached and what happens when it is not.
    #[serde(default)]
    pub redis: RedisConfig,
}

/// The Redis backend (`state.redis`); used only when `state.redis_url` is set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Every Redis call is bounded by this (milliseconds): a Redis that stops answering costs
    /// a request at most this long before the fail mode applies.
    #[serde(default = "default_redis_timeout_ms")]
    pub timeout_ms: u64,
    /// What a request gets when Redis cannot answer, for every kind of state without its own
    /// setting below: `fail_closed` (default) — 503 UNAVAILABLE, nothing forwarded;
    /// `fail_open` — this instance's memory serves until Redis is back (limits become per
    /// instance, holds and sessions are only known to the instance that made them, an
    /// idempotent retry on another instance may run again), counted in
    /// `fastmcp_state_fallback_total{kind}`.
    #[serde(default)]
    pub on_error: OnError,
    /// `on_error` for rate limits (empty: `on_error`). `fail_open` keeps calls flowing at a
    /// per-instance limit while Redis is away.
    #[serde(default)]
    pub limits_on_error: Option<OnError>,
    /// `on_error` for confirmation holds (empty: `on_error`).
    #[serde(default)]
    pub holds_on_error: Option<OnError>,
    /// `on_error` for idempotency records (empty: `on_error`).
    #[serde(default)]
    pub idempotency_on_error: Option<OnError>,
    /// `on_error` for MCP sessions and pending elicitations (empty: `on_error`).
    #[serde(default)]
    pub sessions_on_error: Option<OnError>,
    /// `REDIS_URL` names one node of a Redis Cluster (the others are discovered from it).
    #[serde(default)]
    pub cluster: bool,
    /// More cluster seed nodes (`host:port`), tried besides the `REDIS_URL` node; they share
    /// its scheme and credentials. Implies `cluster`.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// How often (milliseconds) the backend pings Redis: it keeps `/ready` current and
    /// reconnects on its own after an outage.
    #[serde(default = "default_redis_health_ms")]
    pub health_interval_ms: u64,
    /// How long an idempotency claim stays in flight (seconds) when its call never completes
    /// — the instance running it died. Past it a retry with the same key runs the call again
    /// (whether the first run happened is unknown); before it the retry gets 409.
    #[serde(default = "default_idempotency_lease")]
    pub idempotency_lease_seconds: u64,
}

fn default_idempotency_lease() -> u64 {
    300
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            timeout_ms: default_redis_timeout_ms(),
            on_error: OnError::default(),
            limits_on_error: None,
            holds_on_error: None,
            idempotency_on_error: None,
            sessions_on_error: None,
            cluster: false,
            nodes: Vec::new(),
            health_interval_ms: default_redis_health_ms(),
            idempotency_lease_seconds: default_idempotency_lease(),
        }
    }
}

fn default_redis_timeout_ms() -> u64 {
    250
}

fn default_redis_health_ms() -> u64 {
    1000
}

/// See [`RedisConfig::on_error`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    #[default]
    FailClosed,
    FailOpen,
}

/// MCP servers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpConfig {
    /// Servers by name (lowercase; used in `/mcp/{name}`, `mcp:{name}:{tool}`, `mcp.{name}`).
    pub servers: BTreeMap<String, McpServerConfig>,
    /// Joins server and tool in the federated `/mcp` endpoint's tool names (`{server}__{tool}`).
    #[serde(default = "default_separator")]
    pub separator: String,
    /// Discovery attempts per server before it is marked down and retried in the background.
    /// Env `MCP_DISCOVERY_RETRIES`.
    #[serde(default = "default_discovery_retries")]
    pub discovery_retries: u32,
    /// First backoff between discovery attempts (doubles, capped at 30 s). Env `MCP_DISCOVERY_BACKOFF_MS`.
    #[serde(default = "default_discovery_backoff_ms")]
    pub discovery_backoff_ms: u64,
    /// Re-list every server's tools this often (seconds), besides `list_changed` notifications.
    #[serde(default = "default_refresh_interval")]
    pub refresh_interval_seconds: u64,
    /// Idle lifetime of a gateway session on the federated endpoint (2025-11-25 clients).
    #[serde(default = "default_session_ttl")]
    pub session_ttl_seconds: u64,
    /// Federated sessions one principal (tenant + subject) keeps at most: its
    /// `initialize` past it ends that principal's least recently used session, never
    /// another principal's.
    #[serde(default = "default_max_sessions_per_principal")]
    pub max_sessions_per_principal: usize,
    /// Federated sessions kept at most; past it (after idle ones are swept) `initialize` is
    /// refused with 503.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// How long a held call waits for the client's answer to an `elicitation/create` request.
    #[serde(default = "default_elicitation_timeout")]
    pub elicitation_timeout_seconds: u64,
    /// How long an upstream server's own request relayed to a federated client (sampling,
    /// elicitation, roots, ping) waits for the client's answer; past it the server gets a
    /// JSON-RPC error.
    #[serde(default = "default_relay_timeout")]
    pub relay_timeout_seconds: u64,
    /// Relayed server requests one federated session keeps waiting for answers at most; past
    /// it the session's oldest waiting request is answered upstream with an error.
    #[serde(default = "default_relay_max_pending")]
    pub relay_max_pending: usize,
    /// How an MCP door answers the refusal of one call (policy deny, spent or mismatched action
    /// token, per-call rate limit, argument validation): `jsonrpc` (default) — HTTP 200 with a
    /// JSON-RPC error whose `data` is the error shape, so every MCP SDK surfaces it and keeps
    /// its session; `http` — the error table's HTTP status (403, 409, 429, 422). Transport and
    /// authorization refusals (401, 403 `insufficient_scope` for a whole server, 400, 404
    /// session, 413) keep their HTTP status either way.
    #[serde(default)]
    pub refusal_status: RefusalStatus,
    /// AES-256-GCM key (base64, 32 bytes) sealing MRTR `requestState`. Instances behind one
    /// load balancer must share it. Empty: a random key per process (states do not survive a
    /// restart, which only costs the client a new confirmation).
    #[serde(default)]
    pub request_state_key: Secret,
    /// The replay window of the federated endpoint's SSE streams: events a 2025-11-25 client
    /// gets again when it reconnects with `Last-Event-ID`.
    #[serde(default)]
    pub replay: ReplayConfig,
}

/// How many SSE events the federated `/mcp` keeps for `Last-Event-ID` resumption. Past a
/// bound the session's own oldest events are dropped (never another session's); a client
/// resuming from before them gets a fresh stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// Events kept per session (0: none; every resumption starts a fresh stream).
    #[serde(default = "default_replay_events")]
    pub max_events_per_session: usize,
    /// Bytes of events kept per session; a larger event is delivered but not kept.
    #[serde(default = "default_replay_bytes")]
    pub max_bytes_per_session: usize,
    /// Bytes of events kept across all sessions.
    #[serde(default = "default_replay_total")]
    pub max_bytes_total: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            max_events_per_session: default_replay_events(),
            max_bytes_per_session: default_replay_bytes(),
            max_bytes_total: default_replay_total(),
        }
    }
}

fn default_replay_events() -> usize {
    64
}
fn default_replay_bytes() -> usize {
    1 << 20
}
fn default_replay_total() -> usize {
    64 << 20
}

/// See [`McpConfig::refusal_status`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefusalStatus {
    #[default]
    Jsonrpc,
    Http,
}

/// One upstream MCP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// Full MCP endpoint URL. Env `MCP_<NAME>_URL`; a URL without a path gets `/mcp`.
    /// Unused (may be empty) for the stdio transport.
    #[serde(default)]
    pub url: String,
    /// Trust the server's tool annotations as safety tags. Env `MCP_<NAME>_TRUSTED`.
    #[serde(default)]
    pub trusted: bool,
    /// Header carrying the brokered credential upstream. Env `MCP_<NAME>_HEADER`.
    #[serde(default = "default_credential_header")]
    pub header: String,
    /// The brokered credential. Env `MCP_<NAME>_TOKEN`. Empty: no credential is sent.
    #[serde(default)]
    pub token: Secret,
    /// Safety tags per tool name, overriding annotations.
    #[serde(default)]
    pub tool_tags: BTreeMap<String, Vec<String>>,
    /// Tenant owning this server's tools; `public` means every tenant.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// `http` (default) or `stdio` (a spawned command speaking newline-delimited JSON-RPC).
    /// Env `MCP_<NAME>_TRANSPORT`.
    #[serde(default = "default_transport")]
    pub transport: String,
    /// Command for the stdio transport. Env `MCP_<NAME>_COMMAND`.
    #[serde(default)]
    pub command: String,
    /// The whole environment of a stdio server: it starts with a cleared environment plus
    /// `PATH` (the gateway's, so the command resolves as written; listing `PATH` here
    /// replaces it) and exactly these variables — never the gateway's secrets. Env
    /// `MCP_<NAME>_ENV` as `KEY=VALUE,KEY2=VALUE2` (values cannot contain commas there; use
    /// this map for those).
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// Seconds a call to this server may take before 504 (default: `limits.upstream_timeout_seconds`).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// Discover this server's tools (for the federated `/mcp`, the catalog and trusted
    /// annotations). `false`: the server is only proxied at `/mcp/{name}`. Env `MCP_<NAME>_DISCOVER`.
    #[serde(default = "default_true")]
    pub discover: bool,
    /// Agent request headers forwarded to this server besides the built-in allow-list
    /// (content type, accept, `MCP-*`, trace context, user agent). Lowercase names; the
    /// agent's credentials and hop-by-hop headers can never be listed.
    #[serde(default)]
    pub forward_headers: Vec<String>,
    /// Write the gateway's own `Forwarded` / `X-Forwarded-For` / `X-Forwarded-Proto` on
    /// requests to this server (the agent's are never forwarded).
    #[serde(default)]
    pub forwarded: bool,
    /// Tool-definition pinning (rug-pull defence): `off` (default), `warn` or `enforce`.
    /// With it on, the first discovery pins every tool's fingerprint (trust on first use);
    /// afterwards a tool whose definition changed, or that appeared later, is unapproved
    /// until `POST /admin/mcp/servers/{name}/pins/{tool}/approve`: `enforce` hides it from
    /// `tools/list` on both MCP doors and refuses its calls (403), `warn` lets it through
    /// flagged in the audit record and `fastmcp_tool_pin_mismatch_total`. Env `MCP_<NAME>_PINNING`.
    #[serde(default)]
    pub pinning: PinMode,
}

/// How a server's tool definitions are held to their pins (`mcp.servers.<name>.pinning`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PinMode {
    /// No fingerprints are kept or checked.
    #[default]
    Off,
    /// Unapproved tools stay listed and callable; their calls are flagged and counted.
    Warn,
    /// Unapproved tools are hidden from `tools/list` and their calls refused.
    Enforce,
}

impl PinMode {
    /// The word used in config, audit records and the admin API.
    pub fn label(self) -> &'static str {
        match self {
            PinMode::Off => "off",
            PinMode::Warn => "warn",
            PinMode::Enforce => "enforce",
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_separator() -> String {
    "__".into()
}
fn default_discovery_retries() -> u32 {
    5
}
fn default_discovery_backoff_ms() -> u64 {
    500
}
fn default_refresh_interval() -> u64 {
    300
}
fn default_session_ttl() -> u64 {
    3600
}
fn default_max_sessions_per_principal() -> usize {
    64
}
fn default_max_sessions() -> usize {
    100_000
}
fn default_elicitation_timeout() -> u64 {
    120
}
fn default_relay_timeout() -> u64 {
    120
}
fn default_relay_max_pending() -> usize {
    16
}
fn default_credential_header() -> String {
    "authorization".into()
}
fn default_tenant() -> String {
    "public".into()
}
fn default_transport() -> String {
    "http".into()
}

/// Longest Unix socket path (`sun_path` holds 108 bytes with the terminating NUL).
const MAX_UNIX_SOCKET_PATH: usize = 107;

/// Environment variables with a fixed key, from the seed and DESIGN §3.
const NAMED_ENV: &[(&str, &str)] = &[
    ("FASTMCP_LISTEN", "listen"),
    ("FASTMCP_ADMIN_LISTEN", "admin_listen"),
    ("FASTMCP_ADMIN_TOKEN", "admin.token"),
    ("FASTMCP_DATA_DIR", "data_dir"),
    ("FASTMCP_POLICIES", "policy.policies_file"),
    ("FASTMCP_REGO_DIR", "policy.rego_dir"),
    ("LOG_LEVEL", "log_level"),
    ("JWT_ISSUER", "auth.issuer"),
    ("JWT_AUDIENCE", "auth.audience"),
    ("JWT_ALG", "auth.algorithm"),
    ("JWKS_URL", "auth.jwks_url"),
    ("JWKS_FILE", "auth.jwks_file"),
    ("REQUIRE_MTLS", "require_mtls"),
    ("CONFIRM_TTL_SEC", "holds.ttl_seconds"),
    ("ACTION_TOKEN_BYTES", "holds.token_bytes"),
    ("RATE_LIMIT_DEFAULT_RPS", "rate_limit.default_rps"),
    ("RATE_BUCKET_BURST", "rate_limit.burst"),
    ("REDIS_URL", "state.redis_url"),
    ("AUDIT_WORM_DIR", "audit.dir"),
    ("MCP_DISCOVERY_RETRIES", "mcp.discovery_retries"),
    ("SQLITE_URL", "rest.sqlite_url"),
    ("DATABASE_PATH", "providers.database.path"),
    ("DATABASE_MAX_ROWS", "providers.database.max_rows"),
    ("PIPEDRIVE_COMPANY_DOMAIN", "providers.http.pipedrive_company_domain"),
    ("PIPEDRIVE_API_TOKEN", "providers.credentials.pipedrive.secret"),
    ("MCP_DISCOVERY_BACKOFF_MS", "mcp.discovery_backoff_ms"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "otel.endpoint"),
    ("OTEL_SERVICE_NAME", "otel.service_name"),
];

/// Keys whose env value is always a string (never re-typed as a YAML number or bool).
const STRING_KEYS: &[&str] = &[
    "listen",
    "admin_listen",
    "data_dir",
    "upgrade_sock",
    "log_level",
    "issuer",
    "audience",
    "algorithm",
    "jwks_url",
    "jwks_file",
    "policies_file",
    "rego_dir",
    "redis_url",
    "dir",
    "instance",
    "url",
    "header",
    "token",
    "token_file",
    "command",
    "transport",
    "tenant",
    "separator",
    "request_state_key",
    "cert_file",
    "key_file",
    "client_ca_file",
    "public_url",
    "sqlite_url",
    "path",
    "secret",
    "pipedrive_base_url",
    "pipedrive_company_domain",
    "endpoint",
    "service_name",
    "google_ads_base_url",
    "google_ads_api_version",
    "google_ads_developer_token",
    "google_ads_login_customer_id",
    "google_ads_customer_id",
];

const MCP_SERVER_SUFFIXES: &[(&str, &str)] = &[
    ("_URL", "url"),
    ("_TRUSTED", "trusted"),
    ("_HEADER", "header"),
    ("_TOKEN", "token"),
    ("_TRANSPORT", "transport"),
    ("_COMMAND", "command"),
    ("_TENANT", "tenant"),
    ("_DISCOVER", "discover"),
    ("_PINNING", "pinning"),
];

impl Config {
    /// Load the embedded defaults, merge `file` over them, then apply `env`.
    pub fn load(file: Option<&Path>, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut tree: Yaml =
            serde_yaml_ng::from_str(EMBEDDED_CONFIG).map_err(|e| ConfigError::new("(embedded)", e.to_string()))?;
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError::new("--config", format!("{}: {e}", path.display())))?;
            let overlay: Yaml = serde_yaml_ng::from_str(&text)
                .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))?;
            if !overlay.is_null() {
                merge(&mut tree, overlay);
            }
        }
        let mut env: Vec<(String, String)> = env.into_iter().collect();
        env.sort();
        for (name, value) in &env {
            if let Some(key) = env_key(name) {
                set_path(&mut tree, &key, value).map_err(|problem| ConfigError::new(name.clone(), problem))?;
            } else if let Some(server) = stdio_env_server(name) {
                // `MCP_<NAME>_ENV=K=V,K2=V2`: each pair becomes `mcp.servers.<name>.env.<K>`,
                // always a string.
                for (k, v) in parse_env_list(value).map_err(|problem| ConfigError::new(name.clone(), problem))? {
                    let key = format!("mcp.servers.{server}.env.{k}");
                    set_value(&mut tree, &key, Yaml::String(v))
                        .map_err(|problem| ConfigError::new(name.clone(), problem))?;
                }
            }
            if name == "PIPEDRIVE_API_TOKEN" {
                // The seed's static Pipedrive token: a `static` broker credential.
                set_path(&mut tree, "providers.credentials.pipedrive.kind", "static")
                    .map_err(|problem| ConfigError::new(name.clone(), problem))?;
            }
        }
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::new(if key == "." { "(root)".into() } else { key }, e.inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The upgrade socket: `upgrade_sock`, else `upgrade.sock` in `data_dir`.
    pub fn upgrade_socket_path(&self) -> PathBuf {
        if self.upgrade_sock.is_empty() {
            self.data_dir.join("upgrade.sock")
        } else {
            PathBuf::from(&self.upgrade_sock)
        }
    }

    /// Load with the process environment.
    pub fn from_process(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load(file, std::env::vars())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        for (key, addr) in [("listen", &self.listen), ("admin_listen", &self.admin_listen)] {
            addr.parse::<SocketAddr>()
                .map_err(|_| ConfigError::new(key, format!("not a host:port address: {addr:?}")))?;
        }
        if self.upgrade_socket_path().as_os_str().len() > MAX_UNIX_SOCKET_PATH {
            return Err(ConfigError::new(
                "upgrade_sock",
                format!("{} is longer than {MAX_UNIX_SOCKET_PATH} bytes", self.upgrade_socket_path().display()),
            ));
        }
        validate_tls("tls", &self.tls, "require_mtls", self.require_mtls)?;
        validate_tls("admin.tls", &self.admin.tls, "admin.require_mtls", self.admin.require_mtls)?;
        if !self.public_url.is_empty() {
            crate::proxy::forwarded::parse_public_url(&self.public_url)
                .map_err(|p| ConfigError::new("public_url", p))?;
        }
        crate::proxy::forwarded::TrustedProxies::parse(&self.trusted_proxies)
            .map_err(|p| ConfigError::new("trusted_proxies", p))?;
        self.validate_admin()?;
        self.validate_redis()?;
        self.otel.validate()?;
        if !matches!(self.auth.algorithm.as_str(), "RS256" | "ES256") {
            return Err(ConfigError::new("auth.algorithm", "must be RS256 or ES256"));
        }
        if self.auth.max_token_bytes < 256 {
            return Err(ConfigError::new("auth.max_token_bytes", "must be at least 256"));
        }
        if self.auth.leeway_seconds > 600 {
            return Err(ConfigError::new("auth.leeway_seconds", "must be at most 600"));
        }
        if !(1..=86_400).contains(&self.auth.jwks_refresh_seconds) {
            return Err(ConfigError::new("auth.jwks_refresh_seconds", "must be between 1 and 86400"));
        }
        if self.auth.jwks_max_age_min_seconds == 0 {
            return Err(ConfigError::new("auth.jwks_max_age_min_seconds", "must be at least 1"));
        }
        if self.auth.jwks_max_age_max_seconds < self.auth.jwks_max_age_min_seconds
            || self.auth.jwks_max_age_max_seconds > 86_400
        {
            return Err(ConfigError::new(
                "auth.jwks_max_age_max_seconds",
                "must be at least auth.jwks_max_age_min_seconds and at most 86400",
            ));
        }
        if self.holds.token_bytes < 24 {
            return Err(ConfigError::new("holds.token_bytes", "must be at least 24"));
        }
        if self.holds.ttl_seconds == 0 {
            return Err(ConfigError::new("holds.ttl_seconds", "must be positive"));
        }
        self.validate_audit()?;
        if !(self.rate_limit.default_rps > 0.0 && self.rate_limit.default_rps.is_finite()) {
            return Err(ConfigError::new("rate_limit.default_rps", "must be a positive number"));
        }
        if self.rate_limit.burst == 0 {
            return Err(ConfigError::new("rate_limit.burst", "must be at least 1"));
        }
        if self.limits.max_body_bytes == 0 || self.limits.max_body_bytes > 64 << 20 {
            return Err(ConfigError::new("limits.max_body_bytes", "must be 1..=67108864"));
        }
        if self.limits.upstream_timeout_seconds == 0 || self.limits.connect_timeout_seconds == 0 {
            return Err(ConfigError::new("limits", "timeouts must be positive"));
        }
        for (id, c) in &self.providers.credentials {
            for url in c.allowed_urls().unwrap_or_default() {
                crate::upstream::Endpoint::provider_base(url.trim()).map_err(|e| {
                    ConfigError::new(format!("providers.credentials.{id}.allowed_urls"), format!("{url:?}: {e}"))
                })?;
            }
        }
        let egress = &self.providers.http.egress;
        crate::upstream::EgressPolicy::new(&egress.allow, egress.allow_public, &[])
            .map_err(|e| ConfigError::new("providers.http.egress.allow", e.to_string()))?;
        for (key, value) in [
            ("providers.database.max_result_bytes", self.providers.database.max_result_bytes),
            ("rest.idempotency_max_bytes", self.rest.idempotency_max_bytes),
            ("rest.idempotency_max_bytes_per_subject", self.rest.idempotency_max_bytes_per_subject),
            ("rest.idempotency_max_answer_bytes", self.rest.idempotency_max_answer_bytes),
            ("holds.max_input_bytes", self.holds.max_input_bytes),
            ("holds.max_bytes_per_subject", self.holds.max_bytes_per_subject),
            ("holds.max_bytes_total", self.holds.max_bytes_total),
            ("mcp.max_sessions", self.mcp.max_sessions),
            ("mcp.max_sessions_per_principal", self.mcp.max_sessions_per_principal),
            ("mcp.relay_max_pending", self.mcp.relay_max_pending),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.mcp.separator.is_empty() {
            return Err(ConfigError::new("mcp.separator", "must not be empty"));
        }
        for (name, server) in &self.mcp.servers {
            let key = format!("mcp.servers.{name}");
            if name.is_empty()
                || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(ConfigError::new(key, "server names are [a-z0-9_-]+"));
            }
            match server.transport.as_str() {
                "http" => {
                    crate::upstream::Endpoint::mcp(&server.url)
                        .map_err(|p| ConfigError::new(format!("{key}.url"), p.to_string()))?;
                }
                "stdio" if server.command.trim().is_empty() => {
                    return Err(ConfigError::new(format!("{key}.command"), "the stdio transport needs a command"));
                }
                "stdio" => {}
                _ => return Err(ConfigError::new(format!("{key}.transport"), "must be http or stdio")),
            }
            if server.pinning != PinMode::Off && !server.discover {
                // Pins are taken at discovery: without it nothing would ever be approved.
                return Err(ConfigError::new(
                    format!("{key}.pinning"),
                    "needs discover: true (pins are taken at discovery)",
                ));
            }

            for h in &server.forward_headers {
                let lower = h.to_ascii_lowercase();
                if http::HeaderName::from_bytes(lower.as_bytes()).is_err() || *h != lower {
                    return Err(ConfigError::new(
                        format!("{key}.forward_headers"),
                        format!("{h:?} is not a lowercase header name"),
                    ));
                }
                if crate::proxy::headers::NEVER_FORWARDED.contains(&lower.as_str())
                    || lower == server.header.to_ascii_lowercase()
                {
                    return Err(ConfigError::new(
                        format!("{key}.forward_headers"),
                        format!("{h:?} may never be forwarded"),
                    ));
                }
            }
            if !server.env.is_empty() && server.transport != "stdio" {
                return Err(ConfigError::new(format!("{key}.env"), "only the stdio transport takes an environment"));
            }
            for (name, value) in &server.env {
                if !is_env_name(name) {
                    return Err(ConfigError::new(format!("{key}.env"), format!("{name:?} is not a variable name")));
                }
                if value.0.contains('\0') {
                    return Err(ConfigError::new(format!("{key}.env.{name}"), "contains a NUL byte"));
                }
            }
            http::HeaderName::from_bytes(server.header.as_bytes())
                .map_err(|_| ConfigError::new(format!("{key}.header"), "not a header name"))?;
            if !server.token.0.is_empty() && http::HeaderValue::from_str(&server.token.0).is_err() {
                return Err(ConfigError::new(format!("{key}.token"), "not a valid header value"));
            }
        }
        Ok(())
    }
}

impl Config {
    fn validate_redis(&self) -> Result<(), ConfigError> {
        let url = &self.state.redis_url.0;
        if !(url.is_empty() || url.starts_with("redis://") || url.starts_with("rediss://")) {
            // The value may hold a password: never echoed.
            return Err(ConfigError::new("state.redis_url", "must start with redis:// or rediss://"));
        }
        if !(1..=60_000).contains(&self.state.redis.timeout_ms) {
            return Err(ConfigError::new("state.redis.timeout_ms", "must be between 1 and 60000"));
        }
        if !(50..=60_000).contains(&self.state.redis.health_interval_ms) {
            return Err(ConfigError::new("state.redis.health_interval_ms", "must be between 50 and 60000"));
        }
        Ok(())
    }

    fn validate_audit(&self) -> Result<(), ConfigError> {
        let a = &self.audit;
        if !a.instance.is_empty() && !crate::audit::files::valid_instance(&a.instance) {
            return Err(ConfigError::new("audit.instance", "1-64 of A-Z a-z 0-9 . _ - (it names the chain's files)"));
        }
        if a.checkpoint.every_records == 0 || a.checkpoint.every_seconds == 0 {
            return Err(ConfigError::new("audit.checkpoint", "every_records and every_seconds must be at least 1"));
        }
        if a.retention_days > 0 && !a.checkpoint.enabled {
            return Err(ConfigError::new(
                "audit.retention_days",
                "needs audit.checkpoint.enabled: files are only removed once a signed checkpoint covers them",
            ));
        }
        if a.stream.queue == 0 {
            return Err(ConfigError::new("audit.stream.queue", "must be at least 1"));
        }
        if a.redis.stream_key.is_empty() || a.redis.timeout_ms == 0 {
            return Err(ConfigError::new("audit.redis", "stream_key must be set and timeout_ms at least 1"));
        }
        Ok(())
    }

    fn validate_admin(&self) -> Result<(), ConfigError> {
        let a = &self.admin;
        if !a.token.0.is_empty() && !a.token_file.is_empty() {
            return Err(ConfigError::new(
                "admin.token",
                "set admin.token (FASTMCP_ADMIN_TOKEN) or admin.token_file, not both",
            ));
        }
        if !a.token.0.is_empty() {
            admin_token_problem(&a.token.0).map_or(Ok(()), |p| Err(ConfigError::new("admin.token", p)))?;
        }
        if let Some(p) = a.open_paths.iter().find(|p| !ADMIN_OPENABLE_PATHS.contains(&p.as_str())) {
            return Err(ConfigError::new(
                "admin.open_paths",
                format!("{p:?} cannot be opened; only {}", ADMIN_OPENABLE_PATHS.join(", ")),
            ));
        }
        if a.roles.iter().any(|r| r.trim().is_empty()) {
            return Err(ConfigError::new("admin.roles", "roles must not be empty strings"));
        }
        if a.approver_roles.iter().any(|r| r.trim().is_empty() || a.roles.contains(r)) {
            return Err(ConfigError::new(
                "admin.approver_roles",
                "roles must not be empty strings nor also platform-wide admin.roles",
            ));
        }
        console::validate_console(&a.console)?;
        console::validate_notify(&self.holds.notify)
    }
}

/// What is wrong with an admin bearer token, if anything (never echoes the token).
pub fn admin_token_problem(token: &str) -> Option<String> {
    if token.len() < ADMIN_TOKEN_MIN_BYTES {
        return Some(format!("the admin token must be at least {ADMIN_TOKEN_MIN_BYTES} bytes"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Some("the admin token must be visible ASCII without spaces".into());
    }
    None
}

/// A parsed upstream MCP endpoint: the one upstream [`Endpoint`](crate::upstream::Endpoint)
/// type, parsed with [`Endpoint::mcp`](crate::upstream::Endpoint::mcp) (no path → `/mcp`).
/// Kept under this name for code that still spells it so.
pub use crate::upstream::Endpoint as UpstreamUrl;

/// Maps an environment variable to a dotted config key, if it is one of ours.
fn env_key(name: &str) -> Option<String> {
    if let Some((_, key)) = NAMED_ENV.iter().find(|(n, _)| *n == name) {
        return Some((*key).to_string());
    }
    if let Some(rest) = name.strip_prefix("FASTMCP__") {
        let parts: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if parts.iter().all(|p| !p.is_empty()) {
            return Some(parts.join("."));
        }
        return None;
    }
    let rest = name.strip_prefix("MCP_")?;
    if rest.starts_with("DISCOVERY_") {
        return None;
    }
    for (suffix, field) in MCP_SERVER_SUFFIXES {
        if let Some(server) = rest.strip_suffix(suffix) {
            if !server.is_empty() {
                return Some(format!("mcp.servers.{}.{field}", server.to_ascii_lowercase()));
            }
        }
    }
    None
}

/// The server named by `MCP_<NAME>_ENV` (lowercased), if `name` is that.
fn stdio_env_server(name: &str) -> Option<String> {
    let server = name.strip_prefix("MCP_")?.strip_suffix("_ENV")?;
    (!server.is_empty() && !server.starts_with("DISCOVERY_")).then(|| server.to_ascii_lowercase())
}

/// Parses `KEY=VALUE,KEY2=VALUE2` (entries trimmed, empty entries skipped).
fn parse_env_list(raw: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((k, v)) = entry.split_once('=') else {
            return Err(format!("{entry:?} is not KEY=VALUE"));
        };
        if !is_env_name(k) {
            return Err(format!("{k:?} is not a variable name"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// An environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
fn is_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Sets dotted `key` in the YAML tree from an env value, creating maps on the way.
fn set_path(tree: &mut Yaml, key: &str, raw: &str) -> Result<(), String> {
    let last = key.rsplit('.').next().unwrap_or_default();
    let value = if STRING_KEYS.contains(&last) {
        Yaml::String(raw.to_string())
    } else {
        serde_yaml_ng::from_str::<Yaml>(raw).map_err(|e| format!("unparsable value: {e}"))?
    };
    set_value(tree, key, value)
}

/// Sets dotted `key` in the YAML tree to `value`, creating maps on the way.
fn set_value(tree: &mut Yaml, key: &str, value: Yaml) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut node = tree;
    for (i, part) in parts.iter().enumerate() {
        let map = match node {
            Yaml::Mapping(m) => m,
            other => {
                *other = Yaml::Mapping(Default::default());
                match other {
                    Yaml::Mapping(m) => m,
                    _ => return Err("internal: not a mapping".into()),
                }
            }
        };
        let k = Yaml::String((*part).to_string());
        if i + 1 == parts.len() {
            map.insert(k, value);
            return Ok(());
        }
        node = map.entry(k).or_insert(Yaml::Mapping(Default::default()));
    }
    Ok(())
}

/// Deep-merges `overlay` into `base` (maps merge, everything else replaces).
fn merge(base: &mut Yaml, overlay: Yaml) {
    match (base, overlay) {
        (Yaml::Mapping(b), Yaml::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn upgrade_socket_defaults_to_the_data_dir_and_must_fit_a_socket_address() {
        let c = Config::load(None, env(&[("FASTMCP_DATA_DIR", "/var/lib/fastmcp")])).unwrap();
        assert_eq!(c.upgrade_socket_path(), PathBuf::from("/var/lib/fastmcp/upgrade.sock"));
        let c = Config::load(None, env(&[("FASTMCP__UPGRADE_SOCK", "/run/fastmcp/up.sock")])).unwrap();
        assert_eq!(c.upgrade_socket_path(), PathBuf::from("/run/fastmcp/up.sock"));
        let long = format!("/{}", "d".repeat(100));
        let e = Config::load(None, env(&[("FASTMCP_DATA_DIR", &long)])).unwrap_err();
        assert_eq!(e.key, "upgrade_sock", "{e}");
    }

    #[test]
    fn embedded_defaults_load() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8001");
        assert_eq!(c.admin_listen, "127.0.0.1:9901");
        assert_eq!(c.limits.max_body_bytes, 1 << 20);
        assert!(c.mcp.servers.is_empty());
        // The embedded file and the serde defaults agree on the replay window.
        let r = &c.mcp.replay;
        let d = ReplayConfig::default();
        assert_eq!((r.max_events_per_session, r.max_bytes_per_session, r.max_bytes_total), (64, 1 << 20, 64 << 20));
        assert_eq!((d.max_events_per_session, d.max_bytes_per_session, d.max_bytes_total), (64, 1 << 20, 64 << 20));
        let c = Config::load(None, env(&[("FASTMCP__MCP__REPLAY__MAX_EVENTS_PER_SESSION", "0")])).unwrap();
        assert_eq!(c.mcp.replay.max_events_per_session, 0, "0 keeps nothing");
    }

    #[test]
    fn seed_env_names_override() {
        let c = Config::load(
            None,
            env(&[
                ("JWT_AUDIENCE", "123"),
                ("CONFIRM_TTL_SEC", "60"),
                ("MCP_DEMO_URL", "http://localhost:3001"),
                ("MCP_DEMO_TRUSTED", "true"),
                ("MCP_MY_FS_URL", "http://127.0.0.1:9/x"),
                ("MCP_DISCOVERY_RETRIES", "3"),
                ("FASTMCP__AUDIT__DURABLE", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(c.auth.audience, "123");
        assert_eq!(c.holds.ttl_seconds, 60);
        let demo = &c.mcp.servers["demo"];
        assert!(demo.trusted);
        assert_eq!(UpstreamUrl::mcp(&demo.url).unwrap().path, "/mcp");
        assert!(c.mcp.servers.contains_key("my_fs"));
        assert!(!c.audit.durable);
    }

    #[test]
    fn otel_env_names_and_a_bad_endpoint() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(!c.otel.enabled(), "no export by default");
        let c = Config::load(
            None,
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"), ("OTEL_SERVICE_NAME", "gw-1")]),
        )
        .unwrap();
        assert_eq!(c.otel.traces_url(), "http://127.0.0.1:4318/v1/traces");
        assert_eq!(c.otel.service_name, "gw-1");
        let e = Config::load(None, env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")])).unwrap_err();
        assert_eq!(e.key, "otel.endpoint");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = Config::load(None, env(&[("CONFIRM_TTL_SEC", "soon")])).unwrap_err();
        assert_eq!(e.key, "holds.ttl_seconds");
        let e = Config::load(None, env(&[("ACTION_TOKEN_BYTES", "8")])).unwrap_err();
        assert_eq!(e.key, "holds.token_bytes");
        let e = Config::load(None, env(&[("MCP_X_URL", "ftp://h")])).unwrap_err();
        assert_eq!(e.key, "mcp.servers.x.url");
        let e = Config::load(None, env(&[("FASTMCP__AUDIT__NOPE", "1")])).unwrap_err();
        assert!(e.key.starts_with("audit"), "{e}");
    }

    #[test]
    fn pinning_is_off_by_default_set_per_server_and_needs_discovery() {
        let url = ("MCP_X_URL", "http://127.0.0.1:1/mcp");
        let c = Config::load(None, env(&[url])).unwrap();
        assert_eq!(c.mcp.servers["x"].pinning, PinMode::Off);
        let c = Config::load(None, env(&[url, ("MCP_X_PINNING", "enforce")])).unwrap();
        assert_eq!(c.mcp.servers["x"].pinning, PinMode::Enforce);
        let e = Config::load(None, env(&[url, ("MCP_X_PINNING", "strict")])).unwrap_err();
        assert_eq!(e.key, "mcp.servers.x.pinning");
        let e = Config::load(None, env(&[url, ("MCP_X_PINNING", "warn"), ("MCP_X_DISCOVER", "false")])).unwrap_err();
        assert_eq!(e.key, "mcp.servers.x.pinning");
    }

    #[test]
    fn jwks_refresh_bounds_are_validated() {
        let c = Config::load(None, env(&[])).unwrap();
        let a = &c.auth;
        assert_eq!((a.jwks_refresh_seconds, a.jwks_max_age_min_seconds, a.jwks_max_age_max_seconds), (300, 30, 300));
        for (key, value, named) in [
            ("FASTMCP__AUTH__JWKS_REFRESH_SECONDS", "0", "auth.jwks_refresh_seconds"),
            ("FASTMCP__AUTH__JWKS_REFRESH_SECONDS", "86401", "auth.jwks_refresh_seconds"),
            ("FASTMCP__AUTH__JWKS_MAX_AGE_MIN_SECONDS", "0", "auth.jwks_max_age_min_seconds"),
            ("FASTMCP__AUTH__JWKS_MAX_AGE_MIN_SECONDS", "301", "auth.jwks_max_age_max_seconds"),
            ("FASTMCP__AUTH__JWKS_MAX_AGE_MAX_SECONDS", "86401", "auth.jwks_max_age_max_seconds"),
        ] {
            let e = Config::load(None, env(&[(key, value)])).unwrap_err();
            assert_eq!(e.key, named, "{key}={value}: {e}");
        }
    }

    #[test]
    fn outbound_rules_are_validated_and_default_safe() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.providers.http.egress.allow.is_empty() && c.providers.http.egress.allow_public);
        let c = Config::load(
            None,
            env(&[
                ("FASTMCP__PROVIDERS__HTTP__EGRESS__ALLOW", r#"["10.0.0.0/8", "127.0.0.1:9000", "crm.internal"]"#),
                ("PIPEDRIVE_API_TOKEN", "t"),
                ("FASTMCP__PROVIDERS__CREDENTIALS__PIPEDRIVE__ALLOWED_URLS", r#"["https://acme.pipedrive.com/api"]"#),
            ]),
        )
        .unwrap();
        assert_eq!(c.providers.http.egress.allow.len(), 3);
        let urls = c.providers.credentials["pipedrive"].allowed_urls().unwrap();
        assert_eq!(urls, ["https://acme.pipedrive.com/api".to_string()]);
        let e = Config::load(None, env(&[("FASTMCP__PROVIDERS__HTTP__EGRESS__ALLOW", r#"["0x7f.1"]"#)])).unwrap_err();
        assert_eq!(e.key, "providers.http.egress.allow");
        let e = Config::load(
            None,
            env(&[
                ("PIPEDRIVE_API_TOKEN", "t"),
                ("FASTMCP__PROVIDERS__CREDENTIALS__PIPEDRIVE__ALLOWED_URLS", r#"["https://u:p@h.example"]"#),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.key, "providers.credentials.pipedrive.allowed_urls");
    }

    #[test]
    fn stdio_env_lists_become_string_maps() {
        let c = Config::load(
            None,
            env(&[
                ("MCP_TOOLS_TRANSPORT", "stdio"),
                ("MCP_TOOLS_COMMAND", "python3 server.py"),
                ("MCP_TOOLS_ENV", "HOME=/srv/tools, PORT=8080,,EMPTY="),
            ]),
        )
        .unwrap();
        let vars: Vec<(&str, &str)> =
            c.mcp.servers["tools"].env.iter().map(|(k, v)| (k.as_str(), v.0.as_str())).collect();
        assert_eq!(vars, [("EMPTY", ""), ("HOME", "/srv/tools"), ("PORT", "8080")]);
        assert!(!format!("{c:?}").contains("/srv/tools"), "values are masked like secrets");
        for bad in ["NOEQUALS", "1X=a", "A-B=c"] {
            let e =
                Config::load(None, env(&[("MCP_T_TRANSPORT", "stdio"), ("MCP_T_COMMAND", "x"), ("MCP_T_ENV", bad)]))
                    .unwrap_err();
            assert_eq!(e.key, "MCP_T_ENV", "{bad}: {e}");
        }
        let e = Config::load(None, env(&[("MCP_H_URL", "http://h:1/mcp"), ("MCP_H_ENV", "A=b")])).unwrap_err();
        assert_eq!(e.key, "mcp.servers.h.env", "http servers take no environment");
    }

    #[test]
    fn byte_bounds_must_be_positive() {
        for (var, key) in [
            ("FASTMCP__HOLDS__MAX_INPUT_BYTES", "holds.max_input_bytes"),
            ("FASTMCP__MCP__MAX_SESSIONS_PER_PRINCIPAL", "mcp.max_sessions_per_principal"),
            ("FASTMCP__PROVIDERS__DATABASE__MAX_RESULT_BYTES", "providers.database.max_result_bytes"),
            ("FASTMCP__REST__IDEMPOTENCY_MAX_BYTES", "rest.idempotency_max_bytes"),
        ] {
            assert_eq!(Config::load(None, env(&[(var, "0")])).unwrap_err().key, key);
        }
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.providers.database.max_result_bytes, 4 << 20);
        assert_eq!((c.holds.max_input_bytes, c.mcp.max_sessions_per_principal), (256 << 10, 64));
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let c =
            Config::load(None, env(&[("MCP_A_URL", "http://h:1/mcp"), ("MCP_A_TOKEN", "Bearer topsecret")])).unwrap();
        assert!(!format!("{c:?}").contains("topsecret"));
    }

    #[test]
    fn admin_defaults_and_checks() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.admin.roles, ["platform-admin"]);
        assert_eq!(c.admin.open_paths, ["/health", "/ready", "/metrics"]);
        assert!(c.admin.token.0.is_empty() && c.admin.token_file.is_empty());
        let c = Config::load(None, env(&[("FASTMCP_ADMIN_TOKEN", "0123456789abcdef0123")])).unwrap();
        assert_eq!(c.admin.token.0, "0123456789abcdef0123");
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "the token is a Secret");
        let e = Config::load(None, env(&[("FASTMCP_ADMIN_TOKEN", "short")])).unwrap_err();
        assert_eq!(e.key, "admin.token");
        assert!(!e.problem.contains("short"), "never echoes the token: {e}");
        let both = [("FASTMCP_ADMIN_TOKEN", "0123456789abcdef0123"), ("FASTMCP__ADMIN__TOKEN_FILE", "/t")];
        assert_eq!(Config::load(None, env(&both)).unwrap_err().key, "admin.token");
        let e = Config::load(None, env(&[("FASTMCP__ADMIN__OPEN_PATHS", "[/admin/holds]")])).unwrap_err();
        assert_eq!(e.key, "admin.open_paths");
    }
}
