//! Non-secret settings of an Azure connection, the operator's endpoints (login
//! authority, Resource Manager, Graph, Log Analytics) and the tenant and id checks
//! that run before any value is put into a URL path.

use chrono::{DateTime, Utc};
use patchbay_core::{ConnectorEnv, Error, Result};
use patchbay_http::HttpClient;
use serde::{Deserialize, Serialize};
use url::Url;

/// The Microsoft Entra login authority of the public cloud.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Azure Resource Manager of the public cloud.
pub const DEFAULT_ARM: &str = "https://management.azure.com";
/// Microsoft Graph of the public cloud.
pub const DEFAULT_GRAPH: &str = "https://graph.microsoft.com";
/// The Log Analytics query API of the public cloud.
pub const DEFAULT_LOG_ANALYTICS: &str = "https://api.loganalytics.io";

/// Overrides the login authority (sovereign clouds, egress proxies, test fakes).
pub const AUTHORITY_VAR: &str = "AZURE_AUTHORITY_HOST";
/// Overrides the Azure Resource Manager base URL.
pub const ARM_VAR: &str = "AZURE_RESOURCE_MANAGER_URL";
/// Overrides the Microsoft Graph base URL.
pub const GRAPH_VAR: &str = "AZURE_GRAPH_URL";
/// Overrides the Log Analytics query API base URL.
pub const LOG_ANALYTICS_VAR: &str = "AZURE_LOG_ANALYTICS_URL";

/// The four services a connection talks to, as base URLs without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The login authority; tokens come from `<authority>/<tenant>/oauth2/v2.0/token`.
    pub authority: String,
    /// Azure Resource Manager.
    pub arm: String,
    /// Microsoft Graph.
    pub graph: String,
    /// The Log Analytics query API.
    pub log_analytics: String,
}

impl Default for Endpoints {
    fn default() -> Self {
        Self {
            authority: DEFAULT_AUTHORITY.to_owned(),
            arm: DEFAULT_ARM.to_owned(),
            graph: DEFAULT_GRAPH.to_owned(),
            log_analytics: DEFAULT_LOG_ANALYTICS.to_owned(),
        }
    }
}

impl Endpoints {
    /// The public-cloud endpoints, each replaced by its operator variable when set.
    /// A value must be https, or http to an address in `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`.
    pub fn from_env(env: &ConnectorEnv, http: &HttpClient) -> Result<Self> {
        let read = |var: &str, default: &str| -> Result<String> {
            match env.get(var) {
                None => Ok(default.to_owned()),
                Some(value) => {
                    let url = http.check_tenant_url(var, value).map_err(|error| {
                        error.with_hint(format!(
                            "set {var} to the https base URL of the service, e.g. {default}, or unset it"
                        ))
                    })?;
                    if url.query().is_some() || url.fragment().is_some() {
                        return Err(Error::invalid_config(
                            var,
                            format!("{var} must be a base URL without a query or fragment"),
                        ));
                    }
                    Ok(url.as_str().trim_end_matches('/').to_owned())
                }
            }
        };
        Ok(Self {
            authority: read(AUTHORITY_VAR, DEFAULT_AUTHORITY)?,
            arm: read(ARM_VAR, DEFAULT_ARM)?,
            graph: read(GRAPH_VAR, DEFAULT_GRAPH)?,
            log_analytics: read(LOG_ANALYTICS_VAR, DEFAULT_LOG_ANALYTICS)?,
        })
    }

    /// Endpoints that all point at one base URL (a test fake serving every API).
    pub fn all_at(base: &str) -> Self {
        let base = base.trim_end_matches('/').to_owned();
        Self {
            authority: base.clone(),
            arm: base.clone(),
            graph: base.clone(),
            log_analytics: base,
        }
    }

    /// The token endpoint of `tenant` (already checked by [`check_tenant`]).
    pub fn token_url(&self, tenant: &str) -> Result<Url> {
        join(&self.authority, &[tenant, "oauth2", "v2.0", "token"])
    }
}

