//! The connectors compiled into this host, one cargo feature each.
//!
//! Registration normally happens through `inventory`; [`register_all`] names every
//! enabled connector crate explicitly as well, so a crate that the linker would
//! otherwise drop cannot silently vanish from the registry.

use patchbay_core::{ConnectorDescriptor, ConnectorEnv, Registry, Result};

/// Declares the connectors this host can be built with, one line each:
/// `"id": "cargo-feature" => crate`. From that line come the crate's link, its
/// entry in [`ENABLED`] and its explicit registration in [`register_all`].
macro_rules! connectors {
    ($($id:literal: $feature:literal => $krate:ident),* $(,)?) => {
        $(
            #[cfg(feature = $feature)]
            patchbay_core::link!($krate);
        )*

        /// The ids of the connectors enabled by this build's cargo features, sorted.
        pub const ENABLED: &[&str] = &[$(
            #[cfg(feature = $feature)]
            $id,
        )*];

        /// Every enabled connector's descriptor, named explicitly.
        pub fn register_all() -> Vec<&'static ConnectorDescriptor> {
            vec![$(
                #[cfg(feature = $feature)]
                &$krate::DESCRIPTOR,
            )*]
        }
    };
}

// Sorted by id, as the registry lists them.
connectors! {
    "aws": "connector-aws" => patchbay_connector_aws,
    "azure": "connector-azure" => patchbay_connector_azure,
    "confluence": "connector-confluence" => patchbay_connector_confluence,
    "datadog": "connector-datadog" => patchbay_connector_datadog,
    "gcp": "connector-gcp" => patchbay_connector_gcp,
    "github": "connector-github" => patchbay_connector_github,
    "grafana": "connector-grafana" => patchbay_connector_grafana,
    "kubernetes": "connector-kubernetes" => patchbay_connector_kubernetes,
    "netdata": "connector-netdata" => patchbay_connector_netdata,
    "ovh": "connector-ovh" => patchbay_connector_ovh,
    "pagerduty": "connector-pagerduty" => patchbay_connector_pagerduty,
    "slack": "connector-slack" => patchbay_connector_slack,
}

/// Builds the registry: explicit registrations plus anything else `inventory` found
/// (third-party connector crates linked into the binary).
pub fn registry(env: &ConnectorEnv) -> Result<Registry> {
    Registry::build(
        register_all()
            .into_iter()
            .chain(Registry::inventory_descriptors()),
        env,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_holds_exactly_the_enabled_connectors() {
        let registry = registry(&ConnectorEnv::default()).unwrap();
        assert_eq!(registry.ids(), ENABLED);
        let mut from_inventory: Vec<_> = Registry::inventory_descriptors()
            .into_iter()
            .map(|descriptor| descriptor.id)
            .collect();
        from_inventory.sort_unstable();
        assert_eq!(
            from_inventory, ENABLED,
            "every enabled connector must also register itself through inventory"
        );
    }
}
