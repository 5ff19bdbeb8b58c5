//! The records-store contract: connections, API keys and alerts.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_core::{
    Error, ErrorKind, NormalizedAlert, Result, SecretString, Tenant, ValidationReport,
};
use serde::{Deserialize, Serialize};

use crate::agent_tokens::{AgentActivity, AgentTokenRecord, AgentTokenStatus};
use crate::connect_links::{ConnectLinkRecord, OpenedLink};
use crate::secrets::SecretRef;

/// The state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Whether the owner allowed operations that change provider state (off by default).
    pub allow_writes: bool,
    /// The last validation report.
    pub last_report: Option<ValidationReport>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last validated.
    pub validated_at: Option<DateTime<Utc>>,
}

/// A stored API key: its hash and a short prefix, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public id.
    pub id: String,
    /// SHA-256 (hex) of the key.
    pub key_hash: String,
    /// The key's first characters, shown in listings and used to revoke it; too short to
    /// authenticate. `None` for keys created before prefixes were recorded.
    pub prefix: Option<String>,
    /// Whom the key authenticates.
    pub tenant: Tenant,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request, to within [`API_KEY_USE_PRECISION`].
    pub last_used_at: Option<DateTime<Utc>>,
}

/// How stale a key's recorded last use may get: it is written at most this often,
/// so busy keys do not cost a database write per request.
pub const API_KEY_USE_PRECISION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

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

/// For each alert of a batch, in order, whether it was new. `written` gives each
/// alert's `(connection_id, dedup_key)` as the store wrote them; `stored` holds those
/// of the rows one `INSERT … ON CONFLICT DO NOTHING RETURNING` inserted. Where a key
/// repeats inside the batch, only its first copy (the one inserted) counts as new.
pub(crate) fn new_in_batch<'a>(
    written: impl Iterator<Item = (&'a str, &'a str)>,
    stored: &[(String, String)],
) -> Vec<bool> {
    let mut new_keys: std::collections::HashSet<(&str, &str)> = stored
        .iter()
        .map(|(connection_id, dedup_key)| (connection_id.as_str(), dedup_key.as_str()))
        .collect();
    written.map(|key| new_keys.remove(&key)).collect()
}

/// An alert as stored, with its position in the tenant's stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertPage {
    /// Alerts in cursor order.
    pub alerts: Vec<StoredAlert>,
    /// The cursor to pass as `after` for the next page (the last alert's).
    pub next_cursor: Option<i64>,
}

/// An OAuth authorization in progress, keyed by the SHA-256 of its state.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAuthorization {
    /// SHA-256 (hex) of the state sent to the provider; the state itself is never stored.
    pub state_hash: String,
    /// Who started the flow; the connection will belong to them.
    pub tenant: Tenant,
    /// The connector being connected.
    pub connector: String,
    /// The redirect URI sent in the authorize request (the token request must repeat it).
    pub redirect_uri: String,
    /// The label asked for, if any.
    pub label: Option<String>,
    /// Connector options given at the start, as the connector's OAuth spec allows them.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Whether the connection may run write operations, as asked at the start.
    pub allow_writes: bool,
    /// The PKCE verifier (RFC 7636): random, never sent through the browser, and
    /// cleared once the state is consumed.
    pub pkce_verifier: Option<SecretString>,
    /// SHA-256 (hex) of the cookie the begin URL set in the browser that started the
    /// flow; the callback must present that cookie. `None` until the begin URL is opened.
    pub binding_hash: Option<String>,
    /// When the flow started.
    pub created_at: DateTime<Utc>,
    /// When the state stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// What opening a flow's one-time begin URL found.
#[derive(Debug, Clone, PartialEq)]
pub enum BegunState {
    /// First opening, within the lifetime: the browser is now bound to the flow.
    Begun(Box<PendingAuthorization>),
    /// The begin URL was opened before (or the flow already finished): single use.
    AlreadyBegun,
    /// Past its expiry.
    Expired,
    /// Never issued here, or so old it was purged.
    Unknown,
}

/// A refresh lease held by one replica; `fence` grows with every acquisition, so a
/// holder whose lease lapsed and was taken over can tell before it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshLease {
    /// The fencing token of this acquisition.
    pub fence: i64,
    /// When the lease lapses unless released earlier.
    pub until: DateTime<Utc>,
}

/// What consuming a state found.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsumedState {
    /// Unused and within its lifetime: the flow may finish.
    Fresh(PendingAuthorization),
    /// Unused but past its expiry; it is consumed now all the same.
    Expired(PendingAuthorization),
    /// Consumed before: a replay.
    AlreadyUsed,
    /// Never issued here (forged), or so old it was purged.
    Unknown,
}

