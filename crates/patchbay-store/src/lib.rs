//! Patchbay storage.
//!
//! Three stores, each a trait so backends can be swapped without touching the host:
//! [`SecretStore`] keeps credentials (the embedded default is an AES-256-GCM
//! encrypted file), [`RecordStore`] keeps connection records, API keys and
//! alerts (the embedded default is SQLite; PostgreSQL serves several replicas).
//! Records hold only a [`SecretRef`], never a secret.
#![deny(missing_docs)]

pub mod agent_bus;
pub mod agent_tokens;
pub mod alert_feed;
pub mod connect_links;
pub mod ingest;
pub mod local;
pub mod metered;
pub mod open;
pub mod postgres;
pub mod records;
pub mod route_cache;
pub mod secrets;
pub mod sqlite;
pub mod vault;

pub use agent_tokens::{AgentActivity, AgentTokenRecord, AgentTokenStatus};
pub use alert_feed::AlertSignal;
pub use connect_links::{
    ConnectLinkRecord, OpenedLink, CONNECT_LINK_RETENTION, CONNECT_LINK_SESSION,
};
pub use ingest::{AlertIngestor, IngestStats};
pub use local::{KeySource, LocalSecretStore, MasterKey};
pub use metered::{MeteredRecordStore, MeteredSecretStore};
pub use open::open_record_store;
pub use postgres::PostgresRecordStore;
pub use records::{
    AlertPage, ApiKeyRecord, BegunState, ConnectionRecord, ConnectionStatus, ConsumedState,
    NewAlert, OutcomeUnknown, PendingAuthorization, RecordStore, RefreshLease, StoredAlert,
    API_KEY_USE_PRECISION, OAUTH_STATE_RETENTION,
};
pub use route_cache::CachedWebhookRoutes;
pub use secrets::{
    modify, SecretLocation, SecretRef, SecretStore, SecretTenant, SecretVersion, MODIFY_ATTEMPTS,
};
pub use sqlite::SqliteRecordStore;
pub use vault::{VaultConfig, VaultSecretStore};
