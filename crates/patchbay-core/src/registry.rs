//! Collecting connector descriptors and building connector instances.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::connector::DynConnector;
use crate::descriptor::ConnectorDescriptor;
use crate::env::ConnectorEnv;
use crate::error::Result;

/// An `inventory` entry: one connector's descriptor.
pub struct ConnectorRegistration(pub &'static ConnectorDescriptor);

inventory::collect!(ConnectorRegistration);

/// Submits a connector descriptor to the global registry.
///
/// ```ignore
/// patchbay_core::register_connector!(DESCRIPTOR);
/// ```
#[macro_export]
macro_rules! register_connector {
    ($descriptor:path) => {
        $crate::__inventory::submit! {
            $crate::registry::ConnectorRegistration(&$descriptor)
        }
    };
}

/// Makes sure connector crates are linked so their `inventory` entries exist.
///
/// ```ignore
/// patchbay_core::link!(patchbay_connector_datadog);
/// ```
#[macro_export]
macro_rules! link {
    ($($krate:ident),* $(,)?) => {
        $( use $krate as _; )*
    };
}

/// The connectors a host knows, built and ready.
#[derive(Clone, Default)]
pub struct Registry {
    descriptors: BTreeMap<&'static str, &'static ConnectorDescriptor>,
    instances: BTreeMap<&'static str, Arc<dyn DynConnector>>,
}

impl Registry {
    /// Every descriptor submitted with `inventory` in this binary.
    pub fn inventory_descriptors() -> Vec<&'static ConnectorDescriptor> {
        inventory::iter::<ConnectorRegistration>
            .into_iter()
            .map(|registration| registration.0)
            .collect()
    }

    /// Builds a registry from descriptors (duplicates by id are merged); each
    /// connector is built from only the variables it declares (see
    /// [`ConnectorDescriptor::environment`]).
    pub fn build(
        descriptors: impl IntoIterator<Item = &'static ConnectorDescriptor>,
        env: &ConnectorEnv,
    ) -> Result<Self> {
        let mut registry = Self::default();
        for descriptor in descriptors {
            if registry.descriptors.contains_key(descriptor.id) {
                continue;
            }
            let instance: Arc<dyn DynConnector> =
                Arc::from((descriptor.build)(&descriptor.environment(env))?);
            registry.descriptors.insert(descriptor.id, descriptor);
            registry.instances.insert(descriptor.id, instance);
        }
        Ok(registry)
    }

    /// Builds every connector found through `inventory`.
    pub fn from_inventory(env: &ConnectorEnv) -> Result<Self> {
        Self::build(Self::inventory_descriptors(), env)
    }

    /// The connector with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<dyn DynConnector>> {
        self.instances.get(id)
    }

    /// The descriptor with this id.
    pub fn descriptor(&self, id: &str) -> Option<&'static ConnectorDescriptor> {
        self.descriptors.get(id).copied()
    }

    /// Every descriptor, ordered by id.
    pub fn descriptors(&self) -> impl Iterator<Item = &'static ConnectorDescriptor> + '_ {
        self.descriptors.values().copied()
    }

    /// The ids of every connector, ordered.
    pub fn ids(&self) -> Vec<&'static str> {
        self.descriptors.keys().copied().collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("ids", &self.ids())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::descriptor::{AuthKind, Category, EnvVar};

    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn record_and_refuse(env: &ConnectorEnv) -> Result<Box<dyn DynConnector>> {
        *SEEN.lock().unwrap() = env.names().map(str::to_owned).collect();
        Err(crate::Error::unsupported("recorded"))
    }

    static PROBE: ConnectorDescriptor = ConnectorDescriptor {
        id: "probe",
        display_name: "Probe",
        category: Category::Observability,
        auth_kinds: &[AuthKind::ApiKey],
        env_vars: &[EnvVar {
            name: "PROBE_REGION",
            required: false,
            secret: false,
            description: "a region",
        }],
        feature_flag: Some("NEXT_PUBLIC_ENABLE_PROBE"),
        disabled_message: None,
        webhook: None,
        oauth: None,
        connect_schema: schemars::Schema::default,
        operations: Vec::new,
        build: record_and_refuse,
    };

    #[test]
    fn a_connector_is_built_from_its_declared_variables_only() {
        let env = ConnectorEnv::from_pairs([
            ("VAULT_TOKEN", "hvs.canary"),
            ("PATCHBAY_MASTER_KEY", "master-canary"),
            ("SLACK_SIGNING_SECRET", "another-connectors-secret"),
            ("PROBE_REGION", "eu"),
            ("NEXT_PUBLIC_ENABLE_PROBE", "true"),
            ("PATCHBAY_HTTP_TIMEOUT_SECS", "10"),
        ]);
        let outcome = Registry::build([&PROBE], &env);
        assert!(outcome.is_err(), "the probe refuses to build");
        assert_eq!(
            *SEEN.lock().unwrap(),
            [
                "NEXT_PUBLIC_ENABLE_PROBE",
                "PATCHBAY_HTTP_TIMEOUT_SECS",
                "PROBE_REGION"
            ]
        );
    }
}
