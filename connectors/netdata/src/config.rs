//! Non-secret settings of a Netdata connection, and the space URL's parsing.
//!
//! Netdata Cloud is served at `https://app.netdata.cloud`, a fixed provider host.
//! Any other space URL (an on-premises Netdata Cloud) is one the tenant chose, so
//! it passes the HTTP client's address policy when the connection is made and on
//! every request: https only, and no private or internal address unless the
//! operator allows its network.

use patchbay_core::{Error, Result};
use patchbay_http::HttpClient;
use serde::{Deserialize, Serialize};
use url::Url;

/// The Netdata Cloud base URL used when the form leaves `space_url` empty.
pub const DEFAULT_BASE_URL: &str = "https://app.netdata.cloud";

/// The connect-form field holding the space URL; refusals name it.
pub const SPACE_URL_FIELD: &str = "space_url";

/// Non-secret settings of a Netdata connection, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetdataConfig {
    /// The Netdata Cloud base URL without a trailing slash.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The space the user named (its name, slug or id), as typed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// The chosen space's id, filled by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<String>,
    /// The chosen space's name, filled by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_name: Option<String>,
    /// The chosen space's slug, when Netdata reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_slug: Option<String>,
    /// The ids of the space's rooms when the connection was validated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub room_ids: Vec<String>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

impl NetdataConfig {
    /// Whether the base URL is one the tenant chose rather than Netdata Cloud's own.
    pub fn is_tenant_url(&self) -> bool {
        is_tenant_url(&self.base_url)
    }
}

/// Whether `base_url` (normalised) is anything but Netdata Cloud's own address.
pub fn is_tenant_url(base_url: &str) -> bool {
    base_url.trim_end_matches('/') != DEFAULT_BASE_URL
}

/// A space URL split into the API base and, when the URL points into a space
/// (`https://app.netdata.cloud/spaces/<slug>/...`), that space's slug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceUrl {
    /// The base URL requests go to, without a trailing slash.
    pub base_url: String,
    /// The space slug found in the URL's path, if any.
    pub space: Option<String>,
}

/// Parses the form's space URL; blank means Netdata Cloud.
///
/// A URL copied from the browser (`.../spaces/<slug>/rooms/...`) keeps only what
/// comes before `/spaces/` as the base, and gives the slug. Anything other than
/// Netdata Cloud's own address must pass `http`'s address policy
/// ([`HttpClient::check_tenant_url`]); refusals name `space_url`.
pub fn parse_space_url(input: Option<&str>, http: &HttpClient) -> Result<SpaceUrl> {
    let Some(input) = input.map(str::trim).filter(|input| !input.is_empty()) else {
        return Ok(SpaceUrl {
            base_url: DEFAULT_BASE_URL.to_owned(),
            space: None,
        });
    };
    let invalid = |reason: &str| {
        Error::invalid_config(SPACE_URL_FIELD, format!("the Netdata space URL {reason}")).with_hint(
            "leave space_url empty for Netdata Cloud (https://app.netdata.cloud), or give your \
             space's https address such as https://app.netdata.cloud/spaces/my-space",
        )
    };
    // Parsed here only to split the path; the policy check below names the host.
    let mut url =
        Url::parse(input).map_err(|error| invalid(&format!("is not a valid URL: {error}")))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("must not carry a query string or fragment"));
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let (prefix, space) = match path.find("/spaces/") {
        Some(at) => {
            let slug = path[at + "/spaces/".len()..]
                .split('/')
                .next()
                .filter(|slug| !slug.is_empty())
                .map(str::to_owned);
            (path[..at].to_owned(), slug)
        }
        None => (path, None),
    };
    url.set_path(&prefix);
    let base_url = url.as_str().trim_end_matches('/').to_owned();
    if is_tenant_url(&base_url) {
        http.check_tenant_url(SPACE_URL_FIELD, &base_url)?;
    }
    Ok(SpaceUrl { base_url, space })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use patchbay_http::HttpConfig;

    fn parse(input: Option<&str>) -> Result<SpaceUrl> {
        parse_space_url(input, &HttpClient::new(HttpConfig::default()).unwrap())
    }

    #[test]
    fn blank_means_netdata_cloud() {
        for input in [None, Some(""), Some("  ")] {
            let parsed = parse(input).unwrap();
            assert_eq!(parsed.base_url, DEFAULT_BASE_URL);
            assert_eq!(parsed.space, None);
        }
        assert!(!is_tenant_url(DEFAULT_BASE_URL));
        assert!(!is_tenant_url("https://app.netdata.cloud/"));
    }

    #[test]
    fn a_browser_url_gives_the_base_and_the_space_slug() {
        let parsed = parse(Some(
            "https://app.netdata.cloud/spaces/team-space/rooms/all-nodes/overview",
        ))
        .unwrap();
        assert_eq!(parsed.base_url, DEFAULT_BASE_URL);
        assert_eq!(parsed.space.as_deref(), Some("team-space"));
        let parsed = parse(Some("https://app.netdata.cloud/")).unwrap();
        assert_eq!(parsed.base_url, DEFAULT_BASE_URL);
        let parsed = parse(Some("https://netdata.example.com/cloud/spaces/ops")).unwrap();
        assert_eq!(parsed.base_url, "https://netdata.example.com/cloud");
        assert_eq!(parsed.space.as_deref(), Some("ops"));
        assert!(is_tenant_url(&parsed.base_url));
    }

    #[test]
    fn odd_urls_are_refused_naming_space_url() {
        for bad in [
            "app.netdata.cloud",
            "https://app.netdata.cloud/?token=x",
            "https://user:pw@netdata.example.com",
            "http://app.netdata.cloud",
            "ftp://netdata.example.com",
        ] {
            let error = parse(Some(bad)).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{bad}");
            assert_eq!(error.field(), Some(SPACE_URL_FIELD), "{bad}");
            assert!(!error.to_string().contains("pw@"), "{error}");
        }
    }
}
