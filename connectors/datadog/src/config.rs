//! Connection settings and Datadog site parsing.
//!
//! A Datadog account lives on exactly one site, and keys only work against that
//! site's API. Unknown input is rejected rather than mapped to US1, so keys are
//! never sent to a site the user did not choose.

use patchbay_core::{Error, Result};
use serde::{Deserialize, Serialize};
use url::Url;

/// The site used when the connect form leaves `site` empty.
pub const DEFAULT_SITE: &str = "datadoghq.com";

/// One Datadog site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatadogSite {
    /// Datadog's name for the site (`US1`, `EU`).
    pub label: &'static str,
    /// The canonical site domain (`datadoghq.eu`); the API is at `api.<domain>`.
    pub domain: &'static str,
    /// The web app host, where monitors and events are linked.
    pub app_host: &'static str,
    /// Short names people type (`eu`, `us1-fed`).
    pub aliases: &'static [&'static str],
}

impl DatadogSite {
    /// The API base URL, e.g. `https://api.datadoghq.eu`.
    pub fn api_base(&self) -> String {
        format!("https://api.{}", self.domain)
    }
}

/// Every site Datadog serves, per the v1 OpenAPI `servers` list. The app hosts
/// follow Datadog's site table: US1, EU and US1-FED use an `app.` prefix, the
/// others serve the app on the site domain itself.
pub const SITES: &[DatadogSite] = &[
    DatadogSite {
        label: "US1",
        domain: "datadoghq.com",
        app_host: "app.datadoghq.com",
        aliases: &["us1", "us"],
    },
    DatadogSite {
        label: "US3",
        domain: "us3.datadoghq.com",
        app_host: "us3.datadoghq.com",
        aliases: &["us3"],
    },
    DatadogSite {
        label: "US5",
        domain: "us5.datadoghq.com",
        app_host: "us5.datadoghq.com",
        aliases: &["us5"],
    },
    DatadogSite {
        label: "EU",
        domain: "datadoghq.eu",
        app_host: "app.datadoghq.eu",
        aliases: &["eu", "eu1"],
    },
    DatadogSite {
        label: "AP1",
        domain: "ap1.datadoghq.com",
        app_host: "ap1.datadoghq.com",
        aliases: &["ap1"],
    },
    DatadogSite {
        label: "AP2",
        domain: "ap2.datadoghq.com",
        app_host: "ap2.datadoghq.com",
        aliases: &["ap2"],
    },
    DatadogSite {
        label: "UK1",
        domain: "uk1.datadoghq.com",
        app_host: "uk1.datadoghq.com",
        aliases: &["uk1"],
    },
    DatadogSite {
        label: "US1-FED",
        domain: "ddog-gov.com",
        app_host: "app.ddog-gov.com",
        aliases: &["us1-fed", "gov"],
    },
    DatadogSite {
        label: "US2-FED",
        domain: "us2.ddog-gov.com",
        app_host: "us2.ddog-gov.com",
        aliases: &["us2-fed"],
    },
];

/// Non-secret settings of a Datadog connection, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatadogConfig {
    /// The canonical site domain, e.g. `datadoghq.eu`.
    pub site: String,
    /// The API base URL, e.g. `https://api.datadoghq.eu`.
    pub api_base: String,
    /// The organisation name, when the application key may read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_name: Option<String>,
    /// The organisation's public id, when the application key may read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

impl DatadogConfig {
    /// Settings for the site the user typed; a missing or blank site is US1.
    pub fn for_site(input: Option<&str>) -> Result<Self> {
        let site = match input.map(str::trim).filter(|site| !site.is_empty()) {
            Some(input) => parse_site(input)?,
            None => find_domain(DEFAULT_SITE).unwrap_or(&SITES[0]),
        };
        Ok(Self {
            site: site.domain.to_owned(),
            api_base: site.api_base(),
            org_name: None,
            org_id: None,
        })
    }

