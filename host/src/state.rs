//! What every request handler shares.

use std::collections::HashMap;
use std::sync::Arc;

use patchbay_core::{ConnectorEnv, Registry};
use patchbay_oauth::{OAuthEngine, TokenRefresher};
use patchbay_store::{AlertIngestor, RecordStore, SecretStore};

use crate::auth::PrincipalExtractor;

/// Shared handler state; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The connectors this host serves.
    pub registry: Arc<Registry>,
    /// Each connector's write operations, by connector id, listed once at start-up:
    /// listing a descriptor's operations builds every parameter schema, too much work
    /// to repeat on each query only to learn whether it may change provider state.
    pub write_operations: Arc<HashMap<&'static str, Vec<&'static str>>>,
    /// The environment connectors were built from (feature flags, client ids).
    pub env: Arc<ConnectorEnv>,
    /// Connection records, API keys and alerts.
    pub records: Arc<dyn RecordStore>,
    /// Connection secrets.
    pub secrets: Arc<dyn SecretStore>,
    /// The group-commit writer webhooks store alerts through.
    pub ingestor: AlertIngestor,
    /// How callers are authenticated.
    pub principals: Arc<dyn PrincipalExtractor>,
    /// The base URL people and providers reach this host at.
    pub public_url: Arc<str>,
    /// Runs OAuth authorization flows.
    pub oauth: Arc<OAuthEngine>,
    /// Keeps OAuth connections' access tokens fresh.
    pub refresher: Arc<TokenRefresher>,
    /// The UI origin the OAuth callback page posts its result to (`PATCHBAY_UI_ORIGIN`).
    pub ui_origin: Option<Arc<str>>,
    /// Where the OAuth callback redirects instead of showing a page (`PATCHBAY_OAUTH_RETURN_URL`).
    pub oauth_return_url: Option<Arc<str>>,
    /// Raised whenever a connection is stored or removed here, so MCP sessions can
    /// announce that their tool list changed.
    pub connections_changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Set to true when the service starts shutting down, so long-lived answers
    /// (the alert stream) end and graceful shutdown can finish.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// With PostgreSQL, the listener that wakes alert-stream followers when another
    /// replica commits alerts.
    pub alert_notifications: Option<Arc<patchbay_store::alert_feed::AlertNotifications>>,
    /// The Kubernetes connector's agent relay: the sockets of connected kubectl agents.
    #[cfg(feature = "connector-kubernetes")]
    pub kubectl_relay: Arc<patchbay_connector_kubernetes::client::Relay>,
    /// With PostgreSQL, this replica's end of the bus that relays agent commands
    /// between replicas.
    #[cfg(feature = "connector-kubernetes")]
    pub kubectl_bus: Option<Arc<patchbay_store::agent_bus::AgentBus>>,
}

/// The names of each registered connector's write operations, by connector id.
pub fn write_operations(registry: &Registry) -> HashMap<&'static str, Vec<&'static str>> {
    registry
        .descriptors()
        .map(|descriptor| {
            let writes = (descriptor.operations)()
                .into_iter()
                .filter(|operation| !operation.read_only)
                .map(|operation| operation.name)
                .collect();
            (descriptor.id, writes)
        })
        .collect()
}
