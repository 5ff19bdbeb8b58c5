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

    /// Builds a registry from descriptors (duplicates by id are merged).
    pub fn build(
        descriptors: impl IntoIterator<Item = &'static ConnectorDescriptor>,
        env: &ConnectorEnv,
    ) -> Result<Self> {
        let mut registry = Self::default();
        for descriptor in descriptors {
            if registry.descriptors.contains_key(descriptor.id) {
                continue;
            }
            let instance: Arc<dyn DynConnector> = Arc::from((descriptor.build)(env)?);
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
