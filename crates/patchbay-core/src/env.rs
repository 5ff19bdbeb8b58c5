//! The configuration a connector is built from.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::sync::Arc;

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
///
/// Besides variables it carries typed extensions: host services a connector needs
/// and cannot build itself (the Kubernetes connector's agent relay), set by the
/// host with [`ConnectorEnv::insert_extension`] before the registry is built.
#[derive(Clone, Default)]
pub struct ConnectorEnv {
    vars: BTreeMap<String, String>,
    extensions: BTreeMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl ConnectorEnv {
    /// Captures the current process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
            extensions: BTreeMap::new(),
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
            extensions: BTreeMap::new(),
        }
    }

    /// Hands connectors a host service of type `T`, one per type; a second insert
    /// of the same type replaces the first.
    pub fn insert_extension<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.extensions.insert(TypeId::of::<T>(), value);
    }

    /// The host service of type `T`, when the host provides one.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.extensions
            .get(&TypeId::of::<T>())
            .and_then(|value| Arc::clone(value).downcast::<T>().ok())
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
    /// other connectors' secrets never reach it. Extensions are kept.
    pub fn restricted_to<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Self {
        let vars = names
            .into_iter()
            .filter_map(|name| {
                let value = self.vars.get(name)?;
                Some((name.to_owned(), value.clone()))
            })
            .collect();
        Self {
            vars,
            extensions: self.extensions.clone(),
        }
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
            .field("extensions", &self.extensions.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Relay(u32);

    #[test]
    fn extensions_are_typed_and_survive_restriction() {
        let mut env = ConnectorEnv::from_pairs([("A", "1"), ("SECRET", "x")]);
        assert!(env.extension::<Relay>().is_none());
        env.insert_extension(Arc::new(Relay(7)));
        let restricted = env.restricted_to(["A"]);
        assert_eq!(restricted.extension::<Relay>().as_deref(), Some(&Relay(7)));
        assert!(restricted.extension::<String>().is_none());
        assert_eq!(restricted.names().collect::<Vec<_>>(), ["A"]);
    }
}