/// `base` followed by percent-encoded `segments`.
pub fn join(base: &str, segments: &[&str]) -> Result<Url> {
    let mut url = Url::parse(base)
        .map_err(|error| Error::internal(format!("bad Azure base URL: {error}")))?;
    url.path_segments_mut()
        .map_err(|()| Error::internal("the Azure base URL cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// How the connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// A service principal's client credentials (client id and secret in a tenant).
    ServicePrincipal,
    /// A person's delegated grant (authorization code with PKCE).
    Oauth,
}

/// Non-secret settings of an Azure connection, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AzureConfig {
    /// Service principal or delegated OAuth.
    pub auth_type: AuthType,
    /// The directory (tenant) id or verified domain; for OAuth, the subscription's tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// The application (client) id of the service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The subscription queries run against: the one given, else the first enabled one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_id: Option<String>,
    /// The subscription's display name, filled by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_name: Option<String>,
    /// The tenant of the optional read-only principal queries use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_tenant_id: Option<String>,
    /// The client id of the optional read-only principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_client_id: Option<String>,
    /// When the client secret expires, when Microsoft Graph can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_expires_at: Option<DateTime<Utc>>,
    /// When the read-only principal's client secret expires, when Graph can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_secret_expires_at: Option<DateTime<Utc>>,
    /// Whether the main principal holds write permission on the subscription.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_write: Option<bool>,
    /// A name the user gave the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl AzureConfig {
    /// Settings for a new connection, before validation fills in the subscription.
    pub fn new(auth_type: AuthType) -> Self {
        Self {
            auth_type,
            tenant_id: None,
            client_id: None,
            subscription_id: None,
            subscription_name: None,
            read_only_tenant_id: None,
            read_only_client_id: None,
            secret_expires_at: None,
            read_only_secret_expires_at: None,
            can_write: None,
            display_name: None,
        }
    }
}

/// Whether `text` is a GUID in its 8-4-4-4-12 hex form.
pub fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `text` is a domain name a tenant can verify (`contoso.onmicrosoft.com`):
/// at least two labels of letters, digits and inner hyphens, a letter TLD.
pub fn is_domain(text: &str) -> bool {
    let labels: Vec<&str> = text.split('.').collect();
    text.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()))
}

/// Checks a tenant id before it goes into a URL path: a GUID or a verified domain,
/// lower-cased. `common`, `organizations` and `consumers` are refused: a service
/// principal belongs to one directory.
pub fn check_tenant(field: &str, text: &str) -> Result<String> {
    let tenant = text.trim().to_ascii_lowercase();
    if is_guid(&tenant) || is_domain(&tenant) {
        return Ok(tenant);
    }
    Err(Error::invalid_config(
        field,
        format!("`{field}` must be a directory (tenant) ID such as 72f988bf-86f1-41af-91ab-2d7cd011db47 or a verified domain such as contoso.onmicrosoft.com"),
    )
    .with_hint("copy the Directory (tenant) ID from the app registration's Overview page"))
}

/// Checks an id that must be a GUID (client id, subscription id, workspace id).
pub fn check_guid(field: &str, text: &str, what: &str) -> Result<String> {
    let id = text.trim().to_ascii_lowercase();
    if is_guid(&id) {
        return Ok(id);
    }
    Err(Error::invalid_config(
        field,
        format!(
            "`{field}` must be the {what}, a GUID such as 291bba3f-e0a5-47bc-a099-3bdcb2a50a05"
        ),
    )
    .with_hint(format!("copy the {what} from the Azure portal")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_are_guids_or_domains_and_nothing_that_changes_the_path() {
        assert_eq!(
            check_tenant("tenant_id", " 31C75423-32d6-4322-88b7-c478bdde4858 ").unwrap(),
            "31c75423-32d6-4322-88b7-c478bdde4858"
        );
        assert!(check_tenant("tenant_id", "contoso.onmicrosoft.com").is_ok());
        for bad in [
            "common",
            "organizations",
            "../x",
            "contoso.com/oauth2",
            "a.b?x=1",
            "evil.com#",
            "",
            "31c75423-32d6-4322-88b7",
            "x.123",
        ] {
            assert!(check_tenant("tenant_id", bad).is_err(), "{bad}");
        }
        assert!(check_guid("client_id", "not-a-guid", "application (client) ID").is_err());
    }

    #[test]
    fn token_urls_encode_the_tenant_under_the_authority() {
        let endpoints = Endpoints::default();
        assert_eq!(
            endpoints
                .token_url("contoso.onmicrosoft.com")
                .unwrap()
                .as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }
}
