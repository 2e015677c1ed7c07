//! The one place where failures become HTTP statuses and the DESIGN §4 error shape.
//!
//! Every stage returns a [`GatewayError`]; the proxy glue turns it into a response with
//! [`GatewayError::status`] and [`GatewayError::body`] (REST shape) or
//! [`GatewayError::jsonrpc_code`] (MCP routes). Messages are written for callers: they never
//! carry secrets, tokens or upstream bodies.

use serde_json::{json, Value};

/// A refusal or failure on the request path, mapped to the DESIGN error table.
#[derive(Debug, Clone, PartialEq)]
pub enum GatewayError {
    /// 400: malformed JSON-RPC, batch arrays, header/body mismatch.
    BadRequest { message: String, jsonrpc_code: i64 },
    /// 401: missing, invalid or expired token. `reason` is a short metric label.
    Unauthorized { reason: &'static str, message: String },
    /// 403: policy denied; `reasons` are the matched rule ids.
    Forbidden { message: String, reasons: Vec<String> },
    /// 404: unknown route, server or tool.
    NotFound { message: String },
    /// 405: method not allowed on this route.
    MethodNotAllowed { message: String },
    /// 409: action token expired, used, or unknown.
    Conflict { message: String },
    /// 413: body over the configured limit.
    PayloadTooLarge { limit: usize },
    /// 413: a bounded store would grow past `limit` bytes for this (a held input, a caller's
    /// share of pending holds); nothing was stored.
    QuotaExceeded { message: String, limit: usize },
    /// 422: body not JSON or not an object.
    Validation { message: String },
    /// 422: the input fails the tool's JSON Schema; `violations` are `{path, message}`.
    SchemaInvalid { message: String, violations: Vec<Value> },
    /// 429: rate limited. `retry_after` is whole seconds (at least 1).
    RateLimited { retry_after: u64, limit: u64, remaining: u64, reset: u64 },
    /// 502: upstream failed or answered garbage.
    Provider { message: String },
    /// 503: a fail-closed dependency is down.
    Unavailable { message: String },
    /// 504: upstream timed out.
    ProviderTimeout { message: String },
}

impl GatewayError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest { message: message.into(), jsonrpc_code: -32600 }
    }

    pub fn unauthorized(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized { reason, message: message.into() }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest { .. } => 400,
            Self::Unauthorized { .. } => 401,
            Self::Forbidden { .. } => 403,
            Self::NotFound { .. } => 404,
            Self::MethodNotAllowed { .. } => 405,
            Self::Conflict { .. } => 409,
            Self::PayloadTooLarge { .. } | Self::QuotaExceeded { .. } => 413,
            Self::Validation { .. } | Self::SchemaInvalid { .. } => 422,
            Self::RateLimited { .. } => 429,
            Self::Provider { .. } => 502,
            Self::Unavailable { .. } => 503,
            Self::ProviderTimeout { .. } => 504,
        }
    }

    /// The DESIGN error code string.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "BAD_REQUEST",
            Self::Unauthorized { .. } => "UNAUTHORIZED",
            Self::Forbidden { .. } => "FORBIDDEN",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::Conflict { .. } => "CONFLICT",
            Self::PayloadTooLarge { .. } | Self::QuotaExceeded { .. } => "PAYLOAD_TOO_LARGE",
            Self::Validation { .. } | Self::SchemaInvalid { .. } => "VALIDATION_ERROR",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Provider { .. } => "PROVIDER_ERROR",
            Self::Unavailable { .. } => "UNAVAILABLE",
            Self::ProviderTimeout { .. } => "PROVIDER_TIMEOUT",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::BadRequest { message, .. }
            | Self::Unauthorized { message, .. }
            | Self::Forbidden { message, .. }
            | Self::NotFound { message }
            | Self::MethodNotAllowed { message }
            | Self::Conflict { message }
            | Self::QuotaExceeded { message, .. }
            | Self::Validation { message }
            | Self::SchemaInvalid { message, .. }
            | Self::Provider { message }
            | Self::Unavailable { message }
            | Self::ProviderTimeout { message } => message.clone(),
            Self::PayloadTooLarge { limit } => format!("request body exceeds {limit} bytes"),
            Self::RateLimited { retry_after, .. } => {
                format!("rate limit exceeded; retry after {retry_after} s")
            }
        }
    }

    fn details(&self) -> Option<Value> {
        match self {
            Self::Forbidden { reasons, .. } => Some(json!({ "reasons": reasons })),
            Self::RateLimited { retry_after, .. } => Some(json!({ "retry_after": retry_after })),
            Self::PayloadTooLarge { limit } | Self::QuotaExceeded { limit, .. } => {
                Some(json!({ "limit_bytes": limit }))
            }
            Self::SchemaInvalid { violations, .. } => Some(json!({ "violations": violations })),
            _ => None,
        }
    }

    /// The inner `{"code","message","corr_id","details"?}` object.
    pub fn shape(&self, corr_id: &str) -> Value {
        let mut inner = json!({
            "code": self.code(),
            "message": self.message(),
            "corr_id": corr_id,
        });
        if let (Some(details), Some(obj)) = (self.details(), inner.as_object_mut()) {
            obj.insert("details".into(), details);
        }
        inner
    }

    /// The REST error body `{"error": {...}}`.
    pub fn body(&self, corr_id: &str) -> Value {
        json!({ "error": self.shape(corr_id) })
    }

    /// JSON-RPC error code used when the same outcome is reported on an MCP route.
    pub fn jsonrpc_code(&self) -> i64 {
        match self {
            Self::BadRequest { jsonrpc_code, .. } => *jsonrpc_code,
            Self::Unauthorized { .. } => -32001,
            Self::Forbidden { .. } => -32003,
            Self::NotFound { .. } => -32601,
            Self::Conflict { .. } => -32009,
            Self::PayloadTooLarge { .. } | Self::QuotaExceeded { .. } => -32600,
            Self::Validation { .. } | Self::SchemaInvalid { .. } => -32602,
            Self::RateLimited { .. } => -32029,
            _ => -32603,
        }
    }

    /// The JSON-RPC error response for request `id`; `data` carries the DESIGN shape.
    pub fn jsonrpc_body(&self, id: &Value, corr_id: &str) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": self.jsonrpc_code(),
                "message": self.message(),
                "data": self.shape(corr_id),
            }
        })
    }

    /// Extra response headers this outcome requires (`Retry-After`, `RateLimit-*`, and for a
    /// denial caused by missing scopes the RFC 6750 `insufficient_scope` challenge the MCP
    /// authorization spec asks for, so a client can step up its token).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Forbidden { reasons, .. } if reasons.iter().any(|r| r.starts_with("missing_scope:")) => {
                let scopes: Vec<&str> = reasons.iter().filter_map(|r| r.strip_prefix("missing_scope:")).collect();
                vec![(
                    "www-authenticate",
                    format!("Bearer error=\"insufficient_scope\", scope=\"{}\"", scopes.join(" ")),
                )]
            }
            Self::RateLimited { retry_after, limit, remaining, reset } => vec![
                ("retry-after", retry_after.to_string()),
                ("ratelimit-limit", limit.to_string()),
                ("ratelimit-remaining", remaining.to_string()),
                ("ratelimit-reset", reset.to_string()),
            ],
            _ => Vec::new(),
        }
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_body_lists_reasons() {
        let e = GatewayError::Forbidden { message: "no".into(), reasons: vec!["r1".into()] };
        let b = e.body("c1");
        assert_eq!(e.status(), 403);
        assert_eq!(b["error"]["code"], "FORBIDDEN");
        assert_eq!(b["error"]["corr_id"], "c1");
        assert_eq!(b["error"]["details"]["reasons"][0], "r1");
    }

    #[test]
    fn missing_scope_denial_challenges_for_insufficient_scope() {
        let e = GatewayError::Forbidden {
            message: "no".into(),
            reasons: vec!["invoke-mcp-tools".into(), "missing_scope:mcp.demo".into()],
        };
        assert_eq!(
            e.headers(),
            vec![("www-authenticate", "Bearer error=\"insufficient_scope\", scope=\"mcp.demo\"".to_string())]
        );
        let plain = GatewayError::Forbidden { message: "no".into(), reasons: vec!["default_deny".into()] };
        assert!(plain.headers().is_empty());
    }

    #[test]
    fn rate_limited_carries_headers_and_jsonrpc_shape() {
        let e = GatewayError::RateLimited { retry_after: 1, limit: 10, remaining: 0, reset: 1 };
        assert!(e.headers().iter().any(|(k, v)| *k == "retry-after" && v == "1"));
        let b = e.jsonrpc_body(&json!(7), "c");
        assert_eq!(b["id"], 7);
        assert_eq!(b["error"]["data"]["code"], "RATE_LIMITED");
    }
}
