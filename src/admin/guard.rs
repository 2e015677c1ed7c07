//! The headers-only checks of an admin request, before its credential is looked at:
//! singleton headers, `Host` and `Origin` (DNS rebinding, as on the gateway listener), the
//! route's method, and the content type of a POST.
//!
//! A browser sends a cross-site "simple" request (a form post, `fetch` with `no-cors`)
//! without a preflight, so the only things that stop one from acting are that it carries no
//! `Authorization` header and that its content type is `text/plain`, a form type or none:
//! a POST must say `application/json`, which no simple request can.

use http::{HeaderMap, Method};

use super::error::AdminError;
use super::routes::Route;
use crate::proxy::origin::HostPolicy;

/// Headers that must appear at most once on an admin request.
const SINGLETONS: &[&str] = &["host", "origin", "authorization", "content-type"];

/// What the admin listener needs from a request head, copied out of the session.
#[derive(Debug, Clone)]
pub struct Head {
    pub method: Method,
    pub path: String,
    /// The raw query string (only the audit stream reads one).
    pub query: Option<String>,
    pub headers: HeaderMap,
}

impl Head {
    fn text(&self, name: &str) -> Result<Option<&str>, AdminError> {
        match self.headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(Some)
                .map_err(|_| AdminError::BadRequest { message: format!("the {name} header is not text") }),
        }
    }

    /// The raw `Authorization` value.
    pub fn authorization(&self) -> Option<&[u8]> {
        self.headers.get("authorization").map(|v| v.as_bytes())
    }
}

/// Singleton headers, then `Host`, then `Origin`: any route.
pub fn check_origin(hosts: &HostPolicy, head: &Head) -> Result<(), AdminError> {
    if let Some(name) = SINGLETONS.iter().find(|h| head.headers.get_all(**h).iter().nth(1).is_some()) {
        return Err(AdminError::BadRequest { message: format!("more than one {name} header") });
    }
    let host = head.text("host")?;
    if !hosts.host_allowed(host) {
        return Err(AdminError::HostRefused { what: "host" });
    }
    if let Some(origin) = head.text("origin")? {
        if !hosts.origin_allowed(origin, host) {
            return Err(AdminError::HostRefused { what: "origin" });
        }
    }
    Ok(())
}

/// The route's method, and a POST's JSON content type.
pub fn check_shape(route: &Route, head: &Head) -> Result<(), AdminError> {
    let method = route.method();
    if head.method != method {
        return Err(AdminError::MethodNotAllowed { allowed: route.allow() });
    }
    if method == Method::POST && !is_json(head.text("content-type")?) {
        return Err(AdminError::UnsupportedMediaType);
    }
    Ok(())
}

/// `application/json`, with or without parameters.
fn is_json(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: Method, path: &str, pairs: &[(&str, &str)]) -> Head {
        let mut headers = HeaderMap::new();
        for (k, v) in pairs {
            headers.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        Head { method, path: path.into(), query: None, headers }
    }

    #[test]
    fn host_and_origin_like_the_gateway() {
        let hosts = HostPolicy::new("127.0.0.1:9901", &[]);
        let ok = head(Method::GET, "/admin/holds", &[("host", "127.0.0.1:9901")]);
        assert_eq!(check_origin(&hosts, &ok), Ok(()));
        let rebound = head(Method::GET, "/admin/holds", &[("host", "evil.example:9901")]);
        assert_eq!(check_origin(&hosts, &rebound), Err(AdminError::HostRefused { what: "host" }));
        let csrf = head(Method::POST, "/", &[("host", "localhost:9901"), ("origin", "https://evil.example")]);
        assert_eq!(check_origin(&hosts, &csrf), Err(AdminError::HostRefused { what: "origin" }));
        let twice = head(Method::GET, "/", &[("host", "localhost"), ("host", "evil.example")]);
        assert!(matches!(check_origin(&hosts, &twice), Err(AdminError::BadRequest { .. })));
        let named = HostPolicy::new("0.0.0.0:9901", &["admin.internal".into()]);
        assert!(check_origin(&named, &head(Method::GET, "/", &[("host", "admin.internal:9901")])).is_ok());
        assert!(check_origin(&named, &head(Method::GET, "/", &[("host", "gw.example.com")])).is_err());
    }

    #[test]
    fn a_post_must_be_json() {
        let r = Route::Reload;
        for ct in ["application/json", "application/json; charset=utf-8", "Application/JSON"] {
            assert_eq!(check_shape(&r, &head(Method::POST, "/", &[("content-type", ct)])), Ok(()), "{ct}");
        }
        for ct in ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "json"] {
            let h = head(Method::POST, "/", &[("content-type", ct)]);
            assert_eq!(check_shape(&r, &h), Err(AdminError::UnsupportedMediaType), "{ct}");
        }
        assert_eq!(check_shape(&r, &head(Method::POST, "/", &[])), Err(AdminError::UnsupportedMediaType));
        let get = head(Method::GET, "/", &[]);
        assert_eq!(check_shape(&r, &get), Err(AdminError::MethodNotAllowed { allowed: "POST" }));
        assert_eq!(check_shape(&Route::Holds, &get), Ok(()), "a GET needs no content type");
    }
}
