//! Store decorators that count every call and time it, by backend and operation,
//! for the host's metrics. The wrapped store's answers pass through unchanged.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_core::metrics::{STORE_OPERATIONS, STORE_OPERATION_SECONDS};
use patchbay_core::{Result, RevealedJson, Tenant, ValidationReport};

use crate::agent_tokens::{AgentActivity, AgentTokenRecord, AgentTokenStatus};
use crate::connect_links::{ConnectLinkRecord, OpenedLink};
use crate::records::{
    AlertPage, ApiKeyRecord, BegunState, ConnectionRecord, ConnectionStatus, ConsumedState,
    NewAlert, PendingAuthorization, RecordStore, RefreshLease,
};
use crate::secrets::{SecretLocation, SecretRef, SecretStore, SecretVersion};

/// Counts and times one store call.
async fn observe<T>(
    backend: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let started = Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(
        STORE_OPERATIONS,
        "backend" => backend,
        "operation" => operation,
        "outcome" => outcome,
    )
    .increment(1);
    metrics::histogram!(
        STORE_OPERATION_SECONDS,
        "backend" => backend,
        "operation" => operation,
    )
    .record(started.elapsed().as_secs_f64());
    result
}

/// A [`RecordStore`] whose calls are counted and timed.
pub struct MeteredRecordStore {
    inner: Arc<dyn RecordStore>,
}

impl MeteredRecordStore {
    /// Wraps `inner`; its [`RecordStore::backend`] names it in the metrics.
    pub fn wrap(inner: Arc<dyn RecordStore>) -> Arc<dyn RecordStore> {
        Arc::new(Self { inner })
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        observe(self.inner.backend(), operation, call).await
    }
}

#[async_trait]
impl RecordStore for MeteredRecordStore {
    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<()> {
        self.observe("insert_connection", self.inner.insert_connection(record))
            .await
    }

    async fn insert_routed_connection(
        &self,
        record: &ConnectionRecord,
    ) -> Result<Option<ConnectionRecord>> {
        self.observe(
            "insert_routed_connection",
            self.inner.insert_routed_connection(record),
        )
        .await
    }

    async fn get_connection(&self, tenant: &Tenant, id: &str) -> Result<Option<ConnectionRecord>> {
        self.observe("get_connection", self.inner.get_connection(tenant, id))
            .await
    }

    async fn list_connections(&self, tenant: &Tenant) -> Result<Vec<ConnectionRecord>> {
        self.observe("list_connections", self.inner.list_connections(tenant))
            .await
    }

    async fn update_validation(
        &self,
        tenant: &Tenant,
        id: &str,
        status: ConnectionStatus,
        metadata: &serde_json::Value,
        report: &ValidationReport,
    ) -> Result<()> {
        self.observe(
            "update_validation",
            self.inner
                .update_validation(tenant, id, status, metadata, report),
        )
        .await
    }

    async fn update_webhook_token_hash(&self, tenant: &Tenant, id: &str, hash: &str) -> Result<()> {
        self.observe(
            "update_webhook_token_hash",
            self.inner.update_webhook_token_hash(tenant, id, hash),
        )
        .await
    }

    async fn delete_connection(&self, tenant: &Tenant, id: &str) -> Result<bool> {
        self.observe(
            "delete_connection",
            self.inner.delete_connection(tenant, id),
        )
        .await
    }

    async fn webhook_connections(
        &self,
        connector: &str,
        user_id: &str,
    ) -> Result<Vec<ConnectionRecord>> {
        self.observe(
            "webhook_connections",
            self.inner.webhook_connections(connector, user_id),
        )
        .await
    }

    async fn routed_connection(
        &self,
        connector: &str,
        routing_key: &str,
    ) -> Result<Option<ConnectionRecord>> {
        self.observe(
            "routed_connection",
            self.inner.routed_connection(connector, routing_key),
        )
        .await
    }

    async fn connections_with_secret_prefix(&self, prefix: &str) -> Result<Vec<ConnectionRecord>> {
        self.observe(
            "connections_with_secret_prefix",
            self.inner.connections_with_secret_prefix(prefix),
        )
        .await
    }

    async fn move_secret_ref(&self, id: &str, from: &SecretRef, to: &SecretRef) -> Result<bool> {
        self.observe("move_secret_ref", self.inner.move_secret_ref(id, from, to))
            .await
    }

    async fn retired_secret_refs(&self) -> Result<Vec<(String, SecretRef)>> {
        self.observe("retired_secret_refs", self.inner.retired_secret_refs())
            .await
    }

    async fn forget_retired_secret_ref(&self, id: &str, reference: &SecretRef) -> Result<()> {
        self.observe(
            "forget_retired_secret_ref",
            self.inner.forget_retired_secret_ref(id, reference),
        )
        .await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        self.observe("insert_api_key", self.inner.insert_api_key(key))
            .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        self.observe("find_api_key", self.inner.find_api_key(key_hash))
            .await
    }

