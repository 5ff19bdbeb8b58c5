//! Connection settings: which Confluence a connection reads, and how its URLs are
//! formed.
//!
//! Confluence Cloud is reached through Atlassian's API gateway,
//! `https://api.atlassian.com/ex/confluence/{cloudId}`, because 3LO tokens are
//! refused on `{site}.atlassian.net`; the site itself (`base_url`) is only used to
//! recognise page URLs. Data Center is reached at the base URL the tenant typed,
//! which passes the HTTP client's address policy when the connection is made and
//! on every request.

use patchbay_core::{Error, Result};
use patchbay_http::HttpClient;
use serde::{Deserialize, Serialize};
use url::Url;

/// Atlassian's API gateway, where Cloud requests with 3LO tokens go.
pub const CLOUD_API_GATEWAY: &str = "https://api.atlassian.com";

/// How the connection authenticates, and so which deployment it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// Confluence Cloud through Atlassian OAuth 2.0 (3LO).
    Oauth,
    /// Confluence Data Center (or Server) with a personal access token.
    Pat,
}

/// Non-secret settings of a Confluence connection, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfluenceConfig {
    /// Cloud (OAuth) or Data Center (PAT).
    pub auth_type: AuthType,
    /// The site's own URL without a trailing slash: `https://acme.atlassian.net`
    /// (Cloud, filled by validation) or the Data Center base URL the tenant gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The Cloud site's id from `accessible-resources` (Cloud only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_id: Option<String>,
    /// The Cloud site's name (Cloud only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_name: Option<String>,
    /// The site named in the OAuth start option `site` (URL, host, name or cloud id),
    /// used to choose among several accessible sites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_site: Option<String>,
    /// The connected user's display name, filled by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_display_name: Option<String>,
    /// The connected user's account id (Cloud) or user key / name (Data Center).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_account_id: Option<String>,
    /// Scopes granted to the OAuth app (Cloud only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_scopes: Vec<String>,
}

impl ConfluenceConfig {
    /// Settings of a Data Center connection at `base_url`.
    pub fn data_center(base_url: String) -> Self {
        Self {
            auth_type: AuthType::Pat,
            base_url: Some(base_url),
            cloud_id: None,
            site_name: None,
            requested_site: None,
            user_display_name: None,
            user_account_id: None,
            granted_scopes: Vec::new(),
        }
    }

    /// Settings of a Cloud connection before validation chooses its site.
    pub fn cloud(requested_site: Option<String>, granted_scopes: Vec<String>) -> Self {
        Self {
            auth_type: AuthType::Oauth,
            base_url: None,
            cloud_id: None,
            site_name: None,
            requested_site,
            user_display_name: None,
            user_account_id: None,
            granted_scopes,
        }
    }

    /// Whether this is a Cloud connection.
    pub fn is_cloud(&self) -> bool {
        self.auth_type == AuthType::Oauth
    }
}

/// Normalises the Data Center base URL typed into the connect form: `https://` is
/// assumed when no scheme is given, a trailing slash is dropped, and the URL must
/// pass `http`'s address policy ([`HttpClient::check_tenant_url`]). Refusals name
/// the `base_url` field, the host and the rule.
pub fn normalize_base_url(input: &str, http: &HttpClient) -> Result<String> {
    let input = input.trim();
    let invalid = |reason: &str| {
        Error::invalid_config("base_url", format!("Confluence base URL {reason}")).with_hint(
            "give the address you open Confluence at, such as https://confluence.yourcompany.com",
        )
    };
    if input.is_empty() {
        return Err(Error::invalid_config(
            "base_url",
            "Confluence baseUrl is required for PAT auth",
        )
        .with_hint("enter the Base URL of your Confluence Data Center, such as https://confluence.yourcompany.com"));
    }
    let with_scheme = if input.contains("://") {
        input.to_owned()
    } else {
        format!("https://{input}")
    };
    let parsed = Url::parse(&with_scheme)
        .map_err(|error| invalid(&format!("is not a valid URL: {error}")))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("must not carry a query string or fragment"));
    }
    if parsed
        .host_str()
        .is_some_and(|host| host.to_ascii_lowercase().ends_with(".atlassian.net"))
    {
        return Err(Error::invalid_config(
            "base_url",
            "Confluence Cloud sites (*.atlassian.net) connect through Atlassian OAuth, not with a personal access token",
        )
        .with_hint("use Connect with Atlassian; the Data Center form is for self-hosted Confluence"));
    }
    let normalized = with_scheme.trim_end_matches('/').to_owned();
    http.check_tenant_url("base_url", &normalized)?;
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use patchbay_http::HttpConfig;

    fn normalize(input: &str) -> Result<String> {
        normalize_base_url(input, &HttpClient::new(HttpConfig::default()).unwrap())
    }

    #[test]
    fn https_is_assumed_and_trailing_slashes_dropped() {
        assert_eq!(
            normalize("confluence.example.com/").unwrap(),
            "https://confluence.example.com"
        );
        assert_eq!(
            normalize(" https://wiki.example.com/confluence/ ").unwrap(),
            "https://wiki.example.com/confluence"
        );
    }

    #[test]
    fn empty_odd_and_cloud_urls_are_refused_naming_base_url() {
        for bad in [
            "",
            "https://wiki.example.com/?x=1",
            "https://acme.atlassian.net",
            "ftp://wiki.example.com",
            "http://wiki.example.com",
        ] {
            let error = normalize(bad).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert_eq!(error.field(), Some("base_url"), "{bad}");
        }
        assert_eq!(
            normalize("").unwrap_err().message(),
            "Confluence baseUrl is required for PAT auth"
        );
    }
}
