//! Assembling the gateway from configuration and running the pingora server.

use std::sync::Arc;
use std::time::Duration;

use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server};
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::auth::devkeys::DevKey;
use crate::auth::keys::{KeySet, VerifyKey};
use crate::auth::refresh::Schedule;
use crate::auth::{parse_alg, Authenticator, KeySource};
use crate::broker::Signer;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::gateway::{Gateway, Parts};
use crate::mcp::client::Transport;
use crate::mcp::discovery::{Discovery, DiscoveryOptions, OnChange};
use crate::mcp::federation::Federation;
use crate::mcp::upstream;
use crate::policy::bundle::Bundle;
use crate::policy::reload::Reloader;
use crate::policy::shadow::ShadowLimits;
use crate::policy::{CompiledPolicy, PolicyEngine, PolicySources};
use crate::proxy::GatewayProxy;
use crate::rest::RestState;
use crate::state::memory::MemoryState;

/// Builds every component. Errors are startup failures (exit 2).
pub fn build_gateway(cfg: Config) -> Result<Gateway, String> {
    let auth = if cfg.auth.enabled {
        Some(build_auth(&cfg)?)
    } else {
        tracing::warn!("authentication is DISABLED (auth.enabled=false): every caller is anonymous");
        None
    };
    let audit = crate::audit::setup::open(&cfg)?;
    let mut serving = None;
    let policy = if cfg.policy.enabled {
        let sources = PolicySources::load(&cfg.policy.policies_file, std::slice::from_ref(&cfg.policy.rego_dir))?;
        let compiled = CompiledPolicy::compile(&sources)?;
        tracing::info!(revision = %compiled.revision, policies = %sources.policies_name, modules = sources.rego.len(), "policy loaded");
        serving = Some(sources);
        PolicyEngine::enabled(compiled)
    } else {
        tracing::warn!("policy is DISABLED (policy.enabled=false): every call is allowed");
        PolicyEngine::disabled()
    };
    let backend = crate::state::Backend::open(&cfg.state)?;
    let catalog = Catalog::new(&cfg.mcp.servers)?;
    for name in catalog.server_names() {
        tracing::info!(server = %name, route = %format!("/mcp/{name}"), "MCP server configured");
    }
    let policy = Arc::new(policy);
    let reloader = serving.map(|sources| {
        let limits = ShadowLimits { queue: cfg.policy.shadow_queue, keep: cfg.policy.shadow_keep_differences };
        Arc::new(
            Reloader::new(
                policy.clone(),
                cfg.policy.policies_file.clone(),
                cfg.policy.rego_dir.clone(),
                Some(audit.clone()),
            )
            .serving_sources(sources)
            .shadow_limits(limits),
        )
    });
    if let (Some(r), Some(dir)) = (&reloader, &cfg.policy.shadow_dir) {
        // A candidate is never served: a broken one is logged, and the gateway starts without.
        match Bundle::from_dir(dir).map_err(|e| e.to_string()).and_then(|b| r.load_shadow(&b)) {
            Ok(revision) => {
                tracing::info!(dir = %dir.display(), %revision, "shadow policy loaded from policy.shadow_dir")
            }
            Err(e) => tracing::error!(dir = %dir.display(), error = %e, "shadow policy refused; running without one"),
        }
    }
    if let (Some(r), true) = (&reloader, cfg.policy.watch_interval_ms > 0) {
        r.clone().watch(std::time::Duration::from_millis(cfg.policy.watch_interval_ms))?;
    }
    let mut fed = Federation::new(&cfg.mcp)?;
    backend.share_federation(&mut fed, !cfg.mcp.request_state_key.0.is_empty());
    let mut rest = RestState::build(&cfg, gateway_signer(&cfg)?)?;
    rest.idempotency = backend.idempotency(rest.idempotency.clone(), crate::rest::idempotency_limits(&cfg));
    let state = backend.state(MemoryState::default());
    let pin_store = pin_store(&cfg, &backend)?;
    let notifier = crate::holds::notify::Notifier::from_config(&cfg.holds.notify)?.map(Arc::new);
    Ok(Gateway::new(Parts {
        cfg,
        auth,
        policy,
        reloader,
        state,
        backend,
        audit,
        catalog,
        fed,
        rest,
        pin_store,
        notifier,
    }))
}

