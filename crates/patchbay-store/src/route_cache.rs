//! A short-lived cache of the connection lookups that every webhook delivery makes.
//!
//! Intake reads the connections a delivery may belong to before it verifies it; on a
//! busy endpoint that read, not the alert's write, is most of the database work. This
//! decorator keeps each answer for a short time to live. Any change to a connection
//! made through it empties the cache at once, so this replica never serves a stale
//! answer after its own change; a change made by another replica or process (a second
//! replica's disconnect, `patchbay` run from a shell) is seen once the entries
//! expire. Only lookups that found connections are kept, so unknown users and keys
//! cannot grow it, and it is emptied whenever it reaches [`MAX_ENTRIES`]. Deliveries
//! that miss one key at the same moment share a single read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use patchbay_core::{Result, Tenant, ValidationReport};
use tokio::sync::OnceCell;

use crate::agent_tokens::{AgentActivity, AgentTokenRecord, AgentTokenStatus};
use crate::connect_links::{ConnectLinkRecord, OpenedLink};
use crate::records::{
    AlertPage, ApiKeyRecord, BegunState, ConnectionRecord, ConnectionStatus, ConsumedState,
    NewAlert, PendingAuthorization, RecordStore, RefreshLease,
};
use crate::secrets::SecretRef;

/// The default time a lookup is kept: how long a change made elsewhere may take to
/// reach this replica's webhook intake.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);

/// The most lookups kept at once.
pub const MAX_ENTRIES: usize = 10_000;

/// A lookup's connector and user (or routing key).
type Key = (String, String);

/// One kind of lookup: the answers kept, and the reads under way.
struct Lookups<A> {
    answers: HashMap<Key, (A, Instant)>,
    /// Deliveries that miss the same key together share one read: when a busy key's
    /// answer expires, every delivery in flight would otherwise read it at once and
    /// hold every connection of the pool, the alert writer's included.
    reads: HashMap<Key, Arc<OnceCell<A>>>,
}

impl<A> Default for Lookups<A> {
    fn default() -> Self {
        Self {
            answers: HashMap::new(),
            reads: HashMap::new(),
        }
    }
}

impl<A> Lookups<A> {
    fn clear(&mut self) {
        self.answers.clear();
        self.reads.clear();
    }
}

#[derive(Default)]
struct Entries {
    /// Bumped by every change, so a read that raced a change is not kept.
    generation: u64,
    /// `webhook_connections` by connector and user.
    users: Lookups<Vec<ConnectionRecord>>,
    /// `routed_connection` by connector and routing key.
    routes: Lookups<Option<ConnectionRecord>>,
}