/// How long consumed and expired states are kept after their expiry, so a replay is
/// told apart from a forgery.
pub const OAUTH_STATE_RETENTION: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The error for a connection whose routing key another connection already has.
pub(crate) fn routing_key_taken(record: &ConnectionRecord) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "routing key {} of connector `{}` already belongs to another connection",
            record.routing_key.as_deref().unwrap_or_default(),
            record.connector
        ),
    )
    .with_field("routing_key")
    .with_hint("disconnect the connection that has it first")
}

/// The error of a records store that keeps no kubectl agent tokens.
fn agent_tokens_unsupported() -> Error {
    Error::unsupported("this records store keeps no kubectl agent tokens")
        .with_hint("use the SQLite or Postgres records store for the Kubernetes connector")
}

/// Connection records, API keys and alerts. Every read is scoped to a tenant.
#[async_trait]
pub trait RecordStore: Send + Sync + 'static {
    /// Creates a connection record. A routing key another connection of the same
    /// connector already has is a [`patchbay_core::ErrorKind::Conflict`]: each routing
    /// key (a Slack workspace) belongs to one connection.
    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<()>;

    /// Creates a connection record that takes over its routing key from the tenant's
    /// previous connection (a reinstall): in one transaction, the connection of the same
    /// scope, connector and routing key is deleted and the new one inserted; the deleted
    /// record is returned so its secret can be removed. A routing key held by another
    /// tenant's connection is a [`patchbay_core::ErrorKind::Conflict`] and nothing
    /// changes. Without a routing key this is [`RecordStore::insert_connection`].
    async fn insert_routed_connection(
        &self,
        record: &ConnectionRecord,
    ) -> Result<Option<ConnectionRecord>>;

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

    /// Replaces the hash of a connection's webhook token (rotation); `NotFound`
    /// when `tenant` cannot see the connection.
    async fn update_webhook_token_hash(&self, tenant: &Tenant, id: &str, hash: &str) -> Result<()>;

    /// Deletes a connection visible to `tenant`; true if one was deleted.
    async fn delete_connection(&self, tenant: &Tenant, id: &str) -> Result<bool>;

    /// Connections of `connector` created by `user_id`, the candidates for a
    /// webhook delivered to that user's path.
    async fn webhook_connections(
        &self,
        connector: &str,
        user_id: &str,
    ) -> Result<Vec<ConnectionRecord>>;

    /// The connection of `connector` whose routing key is `routing_key`, for app-level
    /// webhooks (every tenant: the routing key is provider data). There is at most one.
    async fn routed_connection(
        &self,
        connector: &str,
        routing_key: &str,
    ) -> Result<Option<ConnectionRecord>>;

    /// Every connection whose secret reference starts with `prefix`, whoever owns it,
    /// for maintenance such as moving secrets to a new layout.
    async fn connections_with_secret_prefix(&self, prefix: &str) -> Result<Vec<ConnectionRecord>>;

    /// Points connection `id` at the secret `to` if it still points at `from`, and
    /// remembers `from` as retired until [`RecordStore::forget_retired_secret_ref`];
    /// true when moved.
    async fn move_secret_ref(&self, id: &str, from: &SecretRef, to: &SecretRef) -> Result<bool>;

    /// Connection ids with the secret reference they were moved away from, whose old
    /// secret may still need deleting.
    async fn retired_secret_refs(&self) -> Result<Vec<(String, SecretRef)>>;

    /// Forgets connection `id`'s retired secret reference once that secret is deleted.
    async fn forget_retired_secret_ref(&self, id: &str, reference: &SecretRef) -> Result<()>;

    /// Stores an API key hash.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()>;

    /// The API key with this hash.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>>;

    /// API keys, oldest first, of `user_id` and of `org_id` when given (both: keys of
    /// that user in that organisation).
    async fn list_api_keys(
        &self,
        user_id: Option<&str>,
        org_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>>;

    /// Deletes the API key with this prefix (or, for keys without a prefix, this id),
    /// so it stops authenticating at once; returns it, or `None` if there is none.
    async fn revoke_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>>;

    /// Records that key `id` authenticated a request at `at`, unless a use at most
    /// [`API_KEY_USE_PRECISION`] earlier is already recorded.
    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()>;

    /// Stores a connect link (its token's hash), first purging links whose expiry
    /// and session ended more than [`crate::CONNECT_LINK_RETENTION`] ago.
    async fn insert_connect_link(&self, link: &ConnectLinkRecord) -> Result<()>;

    /// Opens a link exactly once, atomically: of concurrent callers only one sees
    /// `Opened`, and the browser session whose hash is `session_hash` lasts until
    /// `session_expires_at`.
    async fn open_connect_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> Result<OpenedLink>;

    /// The link whose browser session has this hash, while that session lasts.
    async fn find_connect_link_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConnectLinkRecord>>;

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

    /// The cursor of `tenant`'s newest alert, `None` while it has none: where a
    /// follower that wants only new alerts starts.
    async fn last_alert_cursor(&self, tenant: &Tenant) -> Result<Option<i64>>;

    /// Sets a connection's status whoever owns it (the token refresher marks
    /// `needs_reauth`); `NotFound` if there is no such connection.
    async fn set_connection_status(&self, id: &str, status: ConnectionStatus) -> Result<()>;

    /// Stores a pending OAuth authorization, first purging states older than their
    /// expiry plus [`OAUTH_STATE_RETENTION`].
    async fn insert_oauth_state(&self, pending: &PendingAuthorization) -> Result<()>;

    /// Binds a pending state to a browser, exactly once: records the hash of the
    /// cookie set by the begin URL. Of concurrent callers only one sees `Begun`.
    async fn begin_oauth_state(
        &self,
        state_hash: &str,
        binding_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<BegunState>;

    /// Consumes a state exactly once, atomically: of concurrent callers only one
    /// sees `Fresh` (or `Expired`); the others see `AlreadyUsed`. The stored PKCE
    /// verifier is handed over and cleared.
    async fn consume_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumedState>;

    /// Takes the refresh lease of a connection until `until`, if it is free or
    /// expired; `None` when another holder has it. One replica refreshes at a time,
    /// and every acquisition gets a larger fencing token.
    async fn try_acquire_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<RefreshLease>>;

    /// Whether `holder` still holds the lease acquired with `fence` at `now` (not
    /// lapsed, not taken over): checked right before a refreshed token is written.
    async fn refresh_lease_held(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool>;

    /// Gives the refresh lease back, if `holder` still holds it with `fence`.
    async fn release_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
    ) -> Result<()>;

    /// Checks the database is reachable.
    async fn health(&self) -> Result<()>;

    /// Stores a kubectl agent token's hash, bound to its connection.
    async fn insert_agent_token(&self, _token: &AgentTokenRecord) -> Result<()> {
        Err(agent_tokens_unsupported())
    }

    /// The agent token with this SHA-256, whatever its status (authentication tells
    /// revoked and expired tokens apart from unknown ones).
    async fn find_agent_token(&self, _token_hash: &str) -> Result<Option<AgentTokenRecord>> {
        Err(agent_tokens_unsupported())
    }

    /// The newest agent token of a connection.
    async fn agent_token_of(&self, _connection_id: &str) -> Result<Option<AgentTokenRecord>> {
        Err(agent_tokens_unsupported())
    }

    /// Sets the status of every token of a connection that is still active; returns
    /// how many changed.
    async fn set_agent_token_status(
        &self,
        _connection_id: &str,
        _status: AgentTokenStatus,
    ) -> Result<u64> {
        Err(agent_tokens_unsupported())
    }

    /// Records what an agent did on the token with this hash (connected, heartbeat,
    /// registered); fields left `None` keep their value.
    async fn record_agent_activity(
        &self,
        _token_hash: &str,
        _activity: &AgentActivity,
    ) -> Result<()> {
        Err(agent_tokens_unsupported())
    }

    /// A short name for metrics and health reports (`sqlite`, `postgres`).
    fn backend(&self) -> &'static str {
        "custom"
    }
}

/// The cause of a records error after which a write may or may not have been
/// applied: the database received the commit, then the connection dropped before
/// its answer arrived. Callers undoing what led up to the write (a connect removing
/// the secret it stored) must first look whether the write landed.
#[derive(Debug)]
pub struct OutcomeUnknown {
    cause: String,
}

impl OutcomeUnknown {
    /// Marks a failed commit whose cause was `cause`.
    pub fn new(cause: impl fmt::Display) -> Self {
        Self {
            cause: cause.to_string(),
        }
    }

    /// Whether `error` leaves unknown whether its write was applied.
    pub fn is_cause_of(error: &Error) -> bool {
        std::error::Error::source(error).is_some_and(|source| source.is::<OutcomeUnknown>())
    }
}

impl fmt::Display for OutcomeUnknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the connection dropped after the commit was sent, so it may have been applied: {}",
            self.cause
        )
    }
}

impl std::error::Error for OutcomeUnknown {}