/// Where tool-definition pins live: Redis when configured; else, when some server pins, the
/// gateway's SQLite file (`rest.sqlite_url`) so a restart keeps them; else memory. A file
/// that cannot be opened stops startup: pins silently lost would be trusted anew.
fn pin_store(cfg: &Config, backend: &crate::state::Backend) -> Result<Arc<dyn crate::pinning::PinStore>, String> {
    if let Some(shared) = backend.pins() {
        return Ok(shared);
    }
    let pinning = cfg.mcp.servers.values().any(|s| s.pinning != crate::config::PinMode::Off);
    let location = crate::catalog::sqlite_url::path_from_url(&cfg.rest.sqlite_url, &cfg.data_dir)?;
    match location {
        crate::catalog::sqlite_url::SqliteLocation::File(path) if pinning => {
            let store = crate::pinning::sqlite::SqlitePins::open(&path).map_err(|e| format!("rest.sqlite_url: {e}"))?;
            Ok(Arc::new(store))
        }
        _ => Ok(Arc::new(crate::pinning::MemoryPins::default())),
    }
}

/// The key that signs gateway-minted JWTs (broker `gateway_jwt` / token exchange): the dev
/// key when no JWKS is configured; none otherwise (those credential kinds then fail at start).
fn gateway_signer(cfg: &Config) -> Result<Option<Signer>, String> {
    if !cfg.auth.jwks_file.is_empty() || !cfg.auth.jwks_url.is_empty() {
        return Ok(None);
    }
    let dev = DevKey::load_or_create(&cfg.data_dir, parse_alg(&cfg.auth.algorithm))?;
    Signer::new(dev.encoding_key()?, parse_alg(&cfg.auth.algorithm), dev.kid.clone()).map(Some)
}

/// The authenticator and, for a JWKS file or URL, its background reload (which starts now:
/// the keys must stay current from the first request on).
fn build_auth(cfg: &Config) -> Result<Authenticator, String> {
    let a = &cfg.auth;
    let alg = parse_alg(&a.algorithm);
    let mut schedule = Schedule::new(a);
    if !a.jwks_file.is_empty() {
        let source = KeySource::File(a.jwks_file.clone().into());
        let loaded = source.load(alg).map_err(|e| format!("auth.jwks_file: {e}"))?;
        let set = loaded.map(|l| l.set).unwrap_or_default();
        let auth = Authenticator::new(a.clone(), set, source);
        auth.start_refresh(schedule.clone(), schedule.after_success(None))?;
        return Ok(auth);
    }
    if !a.jwks_url.is_empty() {
        let source = KeySource::Url(a.jwks_url.clone());
        let (set, first) = match source.load(alg) {
            Ok(Some(l)) => (l.set, schedule.after_success(l.max_age)),
            Ok(None) => (KeySet::default(), schedule.after_failure()),
            Err(e) => {
                tracing::error!(error = %e, "initial JWKS fetch failed; every token is refused until a refetch succeeds");
                (KeySet::default(), schedule.after_failure())
            }
        };
        let auth = Authenticator::new(a.clone(), set, source);
        auth.start_refresh(schedule, first)?;
        return Ok(auth);
    }
    let dev = DevKey::load_or_create(&cfg.data_dir, alg)?;
    tracing::warn!(kid = %dev.kid, dir = %cfg.data_dir.display(), "no JWKS configured: using DEV KEYS (not for production)");
    let key = VerifyKey::from_jwk_value(&dev.public_jwk, alg).map_err(|e| format!("dev key: {e}"))?;
    Ok(Authenticator::new(a.clone(), KeySet::single(dev.kid.clone(), key), KeySource::Static))
}

/// Starts background discovery of every configured MCP server; each (re)discovered tool list
/// feeds the federated endpoint and the trusted servers' annotations.
pub fn start_discovery(gw: &Arc<Gateway>) {
    let servers: Vec<(String, Transport)> = gw
        .catalog
        .servers()
        .iter()
        .filter(|s| s.cfg.discover)
        .map(|s| (s.name.clone(), upstream::transport(s, Duration::from_secs(gw.cfg.limits.upstream_timeout_seconds))))
        .collect();
    if servers.is_empty() {
        return;
    }
    let weak = Arc::downgrade(gw);
    let on_change: OnChange = Arc::new(move |name: &str, tools: &[serde_json::Value]| {
        if let Some(gw) = weak.upgrade() {
            gw.discovered(name, tools);
        }
    });
    let m = &gw.cfg.mcp;
    let opts = DiscoveryOptions {
        retries: m.discovery_retries,
        backoff_ms: m.discovery_backoff_ms,
        refresh_interval: Duration::from_secs(m.refresh_interval_seconds.max(1)),
    };
    gw.fed.set_discovery(Discovery::start(servers, opts, on_change));
}