/// A [`RecordStore`] whose webhook lookups (`webhook_connections`, `routed_connection`)
/// are cached for a short time; every other call passes through.
pub struct CachedWebhookRoutes {
    inner: Arc<dyn RecordStore>,
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl CachedWebhookRoutes {
    /// Wraps `inner`, keeping lookups for `ttl`; a zero `ttl` keeps none.
    pub fn wrap(inner: Arc<dyn RecordStore>, ttl: Duration) -> Arc<dyn RecordStore> {
        if ttl.is_zero() {
            return inner;
        }
        Arc::new(Self {
            inner,
            ttl,
            entries: Mutex::new(Entries::default()),
        })
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The answer for `key`: kept, joined from a read under way, or read by `read`.
    /// Answers that `worth_keeping` refuses (found nothing) are not kept.
    async fn lookup<A, R>(
        &self,
        lookups: fn(&mut Entries) -> &mut Lookups<A>,
        key: Key,
        worth_keeping: fn(&A) -> bool,
        read: impl FnOnce() -> R,
    ) -> Result<A>
    where
        A: Clone,
        R: std::future::Future<Output = Result<A>>,
    {
        let (shared, generation) = {
            let mut entries = self.entries();
            let generation = entries.generation;
            let kind = lookups(&mut entries);
            if let Some((answer, expires)) = kind.answers.get(&key) {
                if *expires > Instant::now() {
                    return Ok(answer.clone());
                }
            }
            let shared = Arc::clone(kind.reads.entry(key.clone()).or_default());
            (shared, generation)
        };
        let answer = shared.get_or_try_init(read).await.cloned();
        let mut entries = self.entries();
        // A change since the read began empties the cache and bumps the generation:
        // the answer may predate the change, so it is returned but not kept.
        if entries.generation != generation {
            return answer;
        }
        let kind = lookups(&mut entries);
        // The read is over, failed or not: the next miss starts a new one, and keys
        // whose reads failed (during an outage, say) are not left behind.
        if kind
            .reads
            .get(&key)
            .is_some_and(|under_way| Arc::ptr_eq(under_way, &shared))
        {
            kind.reads.remove(&key);
        }
        let answer = answer?;
        if worth_keeping(&answer) {
            if entries.users.answers.len() + entries.routes.answers.len() >= MAX_ENTRIES {
                entries.users.answers.clear();
                entries.routes.answers.clear();
            }
            let expires = Instant::now() + self.ttl;
            lookups(&mut entries)
                .answers
                .insert(key, (answer.clone(), expires));
        }
        Ok(answer)
    }

    /// Runs a change, then empties the cache (whatever the change's outcome: a
    /// failed commit may still have committed).
    async fn after_change<T>(
        &self,
        change: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let outcome = change.await;
        let mut entries = self.entries();
        entries.generation += 1;
        entries.users.clear();
        entries.routes.clear();
        outcome
    }
}

#[async_trait]
impl RecordStore for CachedWebhookRoutes {
    async fn insert_connection(&self, record: &ConnectionRecord) -> Result<()> {
        self.after_change(self.inner.insert_connection(record))
            .await
    }

    async fn insert_routed_connection(
        &self,
        record: &ConnectionRecord,
    ) -> Result<Option<ConnectionRecord>> {
        self.after_change(self.inner.insert_routed_connection(record))
            .await
    }

    async fn get_connection(&self, tenant: &Tenant, id: &str) -> Result<Option<ConnectionRecord>> {
        self.inner.get_connection(tenant, id).await
    }

    async fn list_connections(&self, tenant: &Tenant) -> Result<Vec<ConnectionRecord>> {
        self.inner.list_connections(tenant).await
    }

    async fn update_validation(
        &self,
        tenant: &Tenant,
        id: &str,
        status: ConnectionStatus,
        metadata: &serde_json::Value,
        report: &ValidationReport,
    ) -> Result<()> {
        self.after_change(
            self.inner
                .update_validation(tenant, id, status, metadata, report),
        )
        .await
    }

    async fn update_webhook_token_hash(&self, tenant: &Tenant, id: &str, hash: &str) -> Result<()> {
        self.after_change(self.inner.update_webhook_token_hash(tenant, id, hash))
            .await
    }

    async fn delete_connection(&self, tenant: &Tenant, id: &str) -> Result<bool> {
        self.after_change(self.inner.delete_connection(tenant, id))
            .await
    }

    async fn webhook_connections(
        &self,
        connector: &str,
        user_id: &str,
    ) -> Result<Vec<ConnectionRecord>> {
        self.lookup(
            |entries| &mut entries.users,
            (connector.to_owned(), user_id.to_owned()),
            |records| !records.is_empty(),
            || self.inner.webhook_connections(connector, user_id),
        )
        .await
    }

    async fn routed_connection(
        &self,
        connector: &str,
        routing_key: &str,
    ) -> Result<Option<ConnectionRecord>> {
        self.lookup(
            |entries| &mut entries.routes,
            (connector.to_owned(), routing_key.to_owned()),
            Option::is_some,
            || self.inner.routed_connection(connector, routing_key),
        )
        .await
    }

    async fn connections_with_secret_prefix(&self, prefix: &str) -> Result<Vec<ConnectionRecord>> {
        self.inner.connections_with_secret_prefix(prefix).await
    }

    async fn move_secret_ref(&self, id: &str, from: &SecretRef, to: &SecretRef) -> Result<bool> {
        self.after_change(self.inner.move_secret_ref(id, from, to))
            .await
    }

    async fn retired_secret_refs(&self) -> Result<Vec<(String, SecretRef)>> {
        self.inner.retired_secret_refs().await
    }

    async fn forget_retired_secret_ref(&self, id: &str, reference: &SecretRef) -> Result<()> {
        self.inner.forget_retired_secret_ref(id, reference).await
    }

    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        self.inner.insert_api_key(key).await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        self.inner.find_api_key(key_hash).await
    }

    async fn list_api_keys(
        &self,
        user_id: Option<&str>,
        org_id: Option<&str>,
    ) -> Result<Vec<ApiKeyRecord>> {
        self.inner.list_api_keys(user_id, org_id).await
    }

    async fn revoke_api_key(&self, prefix: &str) -> Result<Option<ApiKeyRecord>> {
        self.inner.revoke_api_key(prefix).await
    }

    async fn touch_api_key(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.inner.touch_api_key(id, at).await
    }

    async fn insert_connect_link(&self, link: &ConnectLinkRecord) -> Result<()> {
        self.inner.insert_connect_link(link).await
    }

    async fn open_connect_link(
        &self,
        token_hash: &str,
        session_hash: &str,
        now: DateTime<Utc>,
        session_expires_at: DateTime<Utc>,
    ) -> Result<OpenedLink> {
        self.inner
            .open_connect_link(token_hash, session_hash, now, session_expires_at)
            .await
    }

    async fn find_connect_link_session(
        &self,
        session_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConnectLinkRecord>> {
        self.inner
            .find_connect_link_session(session_hash, now)
            .await
    }

    async fn insert_alerts(&self, alerts: &[NewAlert]) -> Result<Vec<bool>> {
        self.inner.insert_alerts(alerts).await
    }

    async fn list_alerts(
        &self,
        tenant: &Tenant,
        after: Option<i64>,
        limit: u32,
    ) -> Result<AlertPage> {
        self.inner.list_alerts(tenant, after, limit).await
    }

    async fn last_alert_cursor(&self, tenant: &Tenant) -> Result<Option<i64>> {
        self.inner.last_alert_cursor(tenant).await
    }

    async fn set_connection_status(&self, id: &str, status: ConnectionStatus) -> Result<()> {
        self.after_change(self.inner.set_connection_status(id, status))
            .await
    }

    async fn insert_oauth_state(&self, pending: &PendingAuthorization) -> Result<()> {
        self.inner.insert_oauth_state(pending).await
    }

    async fn begin_oauth_state(
        &self,
        state_hash: &str,
        binding_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<BegunState> {
        self.inner
            .begin_oauth_state(state_hash, binding_hash, now)
            .await
    }

    async fn consume_oauth_state(
        &self,
        state_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ConsumedState> {
        self.inner.consume_oauth_state(state_hash, now).await
    }

    async fn try_acquire_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        until: DateTime<Utc>,
    ) -> Result<Option<RefreshLease>> {
        self.inner
            .try_acquire_refresh_lease(connection_id, holder, until)
            .await
    }

    async fn refresh_lease_held(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.inner
            .refresh_lease_held(connection_id, holder, fence, now)
            .await
    }

    async fn release_refresh_lease(
        &self,
        connection_id: &str,
        holder: &str,
        fence: i64,
    ) -> Result<()> {
        self.inner
            .release_refresh_lease(connection_id, holder, fence)
            .await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    async fn insert_agent_token(&self, token: &AgentTokenRecord) -> Result<()> {
        self.inner.insert_agent_token(token).await
    }

    async fn find_agent_token(&self, token_hash: &str) -> Result<Option<AgentTokenRecord>> {
        self.inner.find_agent_token(token_hash).await
    }

    async fn agent_token_of(&self, connection_id: &str) -> Result<Option<AgentTokenRecord>> {
        self.inner.agent_token_of(connection_id).await
    }

    async fn set_agent_token_status(
        &self,
        connection_id: &str,
        status: AgentTokenStatus,
    ) -> Result<u64> {
        self.inner
            .set_agent_token_status(connection_id, status)
            .await
    }

    async fn record_agent_activity(
        &self,
        token_hash: &str,
        activity: &AgentActivity,
    ) -> Result<()> {
        self.inner.record_agent_activity(token_hash, activity).await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}
