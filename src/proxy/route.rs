//! Gateway routes (DESIGN §4).

/// What a request path addresses.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Health,
    /// RFC 9728 metadata; the suffix is the resource path (`/mcp/demo`) or empty.
    ProtectedResource(String),
    /// `/mcp/{server}`.
    McpServer(String),
    /// `/mcp` (federated endpoint, not in this build).
    McpFederated,
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
    if let Some(rest) = path.strip_prefix("/mcp/") {
        let name = rest.trim_end_matches('/');
        if !name.is_empty() && !name.contains('/') {
            return Route::McpServer(name.to_string());
        }
    }
    Route::NotFound
}

impl Route {
    /// Bounded label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::ProtectedResource(_) => "/.well-known/oauth-protected-resource",
            Route::McpServer(_) => "/mcp/{server}",
            Route::McpFederated => "/mcp",
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
    }
}