/// Each accepted connection's L4 read buffer: none. pingora's default (64 KiB, allocated
/// whole per connection and kept while it is idle) made an idle SSE stream or keep-alive
/// connection cost ~150 KiB, 16 KiB still ~97 KiB. Without it reads go straight into the
/// buffers that parse them (pingora's request-header and body buffers, rustls' record
/// buffer), with the same number of reads for the small requests agents send.
const READ_BUFFER_BYTES: usize = 0;

/// Adds `addr` to `service`: plain TCP, or TLS (`tls_listener`) when `tls` has a certificate.
fn listen_on<A>(
    service: &mut Service<A>,
    key: &'static str,
    addr: &str,
    tls: &crate::config::ListenerTls,
    require_client_cert: bool,
) -> Result<(), String> {
    let endpoint = ListenerConfig::tcp(addr).l4_buffer(L4BufferSettings::default().read(READ_BUFFER_BYTES));
    if !tls.enabled() {
        service.add_listener(endpoint);
        return Ok(());
    }
    let settings = crate::tls_listener::settings(key, tls, require_client_cert)?;
    service.add_listener(endpoint.tls(settings));
    let mtls = if require_client_cert {
        "required"
    } else if tls.client_ca_file.is_empty() {
        "off"
    } else {
        "optional"
    };
    tracing::info!(listen = %addr, cert = %tls.cert_file, client_certificates = mtls, "TLS listener");
    Ok(())
}

/// Runs the gateway until a signal stops it (README "Starts and stops"). SIGTERM: listeners
/// stop accepting, in-flight requests get `grace_period_seconds` to finish (writing their
/// audit records as they complete), then the process returns. With `upgrade`, the listening
/// sockets are taken over from the running gateway through `upgrade_sock` (pingora's
/// zero-downtime upgrade) instead of being bound.
pub fn serve(cfg: Config, upgrade: bool) -> Result<(), String> {
    if !upgrade {
        crate::listen_check::ensure_free(&[("listen", &cfg.listen), ("admin_listen", &cfg.admin_listen)])?;
    }
    let upgrade_sock = cfg.upgrade_socket_path();
    if let Some(dir) = upgrade_sock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("upgrade_sock: {}: {e}", dir.display()))?;
    }
    let gw = Arc::new(build_gateway(cfg.clone())?);
    // Span export (its own thread) before the first request; no-op without otel.endpoint.
    crate::otel::export::init(&cfg.otel)?;
    // Before anything starts: a bad admin token file is a startup error.
    let admin_app = AdminApp::new(gw.clone())?;
    start_discovery(&gw);

    let threads =
        if cfg.threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) } else { cfg.threads };
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(cfg.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(cfg.grace_period_seconds.min(10)),
        upgrade_sock: upgrade_sock.display().to_string(),
        ..ServerConf::default()
    };
    let opt = Opt { upgrade, ..Opt::default() };
    let mut server = Server::new_with_opt_and_conf(Some(opt), conf);
    // On --upgrade this waits (5 s at most) for the running gateway, sent SIGQUIT, to hand
    // over its listening sockets; pingora exits 1 if none arrive.
    server.bootstrap();

    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, GatewayProxy::new(gw.clone()));
    listen_on(&mut proxy, "tls", &cfg.listen, &cfg.tls, cfg.require_mtls)?;
    let mut admin = Service::new("fastmcp-admin".to_string(), admin_app);
    listen_on(&mut admin, "admin.tls", &cfg.admin_listen, &cfg.admin.tls, cfg.admin.require_mtls)?;
    admin.threads = Some(1);
    server.add_service(proxy);
    server.add_service(admin);
    tracing::info!(listen = %cfg.listen, admin = %cfg.admin_listen, upgrade, "fastmcp serving");
    server.run(RunArgs::default());
    tracing::info!("fastmcp stopped");
    Ok(())
}
