//! The admin routes: path → [`Route`], each with its one method and its audit action.

use http::Method;

/// One admin route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: Prometheus text.
    Metrics,
    /// `GET /health`: liveness.
    Health,
    /// `GET /ready`: keys and policy loaded.
    Ready,
    /// `GET /admin/mcp/servers`: discovery status per server.
    Servers,
    /// `GET /admin/holds`: pending holds of every tenant (never their tokens).
    Holds,
    /// `GET /admin/holds/stream`: SSE of pending holds (snapshot, then changes).
    HoldsStream,
    /// `GET /admin/session`: who the credential is, and the policy revision in force.
    Session,
    /// `GET /admin/ui/…`: the approvals console's static files (no data, no credential).
    Ui(&'static str),
    /// `POST /admin/holds/{id}/approve|deny`.
    Decide { id: String, approve: bool },
    /// `POST /admin/policy/reload`.
    Reload,
    /// `GET /admin/audit/stream`: SSE of durable audit records.
    AuditStream,
    /// `POST /admin/policy/shadow`: load a candidate bundle as the shadow policy.
    ShadowLoad,
    /// `DELETE /admin/policy/shadow`: drop the shadow policy.
    ShadowDrop,
    /// `GET /admin/policy/shadow/diff`: the shadow's counts and kept differences.
    ShadowDiff,
    /// `POST /admin/policy/shadow/promote`: serve the candidate (like a reload).
    ShadowPromote,
    /// `GET /admin/mcp/servers/{name}/pins`: pinned vs current tool definitions.
    Pins { server: String },
    /// `POST /admin/mcp/servers/{name}/pins/{tool}/approve`: approve the current definition.
    ApprovePin { server: String, tool: String },
    /// Anything else (404).
    Unknown,
}

