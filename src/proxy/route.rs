//! Gateway routes (DESIGN §4).

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Health,
    /// RFC 9728 metadata; the suffix is the resource path (`/mcp/demo`) or empty.
    ProtectedResource(String),
    /// `/mcp/{server}`.
    McpServer(String),
    /// `/mcp` (the federated endpoint).
    McpFederated,
    /// `GET /tool-catalog`.
    ToolCatalog,
    /// `POST /tools/{toolId}/invoke`.
    ToolInvoke(String),
    /// `POST /tools/{toolId}/confirm`.
    ToolConfirm(String),
    /// `POST /manifests/register`.
    ManifestRegister,
    NotFound,
}

pub fn route(path: &str) -> Route {
    let path = path.split('?').next().unwrap_or("");
    if path == "/health" {
        return Route::Health;
    }
    if let Some(rest) = path.strip_prefix("/.well-known/oauth-protected-resource") {
        if rest.is_empty() || rest.starts_with('/') {
            return Route::ProtectedResource(rest.to_string());
        }
    }
    if path == "/mcp" || path == "/mcp/" {
        return Route::McpFederated;
    }
    if path == "/tool-catalog" {
        return Route::ToolCatalog;
    }
    if path == "/manifests/register" {
        return Route::ManifestRegister;
    }
    if let Some(rest) = path.strip_prefix("/tools/") {
        if let Some((id, verb)) = rest.rsplit_once('/') {
            let id = percent_encoding::percent_decode_str(id).decode_utf8().map(|c| c.into_owned()).ok();
            match (id, verb) {
                (Some(id), "invoke") if valid_tool_id(&id) => return Route::ToolInvoke(id),
                (Some(id), "confirm") if valid_tool_id(&id) => return Route::ToolConfirm(id),
                _ => {}
            }
        }
    }
    if let Some(rest) = path.strip_prefix("/mcp/") {
        let name = rest.trim_end_matches('/');
        if !name.is_empty() && !name.contains('/') {
            return Route::McpServer(name.to_string());
        }
    }
    Route::NotFound
}

/// Tool ids are `provider:name` (or `mcp:server:tool`) of visible ASCII without `/`.
fn valid_tool_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 300 && id.contains(':') && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
}

impl Route {
    /// MCP routes answer errors as JSON-RPC; the others in the REST shape.
    pub fn is_mcp(&self) -> bool {
        matches!(self, Route::McpServer(_) | Route::McpFederated)
    }

    /// REST tool API routes.
    pub fn is_rest(&self) -> bool {
        matches!(self, Route::ToolCatalog | Route::ToolInvoke(_) | Route::ToolConfirm(_) | Route::ManifestRegister)
    }

    /// Requests that leave an audit record: everything but the liveness probe and the public
    /// metadata (neither reaches a door or an upstream; probes would flood the trail).
    pub fn audited(&self) -> bool {
        !matches!(self, Route::Health | Route::ProtectedResource(_))
    }

    /// Bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::ProtectedResource(_) => "/.well-known/oauth-protected-resource",
            Route::McpServer(_) => "/mcp/{server}",
            Route::McpFederated => "/mcp",
            Route::ToolCatalog => "/tool-catalog",
            Route::ToolInvoke(_) => "/tools/{toolId}/invoke",
            Route::ToolConfirm(_) => "/tools/{toolId}/confirm",
            Route::ManifestRegister => "/manifests/register",
            Route::NotFound => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/mcp/demo"), Route::McpServer("demo".into()));
        assert_eq!(route("/mcp/demo/?x=1"), Route::McpServer("demo".into()));
        assert_eq!(route("/mcp/demo/extra"), Route::NotFound);
        assert_eq!(route("/mcp"), Route::McpFederated);
        assert_eq!(route("/health"), Route::Health);
        assert_eq!(
            route("/.well-known/oauth-protected-resource/mcp/demo"),
            Route::ProtectedResource("/mcp/demo".into())
        );
        assert_eq!(route("/.well-known/oauth-protected-resourcex"), Route::NotFound);
        assert_eq!(route("/tools/database:executeQuery/invoke"), Route::ToolInvoke("database:executeQuery".into()));
        assert_eq!(route("/tools/ads%3AcreateCampaign/confirm"), Route::ToolConfirm("ads:createCampaign".into()));
        assert_eq!(route("/tools/mcp:demo:echo/invoke"), Route::ToolInvoke("mcp:demo:echo".into()));
        assert_eq!(route("/tools/a%2Fb:c/invoke"), Route::NotFound, "no slash smuggled through encoding");
        assert_eq!(route("/tools/x/invoke"), Route::NotFound);
        assert_eq!(route("/tool-catalog"), Route::ToolCatalog);
    }
}
