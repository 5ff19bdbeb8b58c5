//! Requests to Confluence (Cloud through Atlassian's API gateway, Data Center at
//! its base URL) and the mapping of its answers to errors, with the guide's
//! wording where the guide names the cause.

use patchbay_core::{Error, ErrorKind, Result, SecretString};
use patchbay_http::{HttpClient, Method, Response};
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::config::{ConfluenceConfig, CLOUD_API_GATEWAY};
use crate::CONNECTOR_ID;

/// The guide's message for a token Confluence no longer accepts.
pub const CREDENTIALS_EXPIRED: &str = "Confluence credentials expired";
/// The guide's remedy for [`CREDENTIALS_EXPIRED`].
pub const RECONNECT_HINT: &str = "Reconnect via the Connectors page";
/// The guide's message for a personal access token that fails validation.
pub const PAT_INVALID: &str = "Failed to validate Confluence PAT";
/// The guide's remedy for [`PAT_INVALID`].
pub const PAT_HINT: &str = "Verify PAT is valid and not expired";

/// Atlassian's list of the sites a 3LO token may reach.
pub const ACCESSIBLE_RESOURCES_URL: &str =
    "https://api.atlassian.com/oauth/token/accessible-resources";

/// One site from `accessible-resources`.
#[derive(Debug, Clone, Deserialize)]
pub struct Site {
    /// The cloud id used in gateway URLs.
    pub id: String,
    /// The site's name.
    #[serde(default)]
    pub name: String,
    /// The site's URL, e.g. `https://acme.atlassian.net`.
    #[serde(default)]
    pub url: String,
    /// The scopes the token holds on this site.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Site {
    /// Whether the token can use Confluence on this site (any Confluence scope).
    pub fn has_confluence(&self) -> bool {
        self.scopes.is_empty() || self.scopes.iter().any(|scope| scope.contains("confluence"))
    }
}

/// Talks to one Confluence with one token.
pub struct ConfluenceClient<'a> {
    http: &'a HttpClient,
    config: &'a ConfluenceConfig,
    token: &'a SecretString,
}

impl std::fmt::Debug for ConfluenceClient<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfluenceClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl<'a> ConfluenceClient<'a> {
    /// A client for the connection's settings and token.
    pub fn new(
        http: &'a HttpClient,
        config: &'a ConfluenceConfig,
        token: &'a SecretString,
    ) -> Self {
        Self {
            http,
            config,
            token,
        }
    }

    /// The connection's settings.
    pub fn config(&self) -> &ConfluenceConfig {
        self.config
    }

