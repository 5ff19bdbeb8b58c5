//! Non-secret settings of a Grafana connection and the checks on the Grafana URL
//! and webhook header names a tenant types.
//!
//! The Grafana URL is tenant-supplied (Grafana Cloud `https://<stack>.grafana.net`
//! or a self-hosted server), so it passes the HTTP client's address policy at
//! connect time and again on every request: https only (plain http needs the
//! tenant's `allow_http` and an operator-allowlisted address), and no loopback,
//! private, link-local or metadata address unless the operator allows its network
//! with `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`.

use patchbay_core::{Error, Result};
use patchbay_http::HttpClient;
use serde::{Deserialize, Serialize};
use url::Url;

/// The header Grafana 12+ puts the HMAC signature in unless configured otherwise.
pub const DEFAULT_SIGNATURE_HEADER: &str = "X-Grafana-Alerting-Signature";

/// How the Grafana contact point proves its deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookAuthMode {
    /// Grafana's HMAC-SHA256 signature (Grafana 12.0+), keyed with the connection's
    /// webhook secret.
    #[default]
    Hmac,
    /// `Authorization: Bearer <webhook secret>`, for Grafana versions without HMAC.
    Bearer,
}

impl WebhookAuthMode {
    /// The name used in forms and settings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hmac => "hmac",
            Self::Bearer => "bearer",
        }
    }
}

/// Non-secret settings of a Grafana connection, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrafanaConfig {
    /// The Grafana URL without a trailing slash, e.g. `https://acme.grafana.net`.
    pub base_url: String,
    /// The Grafana Cloud stack slug (`acme` for `acme.grafana.net`), if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_slug: Option<String>,
    /// How webhook deliveries are authenticated.
    #[serde(default)]
    pub webhook_auth: WebhookAuthMode,
    /// The header carrying the HMAC signature.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// The header carrying the signed Unix timestamp, when the contact point sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// The organisation id, from validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<i64>,
    /// The organisation name, from validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// The service account's login, from validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    /// The Grafana version `/api/health` reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

fn default_signature_header() -> String {
    DEFAULT_SIGNATURE_HEADER.to_owned()
}

impl GrafanaConfig {
    /// Settings for a new connection, before validation fills in the account.
    pub fn new(base_url: String) -> Self {
        let stack_slug = stack_slug(&base_url);
        Self {
            base_url,
            stack_slug,
            webhook_auth: WebhookAuthMode::Hmac,
            signature_header: default_signature_header(),
            timestamp_header: None,
            org_id: None,
            org_name: None,
            login: None,
            version: None,
        }
    }
}

/// `acme` for `https://acme.grafana.net`.
fn stack_slug(base_url: &str) -> Option<String> {
    let url = Url::parse(base_url).ok()?;
    let host = url.host_str()?;
    let slug = host.strip_suffix(".grafana.net")?;
    (!slug.is_empty() && !slug.contains('.')).then(|| slug.to_owned())
}

const URL_HINT: &str = "give your Grafana URL, such as https://your-stack.grafana.net for Grafana \
     Cloud or https://grafana.example.com for a self-hosted server";

/// Normalises the Grafana URL and checks it against `http`'s address policy.
///
/// Trailing slashes go; a sub-path (Grafana served under `/grafana`) stays. Plain
/// http is refused unless `allow_http` is set, and then still needs the operator
/// to allow the address (the address policy admits plain http only to allowlisted
/// networks). Every refusal names the `base_url` field; policy refusals also name
/// the host and the rule.
pub fn normalize_base_url(input: &str, allow_http: bool, http: &HttpClient) -> Result<String> {
    let input = input.trim();
    let invalid = |reason: &str| {
        Error::invalid_config("base_url", format!("the Grafana URL {reason}")).with_hint(URL_HINT)
    };
    if input.is_empty() {
        return Err(invalid("is required"));
    }
    let url =
        Url::parse(input).map_err(|error| invalid(&format!("is not a valid URL: {error}")))?;
    if url.scheme() == "http" && !allow_http {
        return Err(Error::invalid_config(
            "base_url",
            format!(
                "refused {}: the Grafana URL must use https; plain http needs allow_http",
                shown(&url)
            ),
        )
        .with_hint(
            "use your Grafana's https address; for a self-hosted Grafana on a private network \
             without TLS, set allow_http and ask the operator to allow its address in \
             PATCHBAY_ALLOWED_PRIVATE_NETWORKS",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not carry a query string or fragment"));
    }
    let checked = http.check_tenant_url("base_url", url.as_str())?;
    Ok(checked.as_str().trim_end_matches('/').to_owned())
}

/// The URL without user info, query or fragment, as refusals show it.
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

/// Headers a contact point cannot be told to sign into (Grafana restricts these
/// for custom headers, and the signature must not replace them).
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-type",
    "content-length",
    "user-agent",
    "cookie",
];

/// Checks a header name typed into the connect form (`field` names it).
pub fn check_header_name(field: &str, name: &str) -> Result<String> {
    let name = name.trim();
    let valid = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
    if !valid {
        return Err(Error::invalid_config(
            field,
            format!("`{field}` must be an HTTP header name of letters, digits, `-` and `_`"),
        )
        .with_hint(format!(
            "use the header name set in the contact point, e.g. {DEFAULT_SIGNATURE_HEADER}"
        )));
    }
    if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(Error::invalid_config(
            field,
            format!("`{field}` cannot be the reserved header `{name}`"),
        )
        .with_hint(format!(
            "use the header name set in the contact point, e.g. {DEFAULT_SIGNATURE_HEADER}"
        )));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use patchbay_http::HttpConfig;

    fn normalize(input: &str, allow_http: bool) -> Result<String> {
        normalize_base_url(
            input,
            allow_http,
            &HttpClient::new(HttpConfig::default()).unwrap(),
        )
    }

    #[test]
    fn cloud_and_self_hosted_urls_are_kept_without_a_trailing_slash() {
        assert_eq!(
            normalize("https://acme.grafana.net/", false).unwrap(),
            "https://acme.grafana.net"
        );
        assert_eq!(
            normalize(" https://ops.example.com/grafana/ ", false).unwrap(),
            "https://ops.example.com/grafana"
        );
        assert_eq!(
            GrafanaConfig::new("https://acme.grafana.net".into()).stack_slug,
            Some("acme".to_owned())
        );
        assert_eq!(
            GrafanaConfig::new("https://ops.example.com".into()).stack_slug,
            None
        );
    }

    #[test]
    fn odd_urls_are_refused_naming_base_url() {
        for bad in [
            "",
            "acme.grafana.net",
            "ftp://acme.grafana.net",
            "https://user:pw@acme.grafana.net",
            "https://acme.grafana.net/?orgId=1",
        ] {
            let error = normalize(bad, false).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert_eq!(error.field(), Some("base_url"), "{bad}");
            assert!(!error.to_string().contains("pw@"), "{error}");
        }
    }

    #[test]
    fn header_names_are_checked() {
        assert_eq!(
            check_header_name("signature_header", " X-Grafana-Alert-Signature ").unwrap(),
            "X-Grafana-Alert-Signature"
        );
        for bad in ["", "X Bad", "Authorization", "x:y", "Content-Type"] {
            let error = check_header_name("signature_header", bad).unwrap_err();
            assert_eq!(error.field(), Some("signature_header"), "{bad}");
        }
    }
}
