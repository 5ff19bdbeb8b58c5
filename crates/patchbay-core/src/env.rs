//! The configuration a connector is built from.

use std::collections::BTreeMap;

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