    /// The web app base URL (`https://app.datadoghq.eu`), for links to monitors.
    pub fn app_base(&self) -> String {
        let host = find_domain(&self.site).map_or_else(
            || format!("app.{}", self.site),
            |site| site.app_host.to_owned(),
        );
        format!("https://{host}")
    }
}

/// Parses a site domain, alias, `app.`/`api.` host or https URL on a Datadog domain.
pub fn parse_site(input: &str) -> Result<&'static DatadogSite> {
    let trimmed = input.trim();
    let lowered = trimmed.to_ascii_lowercase();
    let found = if lowered.contains("://") {
        site_from_url(trimmed)?
    } else {
        let host = lowered.trim_end_matches('/');
        SITES
            .iter()
            .find(|site| site.aliases.contains(&host))
            .or_else(|| site_from_host(host))
    };
    found.ok_or_else(|| unknown_site(trimmed))
}

fn site_from_url(input: &str) -> Result<Option<&'static DatadogSite>> {
    let url = Url::parse(input).map_err(|error| {
        Error::invalid_config(
            "site",
            format!("Datadog site URL `{input}` is not a valid URL: {error}"),
        )
        .with_hint(accepted_sites_hint())
    })?;
    if url.scheme() != "https" {
        return Err(Error::invalid_config(
            "site",
            format!("Datadog site URL `{input}` must use https"),
        )
        .with_hint(accepted_sites_hint()));
    }
    if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
        return Err(Error::invalid_config(
            "site",
            "a Datadog site URL must not carry a user name, password or port",
        )
        .with_hint(accepted_sites_hint()));
    }
    Ok(url
        .host_str()
        .map(|host| host.trim_end_matches('.').to_ascii_lowercase())
        .and_then(|host| site_from_host(&host)))
}

fn site_from_host(host: &str) -> Option<&'static DatadogSite> {
    let host = host.trim_end_matches('.');
    find_domain(host)
        .or_else(|| host.strip_prefix("app.").and_then(find_domain))
        .or_else(|| host.strip_prefix("api.").and_then(find_domain))
        .or_else(|| SITES.iter().find(|site| site.app_host == host))
}

fn find_domain(domain: &str) -> Option<&'static DatadogSite> {
    SITES.iter().find(|site| site.domain == domain)
}

fn accepted_sites_hint() -> String {
    let sites = SITES
        .iter()
        .map(|site| format!("{} ({})", site.domain, site.label))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "use one of {sites}, an alias such as us1, us3, us5, eu, ap1, ap2, us1-fed or gov, \
         or an https URL on one of those sites such as https://app.datadoghq.eu"
    )
}

fn unknown_site(input: &str) -> Error {
    Error::invalid_config("site", format!("unknown Datadog site `{input}`"))
        .with_hint(accepted_sites_hint())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_site_resolves_from_its_domain_alias_and_hosts() {
        for site in SITES {
            assert_eq!(parse_site(site.domain).unwrap(), site);
            assert_eq!(parse_site(&format!("api.{}", site.domain)).unwrap(), site);
            assert_eq!(parse_site(site.app_host).unwrap(), site);
            assert_eq!(
                parse_site(&format!("https://{}/monitors/manage", site.app_host)).unwrap(),
                site
            );
            for alias in site.aliases {
                assert_eq!(parse_site(&alias.to_ascii_uppercase()).unwrap(), site);
            }
        }
    }

    #[test]
    fn config_derives_api_and_app_bases() {
        let config = DatadogConfig::for_site(Some("EU")).unwrap();
        assert_eq!(config.site, "datadoghq.eu");
        assert_eq!(config.api_base, "https://api.datadoghq.eu");
        assert_eq!(config.app_base(), "https://app.datadoghq.eu");
        let config = DatadogConfig::for_site(None).unwrap();
        assert_eq!(config.api_base, "https://api.datadoghq.com");
        assert_eq!(DatadogConfig::for_site(Some("  ")).unwrap(), config);
    }
}
