//! Non-secret settings of an OVHcloud connection, and the three OVHcloud regions
//! with their API bases, OAuth endpoints and environment variables.

use patchbay_core::{ConnectorEnv, Error, Result};
use patchbay_http::HttpClient;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

/// An OVHcloud region: each has its own API, its own accounts and its own OAuth clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Region {
    /// Europe: `https://eu.api.ovh.com/1.0`.
    #[serde(rename = "ovh-eu")]
    Eu,
    /// Canada: `https://ca.api.ovh.com/1.0`.
    #[serde(rename = "ovh-ca")]
    Ca,
    /// United States: `https://api.us.ovhcloud.com/1.0`.
    #[serde(rename = "ovh-us")]
    Us,
}

/// Every region, in the order they are offered.
pub const REGIONS: [Region; 3] = [Region::Eu, Region::Ca, Region::Us];

/// The region names as users give them.
pub const REGION_NAMES: &str = "ovh-eu, ovh-ca, ovh-us";

impl Region {
    /// The name used in forms, start options and settings (`ovh-eu`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Eu => "ovh-eu",
            Self::Ca => "ovh-ca",
            Self::Us => "ovh-us",
        }
    }

    /// The region named `name` (`ovh-eu`, `ovh-ca`, `ovh-us`).
    pub fn parse(name: &str) -> Option<Self> {
        REGIONS
            .into_iter()
            .find(|region| region.name() == name.trim())
    }

    /// OVHcloud's API base for the region.
    pub fn default_api_base(self) -> &'static str {
        match self {
            Self::Eu => "https://eu.api.ovh.com/1.0",
            Self::Ca => "https://ca.api.ovh.com/1.0",
            Self::Us => "https://api.us.ovhcloud.com/1.0",
        }
    }

    /// The operator variable that replaces the region's API base (a proxy, or a test fake).
    pub fn api_url_var(self) -> &'static str {
        match self {
            Self::Eu => "OVH_EU_API_URL",
            Self::Ca => "OVH_CA_API_URL",
            Self::Us => "OVH_US_API_URL",
        }
    }
}

/// How a connection proves who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// An OAuth 2.0 access token (authorization-code flow), sent as a bearer token.
    #[default]
    Oauth,
    /// Application key, application secret and consumer key; every request signed (`$1$`).
    ApplicationKey,
}

/// Non-secret settings of a connection to OVHcloud, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvhConfig {
    /// The region whose API (and, for OAuth, whose client) the connection uses.
    pub region: Region,
    /// OAuth token or application-key signing.
    pub auth_method: AuthMethod,
    /// The account's NIC handle, as `GET /me` reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nichandle: Option<String>,
    /// How many Public Cloud projects validation saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_count: Option<usize>,
}

impl OvhConfig {
    /// Settings for a new connection.
    pub fn new(region: Region, auth_method: AuthMethod) -> Self {
        Self {
            region,
            auth_method,
            nichandle: None,
            project_count: None,
        }
    }
}

/// The API base of each region: OVHcloud's, or the operator's replacement from
/// `OVH_<REGION>_API_URL`, which passes the outbound address policy.
#[derive(Debug, Clone)]
pub struct ApiBases {
    bases: [(Url, bool); 3],
}

impl ApiBases {
    /// OVHcloud's own API bases.
    pub fn official() -> Self {
        Self {
            bases: REGIONS.map(|region| {
                (
                    Url::parse(region.default_api_base()).expect("static URL"),
                    false,
                )
            }),
        }
    }

    /// The bases from `env`: each `OVH_<REGION>_API_URL` that is set replaces that
    /// region's base after the address policy of `http` accepts it.
    pub fn from_env(env: &ConnectorEnv, http: &HttpClient) -> Result<Self> {
        let mut bases = Self::official();
        for (index, region) in REGIONS.into_iter().enumerate() {
            if let Some(text) = env.get(region.api_url_var()) {
                let url = http.check_tenant_url(region.api_url_var(), text)?;
                if url.query().is_some() || url.fragment().is_some() {
                    return Err(Error::invalid_config(
                        region.api_url_var(),
                        format!(
                            "`{}` must be a base URL without a query",
                            region.api_url_var()
                        ),
                    ));
                }
                bases.bases[index] = (url, true);
            }
        }
        Ok(bases)
    }

    /// The region's base, and whether the operator replaced it.
    pub fn base(&self, region: Region) -> (&Url, bool) {
        let index = REGIONS
            .iter()
            .position(|candidate| *candidate == region)
            .unwrap_or_default();
        let (url, replaced) = &self.bases[index];
        (url, *replaced)
    }
}
