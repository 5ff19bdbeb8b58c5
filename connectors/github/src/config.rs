//! Connection settings and GitHub API base URL parsing.
//!
//! github.com is served at `https://api.github.com`; GitHub Enterprise Server
//! serves the same REST API under `https://<host>/api/v3`. Tokens are only ever
//! sent to the base URL chosen here. An Enterprise Server base is a URL the
//! tenant chose, so it passes the HTTP client's address policy: https only, and
//! no private or internal address unless the operator allows its network.

use patchbay_core::{Error, Result};
use patchbay_http::HttpClient;
use serde::{Deserialize, Serialize};
use url::Url;

/// The API base of github.com.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// How the connection's token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// An OAuth App user token from the authorization-code flow.
    Oauth,
    /// A personal access token typed into the connect form.
    Pat,
}

/// Non-secret settings of a GitHub connection, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitHubConfig {
    /// The REST API base without a trailing slash, e.g. `https://api.github.com`.
    pub api_url: String,
    /// Whether the token came from OAuth or a personal access token.
    pub auth_kind: TokenKind,
    /// The GitHub login of the token's owner, filled by validation.
    #[serde(default)]
    pub login: Option<String>,
    /// The numeric GitHub user id of the token's owner, filled by validation.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// Scopes GitHub reports for the token (empty for fine-grained tokens).
    #[serde(default)]
    pub granted_scopes: Vec<String>,
}

impl GitHubConfig {
    /// Settings for a new connection, before validation fills the account.
    pub fn new(api_url: String, auth_kind: TokenKind, granted_scopes: Vec<String>) -> Self {
        Self {
            api_url,
            auth_kind,
            login: None,
            user_id: None,
            granted_scopes,
        }
    }
}

/// Normalises an API base URL; blank means github.com.
///
/// `https://github.com` maps to `https://api.github.com`, and an Enterprise Server
/// URL without a path gets `/api/v3` appended and must pass `http`'s address
/// policy ([`HttpClient::check_tenant_url`]); refusals name the `api_url` field.
pub fn normalize_api_url(input: Option<&str>, http: &HttpClient) -> Result<String> {
    let Some(input) = input.map(str::trim).filter(|input| !input.is_empty()) else {
        return Ok(DEFAULT_API_URL.to_owned());
    };
    let invalid = |reason: &str| {
        Error::invalid_config("api_url", format!("GitHub API URL `{input}` {reason}")).with_hint(
            "leave api_url empty for github.com, or give your GitHub Enterprise Server API base \
             such as https://ghe.example.com/api/v3",
        )
    };
    let mut url =
        Url::parse(input).map_err(|error| invalid(&format!("is not a valid URL: {error}")))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(invalid("must use https"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not carry a query string or fragment"));
    }
    let host = url
        .host_str()
        .map(|host| host.trim_end_matches('.').to_ascii_lowercase())
        .ok_or_else(|| invalid("has no host"))?;
    if host == "github.com" || host == "www.github.com" || host == "api.github.com" {
        if url.scheme() != "https" {
            return Err(invalid("must use https"));
        }
        return Ok(DEFAULT_API_URL.to_owned());
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path("/api/v3");
    }
    let normalized = url.as_str().trim_end_matches('/').to_owned();
    http.check_tenant_url("api_url", &normalized)?;
    Ok(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use patchbay_http::HttpConfig;

    fn normalize(input: Option<&str>) -> Result<String> {
        normalize_api_url(input, &HttpClient::new(HttpConfig::default()).unwrap())
    }

    #[test]
    fn blank_and_github_com_mean_the_public_api() {
        assert_eq!(normalize(None).unwrap(), DEFAULT_API_URL);
        assert_eq!(normalize(Some("  ")).unwrap(), DEFAULT_API_URL);
        assert_eq!(
            normalize(Some("https://github.com/")).unwrap(),
            DEFAULT_API_URL
        );
        assert_eq!(
            normalize(Some("https://api.github.com")).unwrap(),
            DEFAULT_API_URL
        );
    }

    #[test]
    fn enterprise_bases_are_normalised_without_a_trailing_slash() {
        assert_eq!(
            normalize(Some("https://ghe.example.com/api/v3/")).unwrap(),
            "https://ghe.example.com/api/v3"
        );
        assert_eq!(
            normalize(Some("https://ghe.example.com")).unwrap(),
            "https://ghe.example.com/api/v3"
        );
    }

    #[test]
    fn insecure_or_odd_bases_are_rejected_naming_api_url() {
        for bad in [
            "http://ghe.example.com/api/v3",
            "ghe.example.com",
            "https://user:pw@ghe.example.com/api/v3",
            "https://ghe.example.com/api/v3?x=1",
        ] {
            let error = normalize(Some(bad)).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert_eq!(error.field(), Some("api_url"), "{bad}");
        }
    }
}
