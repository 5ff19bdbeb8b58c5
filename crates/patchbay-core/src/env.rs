//! The configuration a connector is built from.

use std::collections::BTreeMap;

/// Settings of the shared outbound HTTP client (`patchbay-http`), which every
/// connector builds its client from and so receives besides its own variables.
pub const HTTP_CLIENT_VARIABLES: &[&str] = &[
    "PATCHBAY_UPSTREAM_OVERRIDES",
    "PATCHBAY_HTTP_CONNECT_TIMEOUT_SECS",
    "PATCHBAY_HTTP_TIMEOUT_SECS",
    "PATCHBAY_HTTP_MAX_RETRIES",
    "PATCHBAY_ALLOWED_PRIVATE_NETWORKS",
];

/// A snapshot of the process environment (and `.env`) handed to connector factories.
///
/// Connectors read their variables from here, never from `std::env`, so tests and
/// embedding hosts can build connectors with any configuration.
#[derive(Clone, Default)]
pub struct ConnectorEnv {
    vars: BTreeMap<String, String>,
}

impl ConnectorEnv {
    /// Captures the current process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// Builds an environment from explicit pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets one variable.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(key.into(), value.into());
    }

    /// A variable's value, treating blank as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|value| !value.trim().is_empty())
    }

    /// A copy holding only the variables named in `names`: what one connector may
    /// see, so the store's credentials (`VAULT_TOKEN`, `PATCHBAY_MASTER_KEY`) and
    /// other connectors' secrets never reach it.
    pub fn restricted_to<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Self {
        let vars = names
            .into_iter()
            .filter_map(|name| {
                let value = self.vars.get(name)?;
                Some((name.to_owned(), value.clone()))
            })
            .collect();
        Self { vars }
    }

    /// The names of the variables set, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// Whether a feature flag such as `NEXT_PUBLIC_ENABLE_SLACK` is `true`.
    pub fn flag(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
    }
}

impl std::fmt::Debug for ConnectorEnv {
    // Values may be secrets (client secrets, tokens): print names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorEnv")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}