impl Route {
    pub fn of(path: &str) -> Route {
        match path {
            "/metrics" => return Route::Metrics,
            "/health" => return Route::Health,
            "/ready" => return Route::Ready,
            "/admin/mcp/servers" => return Route::Servers,
            "/admin/holds" => return Route::Holds,
            "/admin/holds/stream" => return Route::HoldsStream,
            "/admin/session" => return Route::Session,
            "/admin/ui" | "/admin/ui/" | "/admin/ui/index.html" => return Route::Ui("index.html"),
            "/admin/ui/app.js" => return Route::Ui("app.js"),
            "/admin/ui/app.css" => return Route::Ui("app.css"),
            "/admin/policy/reload" => return Route::Reload,
            "/admin/audit/stream" => return Route::AuditStream,
            "/admin/policy/shadow" => return Route::ShadowLoad,
            "/admin/policy/shadow/diff" => return Route::ShadowDiff,
            "/admin/policy/shadow/promote" => return Route::ShadowPromote,
            _ => {}
        }
        if let Some(rest) = path.strip_prefix("/admin/mcp/servers/") {
            return Route::of_server(rest);
        }
        let Some((id, verb)) = path.strip_prefix("/admin/holds/").and_then(|r| r.split_once('/')) else {
            return Route::Unknown;
        };
        // Hold ids are hex; anything else names no hold.
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Route::Unknown;
        }
        match verb {
            "approve" => Route::Decide { id: id.to_string(), approve: true },
            "deny" => Route::Decide { id: id.to_string(), approve: false },
            _ => Route::Unknown,
        }
    }

    /// The route of a request for `method` (one path, two routes: the shadow's POST and
    /// DELETE).
    pub fn for_method(self, method: &Method) -> Route {
        match self {
            Route::ShadowLoad if method == Method::DELETE => Route::ShadowDrop,
            other => other,
        }
    }

    /// `{name}/pins` or `{name}/pins/{tool}/approve` under `/admin/mcp/servers/`. Server
    /// names are config names (`[a-z0-9_-]`); tool names the MCP spec's characters
    /// (`[A-Za-z0-9_.-]`, at most 128): anything else (encoded bytes included) names nothing.
    fn of_server(rest: &str) -> Route {
        let parts: Vec<&str> = rest.split('/').collect();
        let server_ok = |s: &str| {
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        };
        let tool_ok = |t: &str| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        match parts.as_slice() {
            [s, "pins"] if server_ok(s) => Route::Pins { server: s.to_string() },
            [s, "pins", t, "approve"] if server_ok(s) && tool_ok(t) => {
                Route::ApprovePin { server: s.to_string(), tool: t.to_string() }
            }
            _ => Route::Unknown,
        }
    }

    /// The method this route takes.
    pub fn method(&self) -> Method {
        match self {
            Route::Decide { .. }
            | Route::Reload
            | Route::ShadowLoad
            | Route::ShadowPromote
            | Route::ApprovePin { .. } => Method::POST,
            Route::ShadowDrop => Method::DELETE,
            _ => Method::GET,
        }
    }

    /// The `Allow` header of a 405 on this route's path.
    pub fn allow(&self) -> &'static str {
        match self {
            Route::ShadowLoad | Route::ShadowDrop => "POST, DELETE",
            r if r.method() == Method::POST => "POST",
            _ => "GET",
        }
    }

    /// May a tenant approver (`admin.approver_roles`) use this route? The console's
    /// routes only; each confines the approver to its tenant.
    pub fn for_approvers(&self) -> bool {
        matches!(
            self,
            Route::Holds
                | Route::HoldsStream
                | Route::Decide { .. }
                | Route::Session
                | Route::AuditStream
                | Route::Ui(_)
        )
    }

    /// The `action` of its audit records.
    pub fn action(&self) -> &'static str {
        match self {
            Route::Metrics => "admin.metrics",
            Route::Health => "admin.health",
            Route::Ready => "admin.ready",
            Route::Servers => "admin.mcp.servers",
            Route::Holds => "admin.holds.list",
            Route::HoldsStream => "admin.holds.stream",
            Route::Session => "admin.session",
            Route::Ui(_) => "admin.ui",
            Route::Decide { .. } => "holds.decide",
            Route::Reload => "policy.reload",
            Route::AuditStream => "admin.audit.stream",
            Route::ShadowLoad => "policy.shadow.load",
            Route::ShadowDrop => "policy.shadow.drop",
            Route::ShadowDiff => "policy.shadow.diff",
            Route::ShadowPromote => "policy.shadow.promote",
            Route::Pins { .. } => "admin.mcp.pins",
            Route::ApprovePin { .. } => "mcp.pins.approve",
            Route::Unknown => "admin.request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_routes() {
        assert_eq!(Route::of("/metrics"), Route::Metrics);
        assert_eq!(Route::of("/admin/holds/ab12/approve"), Route::Decide { id: "ab12".into(), approve: true });
        assert_eq!(Route::of("/admin/holds/ab12/deny"), Route::Decide { id: "ab12".into(), approve: false });
        for unknown in ["/admin/holds//approve", "/admin/holds/a%2f/approve", "/admin/holds/ab/x", "/", "/admin"] {
            assert_eq!(Route::of(unknown), Route::Unknown, "{unknown}");
        }
        assert_eq!(Route::Reload.method(), Method::POST);
        assert_eq!(Route::Holds.method(), Method::GET);
        assert_eq!(Route::of("/admin/audit/stream"), Route::AuditStream);
        assert_eq!(Route::of("/admin/holds/stream"), Route::HoldsStream);
        assert_eq!(Route::of("/admin/ui/"), Route::Ui("index.html"));
        assert_eq!(Route::of("/admin/ui/app.js"), Route::Ui("app.js"));
        assert_eq!(Route::of("/admin/ui/other.js"), Route::Unknown);
        assert!(
            Route::Session.for_approvers()
                && !Route::Reload.for_approvers()
                && !Route::Pins { server: "d".into() }.for_approvers()
        );
        assert_eq!(Route::AuditStream.method(), Method::GET);
        assert_eq!(Route::of("/admin/policy/shadow").for_method(&Method::DELETE), Route::ShadowDrop);
        assert_eq!(Route::of("/admin/policy/shadow").for_method(&Method::POST), Route::ShadowLoad);
        assert_eq!(Route::of("/admin/policy/shadow").for_method(&Method::GET).allow(), "POST, DELETE");
        assert_eq!(Route::of("/admin/policy/shadow/promote").method(), Method::POST);
        assert_eq!(Route::of("/admin/policy/shadow/diff").method(), Method::GET);
        assert_eq!(Route::of("/admin/mcp/servers/demo/pins"), Route::Pins { server: "demo".into() });
        let approve = Route::of("/admin/mcp/servers/demo/pins/get_weather.v2/approve");
        assert_eq!(approve, Route::ApprovePin { server: "demo".into(), tool: "get_weather.v2".into() });
        assert_eq!(approve.method(), Method::POST);
        for unknown in [
            "/admin/mcp/servers//pins",
            "/admin/mcp/servers/Demo/pins",
            "/admin/mcp/servers/demo/pins/a%2fb/approve",
            "/admin/mcp/servers/demo/pins/x",
            "/admin/mcp/servers/demo/pins/x/approve/y",
        ] {
            assert_eq!(Route::of(unknown), Route::Unknown, "{unknown}");
        }
    }
}
