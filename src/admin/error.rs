//! The admin listener's refusals: one typed error, mapped once to status, DESIGN error code,
//! outcome label and challenge headers. Messages never carry a credential.

use serde_json::{json, Value};

use crate::enforce::Outcome;

/// Why an admin request is refused.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminError {
    /// 400: a singleton header sent twice, a Host that is not text.
    BadRequest { message: String },
    /// 401: no credential (`presented: false`) or one that does not verify. `reason` is a
    /// short label for logs and records.
    Unauthenticated { presented: bool, reason: &'static str },
    /// 403: a `Host` or `Origin` this listener does not answer (DNS rebinding, CSRF).
    HostRefused { what: &'static str },
    /// 403: authenticated, but not allowed (no admin role, approving one's own hold).
    Forbidden { message: String, reasons: Vec<String> },
    /// 404: unknown route or hold.
    NotFound { message: String },
    /// 405: this route takes another method.
    MethodNotAllowed { allowed: &'static str },
    /// 413: a body over `limit` bytes (a shadow bundle).
    PayloadTooLarge { limit: usize },
    /// 422: a candidate policy that does not compile or fails its tests.
    Invalid { message: String, details: Value },
    /// 415: a POST without `Content-Type: application/json` (simple cross-site requests).
    UnsupportedMediaType,
    /// 503: the state store cannot answer.
    Unavailable { message: String },
}

impl AdminError {
    pub fn status(&self) -> u16 {
        match self {
            AdminError::BadRequest { .. } => 400,
            AdminError::Unauthenticated { .. } => 401,
            AdminError::HostRefused { .. } | AdminError::Forbidden { .. } => 403,
            AdminError::NotFound { .. } => 404,
            AdminError::MethodNotAllowed { .. } => 405,
            AdminError::PayloadTooLarge { .. } => 413,
            AdminError::UnsupportedMediaType => 415,
            AdminError::Invalid { .. } => 422,
            AdminError::Unavailable { .. } => 503,
        }
    }

    /// The DESIGN error code.
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::BadRequest { .. } => "BAD_REQUEST",
            AdminError::Unauthenticated { .. } => "UNAUTHORIZED",
            AdminError::HostRefused { .. } | AdminError::Forbidden { .. } => "FORBIDDEN",
            AdminError::NotFound { .. } => "NOT_FOUND",
            AdminError::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            AdminError::PayloadTooLarge { .. } => "PAYLOAD_TOO_LARGE",
            AdminError::Invalid { .. } => "VALIDATION_ERROR",
            AdminError::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            AdminError::Unavailable { .. } => "UNAVAILABLE",
        }
    }

    /// The outcome label of its audit record.
    pub fn outcome(&self) -> Outcome {
        match self {
            AdminError::BadRequest { .. } | AdminError::UnsupportedMediaType | AdminError::Invalid { .. } => {
                Outcome::Invalid
            }
            AdminError::PayloadTooLarge { .. } => Outcome::TooLarge,
            AdminError::Unauthenticated { .. } => Outcome::Unauthenticated,
            AdminError::HostRefused { .. } => Outcome::HostRefused,
            AdminError::Forbidden { .. } => Outcome::Denied,
            AdminError::NotFound { .. } => Outcome::NotFound,
            AdminError::MethodNotAllowed { .. } => Outcome::MethodNotAllowed,
            AdminError::Unavailable { .. } => Outcome::Unavailable,
        }
    }

    /// Reasons for the record and `details.reasons`.
    pub fn reasons(&self) -> Vec<String> {
        match self {
            AdminError::Unauthenticated { reason, .. } => vec![format!("admin_auth:{reason}")],
            AdminError::HostRefused { what } => vec![(*what).to_string()],
            AdminError::Forbidden { reasons, .. } => reasons.clone(),
            _ => vec![],
        }
    }

    fn message(&self) -> String {
        match self {
            AdminError::BadRequest { message }
            | AdminError::Forbidden { message, .. }
            | AdminError::NotFound { message }
            | AdminError::Invalid { message, .. }
            | AdminError::Unavailable { message } => message.clone(),
            AdminError::PayloadTooLarge { limit } => format!("the body is over {limit} bytes"),
            AdminError::Unauthenticated { presented: false, .. } => {
                "the admin API needs a credential: Authorization: Bearer <admin token or JWT with an admin role>".into()
            }
            AdminError::Unauthenticated { reason: "unconfigured", .. } => {
                "no admin credential can be valid: authentication is disabled and no admin token is configured".into()
            }
            AdminError::Unauthenticated { .. } => "invalid admin credential".into(),
            AdminError::HostRefused { what: "origin" } => "Origin not allowed".into(),
            AdminError::HostRefused { .. } => "Host not allowed".into(),
            AdminError::MethodNotAllowed { allowed } => format!("use {allowed}"),
            AdminError::UnsupportedMediaType => "admin POST requests must be Content-Type: application/json".into(),
        }
    }

    /// The DESIGN error body.
    pub fn body(&self, corr_id: &str) -> Value {
        let mut inner = json!({"code": self.code(), "message": self.message(), "corr_id": corr_id});
        if let AdminError::Forbidden { reasons, .. } = self {
            inner["details"] = json!({ "reasons": reasons });
        }
        if let AdminError::Invalid { details, .. } = self {
            inner["details"] = details.clone();
        }
        json!({ "error": inner })
    }

    /// Extra headers: the RFC 6750 challenge of a 401, `Allow` of a 405.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            AdminError::Unauthenticated { presented: false, .. } => {
                vec![("www-authenticate", "Bearer realm=\"fastmcp-admin\"".into())]
            }
            AdminError::Unauthenticated { .. } => {
                vec![("www-authenticate", "Bearer realm=\"fastmcp-admin\", error=\"invalid_token\"".into())]
            }
            AdminError::MethodNotAllowed { allowed } => vec![("allow", (*allowed).to_string())],
            _ => vec![],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_the_error_shape() {
        let e = AdminError::Unauthenticated { presented: false, reason: "missing" };
        assert_eq!((e.status(), e.code()), (401, "UNAUTHORIZED"));
        assert!(e.headers()[0].1.starts_with("Bearer "));
        let body = AdminError::Forbidden { message: "no".into(), reasons: vec!["four_eyes".into()] }.body("c1");
        assert_eq!(body["error"]["details"]["reasons"][0], "four_eyes");
        assert_eq!(body["error"]["corr_id"], "c1");
        assert_eq!(AdminError::UnsupportedMediaType.status(), 415);
        assert_eq!(AdminError::HostRefused { what: "origin" }.outcome(), Outcome::HostRefused);
        let wrong = AdminError::Unauthenticated { presented: true, reason: "invalid" };
        assert!(wrong.headers()[0].1.contains("invalid_token"));
    }
}