    /// The site's own URL (Cloud site or Data Center base).
    pub fn site_url(&self) -> Result<&str> {
        self.config.base_url.as_deref().ok_or_else(|| {
            Error::invalid_config(
                "site",
                "the Confluence site of this connection is not known yet",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint(RECONNECT_HINT)
        })
    }

    /// The root every REST path hangs under: the gateway's
    /// `…/ex/confluence/{cloudId}/wiki` on Cloud, the base URL on Data Center.
    fn root(&self) -> Result<String> {
        if self.config.is_cloud() {
            let cloud_id = self.config.cloud_id.as_deref().ok_or_else(|| {
                Error::invalid_config(
                    "site",
                    "the Confluence Cloud site of this connection is not chosen",
                )
                .with_connector(CONNECTOR_ID)
                .with_hint(RECONNECT_HINT)
            })?;
            Ok(format!("{CLOUD_API_GATEWAY}/ex/confluence/{cloud_id}/wiki"))
        } else {
            self.site_url().map(str::to_owned)
        }
    }

    /// `root` followed by `prefix` and percent-encoded `segments`.
    fn url_under(&self, prefix: &[&str], segments: &[&str]) -> Result<Url> {
        let mut url = Url::parse(&self.root()?).map_err(|error| {
            Error::invalid_config(
                "base_url",
                format!("stored Confluence URL is invalid: {error}"),
            )
            .with_connector(CONNECTOR_ID)
            .with_hint(RECONNECT_HINT)
        })?;
        url.path_segments_mut()
            .map_err(|()| {
                Error::invalid_config("base_url", "stored Confluence URL cannot take a path")
            })?
            .pop_if_empty()
            .extend(prefix)
            .extend(segments);
        Ok(url)
    }

    /// A REST v1 URL (`…/rest/api/<segments>`), on both deployments.
    pub fn v1_url(&self, segments: &[&str]) -> Result<Url> {
        self.url_under(&["rest", "api"], segments)
    }

    /// A REST v2 URL (`…/api/v2/<segments>`), Cloud only.
    pub fn v2_url(&self, segments: &[&str]) -> Result<Url> {
        self.url_under(&["api", "v2"], segments)
    }

    /// A URL on the site itself (Data Center short links `…/x/<code>`).
    pub fn site_path_url(&self, segments: &[&str]) -> Result<Url> {
        self.url_under(&[], segments)
    }

    fn request(&self, operation: &'static str, url: &Url) -> patchbay_http::RequestBuilder {
        let mut request = self
            .http
            .request(Method::GET, url.as_str())
            .connector(CONNECTOR_ID)
            .operation(operation)
            .header("Accept", "application/json")
            .bearer_auth(self.token);
        if !self.config.is_cloud() {
            request = request.tenant_url("base_url");
        }
        request
    }

    /// `GET url?query` as JSON; `what` names the resource in errors.
    pub async fn get_json(
        &self,
        operation: &'static str,
        url: Url,
        query: &[(&str, String)],
        what: &str,
    ) -> Result<Value> {
        let mut request = self.request(operation, &url);
        if !query.is_empty() {
            request = request.query(query);
        }
        let response = map_status(request.send().await?, what, self.config.is_cloud())?;
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        response.json()
    }

    /// One `GET` of a Data Center short link with redirects left unfollowed: the
    /// `Location` it redirects to, or `None` when the server answered directly.
    pub async fn redirect_target(&self, url: Url) -> Result<Option<String>> {
        let response = self.request("resolve_page_url", &url).send().await?;
        if response.status.is_redirection() {
            return Ok(response.header("location").map(str::to_owned));
        }
        map_status(response, "short link", false).map(|_| None)
    }

    /// The sites the token may reach (`GET accessible-resources`), Cloud only.
    pub async fn accessible_resources(&self) -> Result<Vec<Site>> {
        let response = self
            .http
            .get(ACCESSIBLE_RESOURCES_URL)
            .connector(CONNECTOR_ID)
            .operation("accessible_resources")
            .header("Accept", "application/json")
            .bearer_auth(self.token)
            .send()
            .await?;
        map_status(response, "accessible-resources", true)?.json()
    }
}

/// Maps a Confluence answer: 401 is the guide's "Confluence credentials expired"
/// (an `auth_failed` the OAuth engine answers with a refresh on Cloud; on Data
/// Center nothing can be refreshed, so the person must reconnect), 403 names the
/// missing permission, 404 the resource; 429 (with `Retry-After`), 5xx and 400
/// keep the HTTP client's mapping with Confluence's own text.
pub fn map_status(response: Response, what: &str, cloud: bool) -> Result<Response> {
    if response.status.is_success() {
        return Ok(response);
    }
    let status = response.status.as_u16();
    let base = match response.with_connector(CONNECTOR_ID).error_for_status() {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let error = match status {
        401 => {
            let kind = if cloud {
                ErrorKind::AuthFailed
            } else {
                ErrorKind::NeedsReauth
            };
            Error::new(kind, CREDENTIALS_EXPIRED)
                .with_hint(format!("{RECONNECT_HINT} ({})", base.message()))
        }
        403 => Error::new(
            ErrorKind::PermissionDenied,
            format!("Confluence denied access to the {what}: {}", base.message()),
        )
        .with_hint(if cloud {
            "the Atlassian app needs the scopes read:page:confluence, read:space:confluence and \
             read:user:confluence (and search:confluence for CQL search), and the user must be able \
             to view the space"
        } else {
            "the user who owns the personal access token must be able to view this space or page"
        }),
        404 => Error::not_found(format!(
            "Confluence has no {what} at this address, or the connected user cannot see it"
        ))
        .with_hint("check the page id or URL, and that the connected user can view the page"),
        _ => return Err(base),
    };
    Err(error
        .with_connector(CONNECTOR_ID)
        .with_provider_status(status))
}
