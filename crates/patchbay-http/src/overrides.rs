//! Rewriting provider hosts to other base URLs (local fakes, egress proxies).

use std::collections::BTreeMap;
use std::net::IpAddr;

use patchbay_core::{Error, Result};
use url::{Host, Url};

/// The variable holding `host=base_url` pairs separated by commas.
pub const OVERRIDES_VAR: &str = "PATCHBAY_UPSTREAM_OVERRIDES";

const OVERRIDES_HINT: &str =
    "write PATCHBAY_UPSTREAM_OVERRIDES as comma-separated host=base_url pairs, \
    e.g. api.datadoghq.com=http://127.0.0.1:9000,api.github.com=https://proxy.internal:8443/github";

/// Host-to-base-URL rewrites applied to every outbound request.
///
/// Keys are a host name, optionally with a port; a key without a port matches the
/// host on any port. Plain `http` bases are accepted only for loopback targets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamOverrides {
    bases: BTreeMap<OverrideKey, Url>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct OverrideKey {
    host: String,
    port: Option<u16>,
}

impl UpstreamOverrides {
    /// Parses `host=base_url` pairs separated by commas; an empty string means none.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut overrides = Self::default();
        for entry in spec
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let Some((host, base)) = entry.split_once('=') else {
                return Err(invalid(format!(
                    "{OVERRIDES_VAR} entry `{entry}` is not of the form host=base_url"
                )));
            };
            overrides.insert(host.trim(), base.trim())?;
        }
        Ok(overrides)
    }

    /// Adds (or replaces) the rewrite of `host` (optionally `host:port`) to `base`.
    pub fn insert(&mut self, host: &str, base: &str) -> Result<()> {
        let key = parse_key(host)?;
        let base = parse_base(&key.host, base)?;
        self.bases.insert(key, base);
        Ok(())
    }

    /// Whether no rewrite is configured.
    pub fn is_empty(&self) -> bool {
        self.bases.is_empty()
    }

    /// The URL to contact instead of `url`, or `None` when no rewrite matches.
    ///
    /// Scheme, host and port come from the base; the path is the base path followed
    /// by the original path; the original query is kept.
    pub fn rewrite(&self, url: &Url) -> Option<Url> {
        let host = normalized_host(url.host()?);
        let exact = OverrideKey {
            host: host.clone(),
            port: url.port_or_known_default(),
        };
        let any_port = OverrideKey { host, port: None };
        let base = self
            .bases
            .get(&exact)
            .or_else(|| self.bases.get(&any_port))?;
        let mut rewritten = base.clone();
        let prefix = base.path().trim_end_matches('/');
        rewritten.set_path(&format!("{prefix}{}", url.path()));
        rewritten.set_query(url.query());
        rewritten.set_fragment(url.fragment());
        Some(rewritten)
    }
}

fn invalid(message: String) -> Error {
    Error::invalid_config(OVERRIDES_VAR, message).with_hint(OVERRIDES_HINT)
}

fn parse_key(key: &str) -> Result<OverrideKey> {
    let bad_key = || {
        invalid(format!(
            "{OVERRIDES_VAR} key `{key}` must be a host name, optionally with a port (api.example.com or api.example.com:8443)"
        ))
    };
    if key.is_empty() || key.contains(['/', '@', '?', '#']) {
        return Err(bad_key());
    }
    let parsed = Url::parse(&format!("https://{key}")).map_err(|_| bad_key())?;
    let host = parsed.host().ok_or_else(bad_key)?;
    Ok(OverrideKey {
        host: normalized_host(host),
        // `Url` drops a port equal to the scheme default, so read it from the key.
        port: explicit_port(key),
    })
}

fn explicit_port(key: &str) -> Option<u16> {
    let after_host = match key.rfind(']') {
        Some(bracket) => &key[bracket + 1..],
        None => key,
    };
    after_host
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
}

fn parse_base(key_host: &str, base: &str) -> Result<Url> {
    let url = Url::parse(base).map_err(|error| {
        invalid(format!(
            "{OVERRIDES_VAR} base URL for `{key_host}` is not a valid URL ({error})"
        ))
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // The base is never echoed here because its user info may be a credential.
        return Err(invalid(format!(
            "{OVERRIDES_VAR} base URL for `{key_host}` must not contain a user name or password"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(format!(
            "{OVERRIDES_VAR} base URL `{url}` for `{key_host}` must not have a query string or fragment"
        )));
    }
    let Some(host) = url.host() else {
        return Err(invalid(format!(
            "{OVERRIDES_VAR} base URL `{url}` for `{key_host}` has no host"
        )));
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&host) => Ok(url),
        "http" => Err(invalid(format!(
            "{OVERRIDES_VAR} base URL `{url}` for `{key_host}` uses plain http to a non-loopback host; \
             use https (plain http is allowed only for 127.0.0.0/8, ::1 and localhost)"
        ))),
        scheme => Err(invalid(format!(
            "{OVERRIDES_VAR} base URL `{url}` for `{key_host}` has scheme `{scheme}`; use https"
        ))),
    }
}

fn normalized_host(host: Host<&str>) -> String {
    match host {
        Host::Domain(domain) => domain.trim_end_matches('.').to_ascii_lowercase(),
        Host::Ipv4(address) => address.to_string(),
        Host::Ipv6(address) => address.to_string(),
    }
}

fn is_loopback(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(domain) => domain.eq_ignore_ascii_case("localhost"),
        Host::Ipv4(address) => IpAddr::V4(*address).is_loopback(),
        Host::Ipv6(address) => IpAddr::V6(*address).is_loopback(),
    }
}
