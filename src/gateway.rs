//! `Gateway`: the state every door shares, built once at startup (see `server.rs`).

use std::sync::Arc;

use crate::audit::AuditLog;
use crate::auth::{Authenticator, Principal};
use crate::catalog::Catalog;
use crate::config::Config;
use crate::enforce::{EnforceConfig, Enforcer};
use crate::error::GatewayError;
use crate::mcp::federation::Federation;
use crate::mcp::proxied_sessions::{ProxiedSessions, ProxiedStore};
use crate::pinning::Pins;
use crate::policy::reload::Reloader;
use crate::policy::PolicyEngine;
use crate::state::{Backend, StateStore};

/// Shared, immutable-after-start gateway state.
pub struct Gateway {
    pub cfg: Config,
    /// `None` when authentication is disabled (benchmarks).
    pub auth: Option<Authenticator>,
    pub policy: Arc<PolicyEngine>,
    /// Hot reload of the policy (`None` when policy is disabled).
    pub reloader: Option<Arc<Reloader>>,
    /// The enforcement core every door calls (decide → limit → hold → record).
    pub enforce: Enforcer,
    pub state: Arc<dyn StateStore>,
    /// Which state backend runs (for `/ready`; only `state/` looks inside).
    pub backend: Backend,
    pub audit: AuditLog,
    pub catalog: Catalog,
    /// The federated `/mcp` endpoint: discovered tools, sessions, the MRTR state sealer.
    pub fed: Federation,
    /// Sessions opened through `/mcp/{server}`: their owner and client capabilities.
    pub proxied: Arc<dyn ProxiedStore>,
    /// The REST tool API's stores, providers and broker.
    pub rest: crate::rest::RestState,
}

/// The parts a gateway is built from.
pub struct Parts {
    pub cfg: Config,
    pub auth: Option<Authenticator>,
    pub policy: Arc<PolicyEngine>,
    pub reloader: Option<Arc<Reloader>>,
    pub state: Arc<dyn StateStore>,
    pub backend: Backend,
    pub audit: AuditLog,
    pub catalog: Catalog,
    pub fed: Federation,
    pub rest: crate::rest::RestState,
    /// Where tool-definition pins live (`server::pin_store`: Redis, SQLite or memory).
    pub pin_store: Arc<dyn crate::pinning::PinStore>,
    /// Webhooks told of new holds (`holds.notify`; `None`: none configured).
    pub notifier: Option<Arc<crate::holds::notify::Notifier>>,
}

impl Gateway {
    pub fn new(p: Parts) -> Gateway {
        let ecfg = EnforceConfig {
            rate_limit: p.cfg.rate_limit.clone(),
            holds: p.cfg.holds.clone(),
            approver_roles: p.cfg.rest.approver_roles.clone(),
            approval_tags: p.cfg.rest.approval_tags.clone(),
            durable: p.cfg.audit.durable,
            public_url: crate::proxy::forwarded::parse_public_url(&p.cfg.public_url).unwrap_or_default(),
        };
        Gateway {
            enforce: Enforcer::new(
                ecfg,
                p.state.clone(),
                p.audit.clone(),
                Arc::new(Pins::new(&p.cfg.mcp.servers, p.pin_store)),
            )
            .with_notifier(p.notifier),
            proxied: p.backend.proxied(ProxiedSessions::new(p.cfg.mcp.session_ttl_seconds)),
            cfg: p.cfg,
            auth: p.auth,
            policy: p.policy,
            reloader: p.reloader,
            state: p.state,
            backend: p.backend,
            audit: p.audit,
            catalog: p.catalog,
            fed: p.fed,
            rest: p.rest,
        }
    }

    /// Authenticates the `Authorization` header (anonymous when auth is disabled).
    pub async fn authenticate(&self, header: Option<&[u8]>) -> Result<Arc<Principal>, GatewayError> {
        match &self.auth {
            Some(a) => a.authenticate(header).await,
            None => Ok(Arc::new(Principal::anonymous())),
        }
    }

    /// Takes a (re)discovered tool list of `server`: pinning re-checks it (trust on first
    /// use), the federated endpoint lists it, and a trusted server's annotations become the
    /// tools' safety tags.
    pub fn discovered(&self, server: &str, tools: &[serde_json::Value]) {
        if let Some(s) = self.catalog.server(server) {
            for t in tools {
                if let Some(name) = t.get("name").and_then(serde_json::Value::as_str) {
                    self.catalog.remember(&s, name, t.get("annotations"));
                }
            }
        }
        tracing::info!(server, tools = tools.len(), "MCP tools discovered");
        // Pins first: a client told `tools/list_changed` must find the new judgement in place.
        self.enforce.pins.discovered(server, tools);
        self.fed.set_tools(server, tools.to_vec());
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::policy::{CompiledPolicy, PolicySources};
    use crate::state::memory::MemoryState;

    /// A gateway without sockets: the embedded policy, memory state, a fresh temp data and
    /// audit dir, server `demo` at an address nothing listens on.
    pub(crate) fn test_gateway(tag: &str, env: &[(&str, &str)]) -> Gateway {
        let dir = std::env::temp_dir().join(format!("fastmcp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut vars: Vec<(String, String)> = vec![
            ("MCP_DEMO_URL".into(), "http://127.0.0.1:9/mcp".into()),
            ("AUDIT_WORM_DIR".into(), dir.join("audit").display().to_string()),
            ("FASTMCP_DATA_DIR".into(), dir.join("data").display().to_string()),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let cfg = Config::load(None, vars).unwrap();
        Gateway::new(Parts {
            auth: None,
            policy: Arc::new(PolicyEngine::enabled(CompiledPolicy::compile(&PolicySources::embedded()).unwrap())),
            reloader: None,
            state: Arc::new(MemoryState::default()),
            backend: Backend::memory(),
            audit: AuditLog::open(&cfg.audit.dir, "t".into()).unwrap(),
            catalog: Catalog::new(&cfg.mcp.servers).unwrap(),
            fed: Federation::new(&cfg.mcp).unwrap(),
            rest: crate::rest::RestState::build(&cfg, None).unwrap(),
            pin_store: Arc::new(crate::pinning::MemoryPins::default()),
            notifier: None,
            cfg,
        })
    }

    /// A principal of tenant `acme` with `roles`.
    pub(crate) fn principal(sub: &str, roles: &[&str]) -> Principal {
        Principal {
            sub: sub.into(),
            tenant: "acme".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Principal::anonymous()
        }
    }

    /// The audit records written so far in `gw`'s audit dir, parsed.
    pub(crate) fn records(gw: &Gateway) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for f in crate::audit::chain_files(&gw.cfg.audit.dir).unwrap_or_default() {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
        out
    }
}