    async fn list_api_keys(
        &self,
        user_id: Option<&str>,
        org_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>> {
        self.observe("list_api_keys", self.inner.list_api_keys(user_id, org_id))
            .await
    }

    async fn revoke_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>> {
        self.observe("revoke_api_key", self.inner.revoke_api_key(prefix))
            .await
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.observe("touch_api_key", self.inner.touch_api_key(id, at))
            .await
    }

    async fn insert_connect_link(&self, link: &ConnectLinkRecord) -> Result<()> {
        self.observe("insert_connect_link", self.inner.insert_connect_link(link))
            .await
    }

    async fn open_connect_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> Result<OpenedLink> {
        self.observe(
            "open_connect_link",
            self.inner
                .open_connect_link(token_hash, session_hash, now, session_expires_at),
        )
        .await
    }

    async fn find_connect_link_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConnectLinkRecord>> {
        self.observe(
            "find_connect_link_session",
            self.inner.find_connect_link_session(session_hash, now),
        )
        .await
    }

    async fn insert_alerts(&self, alerts: &[NewAlert]) -> Result<Vec<bool>> {
        self.observe("insert_alerts", self.inner.insert_alerts(alerts))
            .await
    }

    async fn list_alerts(
        &self,
        tenant: &Tenant,
        after: Option<i64>,
        limit: u32,
    ) -> Result<AlertPage> {
        self.observe("list_alerts", self.inner.list_alerts(tenant, after, limit))
            .await
    }

    async fn last_alert_cursor(&self, tenant: &Tenant) -> Result<Option<i64>> {
        self.observe("last_alert_cursor", self.inner.last_alert_cursor(tenant))
            .await
    }

    async fn set_connection_status(&self, id: &str, status: ConnectionStatus) -> Result<()> {
        self.observe(
            "set_connection_status",
            self.inner.set_connection_status(id, status),
        )
        .await
    }

    async fn insert_oauth_state(&self, pending: &PendingAuthorization) -> Result<()> {
        self.observe("insert_oauth_state", self.inner.insert_oauth_state(pending))
            .await
    }

    async fn begin_oauth_state(
        &self,
        state_hash: &str,
        binding_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<BegunState> {
        self.observe(
            "begin_oauth_state",
            self.inner.begin_oauth_state(state_hash, binding_hash, now),
        )
        .await
    }

    async fn consume_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumedState> {
        self.observe(
            "consume_oauth_state",
            self.inner.consume_oauth_state(state_hash, now),
        )
        .await
    }

    async fn try_acquire_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<RefreshLease>> {
        self.observe(
            "try_acquire_refresh_lease",
            self.inner
                .try_acquire_refresh_lease(connection_id, holder, until),
        )
        .await
    }

    async fn refresh_lease_held(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.observe(
            "refresh_lease_held",
            self.inner
                .refresh_lease_held(connection_id, holder, fence, now),
        )
        .await
    }

    async fn release_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
    ) -> Result<()> {
        self.observe(
            "release_refresh_lease",
            self.inner
                .release_refresh_lease(connection_id, holder, fence),
        )
        .await
    }

    async fn health(&self) -> Result<()> {
        self.observe("health", self.inner.health()).await
    }

    async fn insert_agent_token(&self, token: &AgentTokenRecord) -> Result<()> {
        self.observe("insert_agent_token", self.inner.insert_agent_token(token))
            .await
    }

    async fn find_agent_token(&self, token_hash: &str) -> Result<Option<AgentTokenRecord>> {
        self.observe("find_agent_token", self.inner.find_agent_token(token_hash))
            .await
    }

    async fn agent_token_of(&self, connection_id: &str) -> Result<Option<AgentTokenRecord>> {
        self.observe("agent_token_of", self.inner.agent_token_of(connection_id))
            .await
    }

    async fn set_agent_token_status(
        &self,
        connection_id: &str,
        status: AgentTokenStatus,
    ) -> Result<u64> {
        self.observe(
            "set_agent_token_status",
            self.inner.set_agent_token_status(connection_id, status),
        )
        .await
    }

    async fn record_agent_activity(
        &self,
        token_hash: &str,
        activity: &AgentActivity,
    ) -> Result<()> {
        self.observe(
            "record_agent_activity",
            self.inner.record_agent_activity(token_hash, activity),
        )
        .await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

/// A [`SecretStore`] whose calls are counted and timed.
pub struct MeteredSecretStore {
    inner: Arc<dyn SecretStore>,
}

impl MeteredSecretStore {
    /// Wraps `inner`; its [`SecretStore::backend`] names it in the metrics.
    pub fn wrap(inner: Arc<dyn SecretStore>) -> Arc<dyn SecretStore> {
        Arc::new(Self { inner })
    }

    async fn observe<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        observe(self.inner.backend(), operation, call).await
    }
}

#[async_trait]
impl SecretStore for MeteredSecretStore {
    async fn put(&self, location: &SecretLocation, value: &RevealedJson) -> Result<SecretRef> {
        self.observe("put", self.inner.put(location, value)).await
    }

    fn reference_for(&self, location: &SecretLocation) -> Option<SecretRef> {
        self.inner.reference_for(location)
    }

    async fn get_versioned(&self, reference: &SecretRef) -> Result<(RevealedJson, SecretVersion)> {
        self.observe("get_versioned", self.inner.get_versioned(reference))
            .await
    }

    async fn update_if_version(
        &self,
        reference: &SecretRef,
        expected: SecretVersion,
        value: &RevealedJson,
    ) -> Result<SecretVersion> {
        self.observe(
            "update_if_version",
            self.inner.update_if_version(reference, expected, value),
        )
        .await
    }

    async fn get(&self, reference: &SecretRef) -> Result<RevealedJson> {
        self.observe("get", self.inner.get(reference)).await
    }

    async fn get_uncached(&self, reference: &SecretRef) -> Result<RevealedJson> {
        self.observe("get_uncached", self.inner.get_uncached(reference))
            .await
    }

    async fn delete(&self, reference: &SecretRef) -> Result<()> {
        self.observe("delete", self.inner.delete(reference)).await
    }

    async fn list(&self) -> Result<Vec<SecretRef>> {
        self.observe("list", self.inner.list()).await
    }

    async fn health(&self) -> Result<()> {
        self.observe("health", self.inner.health()).await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
