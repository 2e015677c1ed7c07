//! Configuration of the built-in HTTP providers (Pipedrive, Google Ads).

use serde::Deserialize;

/// A secret string (developer tokens). Never printed by `Debug`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// Where the built-in HTTP providers live and the non-per-call settings they need. Per-call
/// credentials (Pipedrive API token, Google OAuth access token) come from the broker as a
/// [`super::Credential`], never from here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProvidersConfig {
    /// Pipedrive base URL override (tests point it at a local fake), e.g.
    /// `http://127.0.0.1:9000/api/v1`. When unset, `https://{company_domain}.pipedrive.com/api/v1`.
    #[serde(default)]
    pub pipedrive_base_url: Option<String>,
    /// The Pipedrive company subdomain (`acme` for `acme.pipedrive.com`). Env
    /// `PIPEDRIVE_COMPANY_DOMAIN`. Required unless `pipedrive_base_url` is set.
    #[serde(default)]
    pub pipedrive_company_domain: String,
    /// Google Ads REST base URL, without version. Default `https://googleads.googleapis.com`.
    #[serde(default = "default_google_ads_base_url")]
    pub google_ads_base_url: String,
    /// Google Ads API version path segment, `v` followed by digits. Default `v21`.
    #[serde(default = "default_google_ads_api_version")]
    pub google_ads_api_version: String,
    /// Google Ads developer token, sent as the `developer-token` header.
    #[serde(default)]
    pub google_ads_developer_token: Secret,
    /// Manager account id sent as `login-customer-id` (dashes allowed, stripped) when calls go
    /// through a manager account.
    #[serde(default)]
    pub google_ads_login_customer_id: Option<String>,
    /// Customer id used when the tool input has no `customer_id` (dashes allowed, stripped).
    #[serde(default)]
    pub google_ads_customer_id: Option<String>,
    /// Where manifest-described HTTP tools may connect (the built-in providers' base URLs
    /// and the URLs a credential is bound to are operator choices and not checked here).
    #[serde(default)]
    pub egress: EgressConfig,
}

/// The egress address policy of manifest-described HTTP tools (`providers.http.egress`),
/// judged on the addresses a host resolves to, at connect time, on the address connected to.
/// Loopback, link-local (169.254/16, fe80::/10), private (RFC 1918, fc00::/7), CGNAT
/// (100.64/10), unspecified, broadcast, multicast and other non-public ranges are refused
/// unless `allow` covers them; the gateway's own listeners and cloud metadata addresses
/// (169.254.169.254, fd00:ec2::254, …) only when `allow` names them exactly (`ip:port` for a
/// listener, the bare IP for metadata). Redirects are never followed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Destinations reachable besides public addresses: host names as a manifest writes them
    /// (`crm.internal`, `crm.internal:8443`: whatever they resolve to), IP addresses
    /// (`10.1.2.3`, `10.1.2.3:8080`, `[fd00::1]:443`) and CIDR blocks (`10.0.0.0/8`,
    /// `fd00::/8`, any port). Empty by default: nothing private.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Whether public addresses not on `allow` are reachable. `false`: only `allow` is.
    #[serde(default = "default_allow_public")]
    pub allow_public: bool,
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig { allow: Vec::new(), allow_public: default_allow_public() }
    }
}

fn default_allow_public() -> bool {
    true
}

impl Default for HttpProvidersConfig {
    fn default() -> Self {
        Self {
            pipedrive_base_url: None,
            pipedrive_company_domain: String::new(),
            google_ads_base_url: default_google_ads_base_url(),
            google_ads_api_version: default_google_ads_api_version(),
            google_ads_developer_token: Secret::default(),
            google_ads_login_customer_id: None,
            google_ads_customer_id: None,
            egress: EgressConfig::default(),
        }
    }
}

fn default_google_ads_base_url() -> String {
    "https://googleads.googleapis.com".to_owned()
}

fn default_google_ads_api_version() -> String {
    "v21".to_owned()
}
