//! The records-store contract: connections, API keys and alerts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_core::{NormalizedAlert, Result, Tenant, ValidationReport};
use serde::{Deserialize, Serialize};

use crate::secrets::SecretRef;

/// The state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Validated and usable.
    Active,
    /// Usable, but some optional checks failed on the last validation.
    Degraded,
    /// The last validation failed.
    Failed,
    /// A person must reconnect (revoked or expired grant).
    NeedsReauth,
}

impl ConnectionStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Degraded => "degraded",
            Self::Failed => "failed",
            Self::NeedsReauth => "needs_reauth",
        }
    }

    /// Parses the stored text form.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => Self::Active,
            "degraded" => Self::Degraded,
            "failed" => Self::Failed,
            "needs_reauth" => Self::NeedsReauth,
            _ => return None,
        })
    }
}

/// One stored connection. Holds no secret: only the reference to one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRecord {
    /// Opaque id (a UUID).
    pub id: String,
    /// Who created it and for which org.
    pub tenant: Tenant,
    /// The connector id.
    pub connector: String,
    /// The user's label ("prod EU").
    pub label: String,
    /// Non-secret settings and provider metadata.
    pub metadata: serde_json::Value,
    /// Where the secrets are.
    pub secret_ref: SecretRef,
    /// Current state.
    pub status: ConnectionStatus,
    /// SHA-256 (hex) of the webhook token, for token-authenticated webhooks.
    #[serde(skip_serializing)]
    pub webhook_token_hash: Option<String>,
    /// The key app-level webhooks find this connection by (a Slack team id).
    pub routing_key: Option<String>,
    /// The last validation report.
    pub last_report: Option<ValidationReport>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last validated.
    pub validated_at: Option<DateTime<Utc>>,
}

/// A stored API key (only its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id, shown in listings.
    pub id: String,
    /// SHA-256 (hex) of the key.
    pub key_hash: String,
    /// Whom the key authenticates.
    pub tenant: Tenant,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An alert to store, with where it came from.
#[derive(Debug, Clone)]
pub struct NewAlert {
    /// The connection that received it.
    pub connection_id: String,
    /// The owning tenant.
    pub tenant: Tenant,
    /// The normalised alert.
    pub alert: NormalizedAlert,
}

/// An alert as stored, with its position in the tenant's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredAlert {
    /// Monotonic position; pass as `after` to read the next ones.
    pub cursor: i64,
    /// The connection that received it.
    pub connection_id: String,
    /// When Patchbay stored it.
    pub received_at: DateTime<Utc>,
    /// The alert.
    #[serde(flatten)]
    pub alert: NormalizedAlert,
}

/// One page of alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPage {
    /// Alerts in cursor order.
    pub alerts: Vec<StoredAlert>,
    /// The cursor to pass as `after` for the next page (the last alert's).
    pub next_cursor: Option<i64>,
}

/// Connection records, API keys and alerts. Every read is scoped to a tenant.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Creates a connection record.
    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<()>;

    /// A connection visible to `tenant` (same org, or same user when no org).
    async fn get_connection(&self, tenant: &Tenant, id: &str) -> Result<Option<ConnectionRecord>>;

    /// Every connection visible to `tenant`, oldest first.
    async fn list_connections(&self, tenant: &Tenant) -> Result<Vec<ConnectionRecord>>;

    /// Records a validation result.
    async fn update_validation(
        &self,
        tenant: &Tenant,
        id: &str,
        status: ConnectionStatus,
        metadata: &serde_json::Value,
        report: &ValidationReport,
    ) -> Result<()>;

    /// Deletes a connection visible to `tenant`; true if one was deleted.
    async fn delete_connection(&self, tenant: &Tenant, id: &str) -> Result<bool>;

    /// Connections of `connector` created by `user_id`, the candidates for a
    /// webhook delivered to that user's path.
    async fn webhook_connections(
        &self,
        connector: &str,
        user_id: &str,
    ) -> Result<Vec<ConnectionRecord>>;

    /// Connections of `connector` whose routing key is `routing_key`, for
    /// app-level webhooks (every tenant: the routing key is provider data).
    async fn routed_connections(
        &self,
        connector: &str,
        routing_key: &str,
    ) -> Result<Vec<ConnectionRecord>>;

    /// Stores an API key hash.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()>;

    /// The tenant an API key hash belongs to.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<Tenant>>;

    /// Stores alerts in one transaction; returns, per alert, whether it was new
    /// (false: a duplicate `(connection_id, dedup_key)`).
    async fn insert_alerts(&self, alerts: &[NewAlert]) -> Result<Vec<bool>>;

    /// Alerts visible to `tenant` after `after`, in order, at most `limit`.
    async fn list_alerts(
        &self,
        tenant: &Tenant,
        after: Option<i64>,
        limit: u32,
    ) -> Result<AlertPage>;

    /// Checks the database is reachable.
    async fn health(&self) -> Result<()>;
}
