//! Group commit for incoming alerts.
//!
//! Every webhook delivery must be durable before it is acknowledged, and a
//! durable write costs one fsync. One writer task gathers whatever alerts are
//! waiting into a single [`RecordStore::insert_alerts`] transaction, so many
//! concurrent deliveries share one fsync instead of queueing for their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use patchbay_core::{Error, Result};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio::task::JoinHandle;

use crate::alert_feed::AlertSignal;
use crate::records::{NewAlert, RecordStore};

/// How many alerts may wait for the writer before `ingest` callers wait too.
pub const QUEUE_CAPACITY: usize = 4096;

struct IngestRequest {
    alert: NewAlert,
    reply: oneshot::Sender<Result<bool>>,
}

/// Counters of the work the writer has committed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Write transactions committed (or attempted).
    pub batches: u64,
    /// Alerts in those transactions.
    pub alerts: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    alerts: AtomicU64,
}

/// A handle to the single alert writer; clones share it.
#[derive(Clone)]
pub struct AlertIngestor {
    sender: mpsc::Sender<IngestRequest>,
    counters: Arc<Counters>,
    stop: Arc<Notify>,
    writer: Arc<Mutex<Option<JoinHandle<()>>>>,
    committed: AlertSignal,
}

impl std::fmt::Debug for AlertIngestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertIngestor")
            .field("stats", &self.stats())
            .field("queue_depth", &self.queue_depth())
            .finish_non_exhaustive()
    }
}

impl AlertIngestor {
    /// Starts the writer task; it commits at most `max_batch` alerts (at least
    /// one) per transaction. Must be called inside a Tokio runtime.
    pub fn spawn(store: Arc<dyn RecordStore>, max_batch: usize) -> AlertIngestor {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(Notify::new());
        let committed = AlertSignal::new();
        let writer = tokio::spawn(run_writer(
            store,
            receiver,
            max_batch.max(1),
            Arc::clone(&counters),
            Arc::clone(&stop),
            committed.clone(),
        ));
        AlertIngestor {
            sender,
            counters,
            stop,
            writer: Arc::new(Mutex::new(Some(writer))),
            committed,
        }
    }

    /// The signal raised after every batch that stored a new alert: followers of
    /// the alert stream wait on it (and on other replicas' batches, see
    /// [`crate::alert_feed`]).
    pub fn committed(&self) -> &AlertSignal {
        &self.committed
    }

    /// Stores one alert; returns once the transaction holding it committed:
    /// `true` if it was new, `false` if it duplicated a stored one.
    ///
    /// Waits while the queue is full, so overload slows senders down.
    pub async fn ingest(&self, alert: NewAlert) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(IngestRequest { alert, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> IngestStats {
        IngestStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            alerts: self.counters.alerts.load(Ordering::Relaxed),
        }
    }

    /// How many alerts are queued and not yet taken by the writer.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Stops accepting alerts, writes every queued one, and waits for the
    /// writer to finish. Later `ingest` calls on any clone fail as unavailable.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take();
        if let Some(writer) = writer {
            if let Err(error) = writer.await {
                tracing::error!(%error, "alert writer task failed");
            }
        }
    }
}

fn stopped() -> Error {
    Error::unavailable("the alert writer has stopped")
        .with_hint("the service is shutting down or its writer failed; retry the delivery")
}

async fn run_writer(
    store: Arc<dyn RecordStore>,
    mut receiver: mpsc::Receiver<IngestRequest>,
    max_batch: usize,
    counters: Arc<Counters>,
    stop: Arc<Notify>,
    committed: AlertSignal,
) {
    let mut stopping = false;
    loop {
        let first = if stopping {
            receiver.recv().await
        } else {
            tokio::select! {
                request = receiver.recv() => request,
                () = stop.notified() => {
                    // Refuse new alerts but still drain the queued ones below.
                    receiver.close();
                    stopping = true;
                    continue;
                }
            }
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        write_batch(store.as_ref(), batch, &counters, &committed).await;
    }
}

/// Commits one batch, raises `committed` if it stored a new alert, then answers
/// its senders (so followers are woken before a webhook is acknowledged).
async fn write_batch(
    store: &dyn RecordStore,
    batch: Vec<IngestRequest>,
    counters: &Counters,
    committed: &AlertSignal,
) {
    let (alerts, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|request| (request.alert, request.reply))
        .unzip();
    let outcome = store.insert_alerts(&alerts).await;
    metrics::histogram!(patchbay_core::metrics::ALERT_COMMIT_BATCH_SIZE)
        .record(alerts.len() as f64);
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters
        .alerts
        .fetch_add(alerts.len() as u64, Ordering::Relaxed);
    match outcome {
        Ok(inserted) if inserted.len() == replies.len() => {
            if inserted.contains(&true) {
                committed.raise();
            }
            for (reply, is_new) in replies.into_iter().zip(inserted) {
                // A waiter that gave up no longer needs the answer.
                let _ = reply.send(Ok(is_new));
            }
        }
        Ok(inserted) => {
            let error = Error::internal(format!(
                "the records store answered {} results for {} alerts",
                inserted.len(),
                replies.len()
            ));
            answer_all_with(replies, &error);
        }
        Err(error) => {
            tracing::warn!(%error, alerts = alerts.len(), "alert batch write failed");
            answer_all_with(replies, &error);
        }
    }
}

fn answer_all_with(replies: Vec<oneshot::Sender<Result<bool>>>, error: &Error) {
    for reply in replies {
        let _ = reply.send(Err(copy_error(error)));
    }
}

/// `Error` is not `Clone` (its source is a boxed trait object), so each waiter
/// gets a new error with the same kind, message and context.
fn copy_error(error: &Error) -> Error {
    let mut copy = Error::new(error.kind(), error.message());
    if let Some(connector) = error.connector() {
        copy = copy.with_connector(connector);
    }
    if let Some(field) = error.field() {
        copy = copy.with_field(field);
    }
    if let Some(hint) = error.hint() {
        copy = copy.with_hint(hint);
    }
    if let Some(retry_after) = error.retry_after() {
        copy = copy.with_retry_after(retry_after);
    }
    if let Some(status) = error.provider_status() {
        copy = copy.with_provider_status(status);
    }
    copy
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use patchbay_core::{
        AlertSeverity, AlertStatus, ErrorKind, EventKind, NormalizedAlert, Tenant, ValidationReport,
    };
    use serde_json::json;
    use tokio::sync::Semaphore;

    use super::*;
    use crate::records::{
        AlertPage, ApiKeyRecord, BegunState, ConnectionRecord, ConnectionStatus, ConsumedState,
        PendingAuthorization, RefreshLease,
    };
    use crate::{SecretRef, SqliteRecordStore};

    fn tenant() -> Tenant {
        Tenant {
            user_id: "alice".into(),
            org_id: Some("acme".into()),
        }
    }

    fn alert(dedup_key: &str) -> NewAlert {
        NewAlert {
            connection_id: "conn-1".into(),
            tenant: tenant(),
            alert: NormalizedAlert {
                source: "datadog".into(),
                kind: EventKind::Alert,
                external_id: "monitor-1".into(),
                dedup_key: dedup_key.into(),
                title: "Disk almost full".into(),
                status: AlertStatus::Firing,
                severity: AlertSeverity::Critical,
                service: None,
                started_at: Some(Utc::now()),
                ended_at: None,
                url: None,
                labels: BTreeMap::new(),
                tags: Vec::new(),
                raw: json!({ "key": dedup_key }),
            },
        }
    }

    /// Wraps a real store; holds each `insert_alerts` until the test lets it
    /// through, records batch sizes, and can fail every write.
    struct GatedStore {
        inner: SqliteRecordStore,
        gate: Semaphore,
        batch_sizes: Mutex<Vec<usize>>,
        fail: bool,
    }

    impl GatedStore {
        async fn new(fail: bool) -> Arc<Self> {
            Arc::new(Self {
                inner: SqliteRecordStore::open_in_memory().await.unwrap(),
                gate: Semaphore::new(0),
                batch_sizes: Mutex::new(Vec::new()),
                fail,
            })
        }

        fn open_gate(&self) {
            self.gate.add_permits(Semaphore::MAX_PERMITS);
        }

        fn batch_sizes(&self) -> Vec<usize> {
            self.batch_sizes.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl RecordStore for GatedStore {
        async fn insert_connection(&self, record: &ConnectionRecord) -> Result<()> {
            self.inner.insert_connection(record).await
        }

        async fn get_connection(
            &self,
            tenant: &Tenant,
            id: &str,
        ) -> Result<Option<ConnectionRecord>> {
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
            self.inner
                .update_validation(tenant, id, status, metadata, report)
                .await
        }

        async fn delete_connection(&self, tenant: &Tenant, id: &str) -> Result<bool> {
            self.inner.delete_connection(tenant, id).await
        }

        async fn insert_connect_link(&self, link: &crate::ConnectLinkRecord) -> Result<()> {
            self.inner.insert_connect_link(link).await
        }

        async fn open_connect_link(
            &self,
            token_hash: &str,
            session_hash: &str,
            now: DateTime<Utc>,
            session_expires_at: DateTime<Utc>,
        ) -> Result<crate::OpenedLink> {
            self.inner
                .open_connect_link(token_hash, session_hash, now, session_expires_at)
                .await
        }

        async fn find_connect_link_session(
            &self,
            session_hash: &str,
            now: DateTime<Utc>,
        ) -> Result<Option<crate::ConnectLinkRecord>> {
            self.inner
                .find_connect_link_session(session_hash, now)
                .await
        }

        async fn webhook_connections(
            &self,
            connector: &str,
            user_id: &str,
        ) -> Result<Vec<ConnectionRecord>> {
            self.inner.webhook_connections(connector, user_id).await
        }

        async fn update_webhook_token_hash(
            &self,

            tenant: &Tenant,

            id: &str,

            hash: &str,
        ) -> Result<()> {
            self.inner.update_webhook_token_hash(tenant, id, hash).await
        }

        async fn insert_routed_connection(
            &self,
            record: &ConnectionRecord,
        ) -> Result<Option<ConnectionRecord>> {
            self.inner.insert_routed_connection(record).await
        }

        async fn routed_connection(
            &self,
            connector: &str,
            routing_key: &str,
        ) -> Result<Option<ConnectionRecord>> {
            self.inner.routed_connection(connector, routing_key).await
        }

        async fn connections_with_secret_prefix(
            &self,
            prefix: &str,
        ) -> Result<Vec<ConnectionRecord>> {
            self.inner.connections_with_secret_prefix(prefix).await
        }

        async fn move_secret_ref(
            &self,
            id: &str,
            from: &SecretRef,
            to: &SecretRef,
        ) -> Result<bool> {
            self.inner.move_secret_ref(id, from, to).await
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

        async fn insert_alerts(&self, alerts: &[NewAlert]) -> Result<Vec<bool>> {
            self.batch_sizes.lock().unwrap().push(alerts.len());
            let _permit = self.gate.acquire().await.unwrap();
            if self.fail {
                return Err(Error::unavailable("records database unavailable")
                    .with_hint("free some disk space"));
            }
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
            self.inner.set_connection_status(id, status).await
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
    }

    async fn wait_until(mut condition: impl FnMut() -> bool) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("condition not reached within 10 s");
    }

    /// Starts one ingest that the gated store holds, then queues `queued` more
    /// behind it; returns the pending tasks in order.
    async fn hold_first_and_queue(
        ingestor: &AlertIngestor,
        store: &GatedStore,
        queued: usize,
    ) -> Vec<JoinHandle<Result<bool>>> {
        let spawn = |key: String| {
            let ingestor = ingestor.clone();
            tokio::spawn(async move { ingestor.ingest(alert(&key)).await })
        };
        let mut tasks = vec![spawn("held".into())];
        wait_until(|| store.batch_sizes().len() == 1).await;
        for index in 0..queued {
            tasks.push(spawn(format!("queued-{index}")));
        }
        wait_until(|| ingestor.queue_depth() == queued).await;
        tasks
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_ingests_are_all_stored_in_fewer_transactions() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteRecordStore::open(dir.path().join("alerts.db").to_str().unwrap())
                .await
                .unwrap(),
        );
        let ingestor = AlertIngestor::spawn(store.clone(), 256);
        let tasks: Vec<_> = (0..500)
            .map(|index| {
                let ingestor = ingestor.clone();
                tokio::spawn(async move { ingestor.ingest(alert(&format!("k{index}"))).await })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap().unwrap(), "every alert is new");
        }

        let page = store.list_alerts(&tenant(), None, 1000).await.unwrap();
        assert_eq!(page.alerts.len(), 500);
        let stats = ingestor.stats();
        assert_eq!(stats.alerts, 500);
        assert!(stats.batches < stats.alerts, "{stats:?}");
        ingestor.shutdown().await;
    }

    #[tokio::test]
    async fn queued_alerts_share_one_transaction_up_to_max_batch() {
        let store = GatedStore::new(false).await;
        let ingestor = AlertIngestor::spawn(store.clone(), 4);
        let tasks = hold_first_and_queue(&ingestor, &store, 10).await;
        store.open_gate();
        for task in tasks {
            assert!(task.await.unwrap().unwrap());
        }
        assert_eq!(store.batch_sizes(), [1, 4, 4, 2]);
        assert_eq!(
            ingestor.stats(),
            IngestStats {
                batches: 4,
                alerts: 11
            }
        );
    }

    #[tokio::test]
    async fn a_duplicate_reports_false() {
        let store = Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
        let ingestor = AlertIngestor::spawn(store.clone(), 64);
        assert!(ingestor.ingest(alert("same")).await.unwrap());
        assert!(!ingestor.ingest(alert("same")).await.unwrap());
        let page = store.list_alerts(&tenant(), None, 10).await.unwrap();
        assert_eq!(page.alerts.len(), 1);
    }

    #[tokio::test]
    async fn followers_are_woken_by_new_alerts_before_the_sender_is_answered() {
        let store = Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
        let ingestor = AlertIngestor::spawn(store, 64);
        let mut follower = ingestor.committed().subscribe();
        assert!(ingestor.ingest(alert("first")).await.unwrap());
        assert!(follower.has_changed().unwrap(), "woken by a new alert");
        follower.mark_unchanged();
        assert!(!ingestor.ingest(alert("first")).await.unwrap());
        assert!(
            !follower.has_changed().unwrap(),
            "a duplicate stores nothing new, so no one is woken"
        );
    }

    #[tokio::test]
    async fn a_failed_write_reaches_every_waiter_in_the_batch() {
        let store = GatedStore::new(true).await;
        let ingestor = AlertIngestor::spawn(store.clone(), 64);
        let tasks = hold_first_and_queue(&ingestor, &store, 5).await;
        store.open_gate();
        for task in tasks {
            let error = task.await.unwrap().unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Unavailable);
            assert_eq!(error.message(), "records database unavailable");
            assert_eq!(error.hint(), Some("free some disk space"));
        }
        assert_eq!(store.batch_sizes(), [1, 5]);
    }

    #[tokio::test]
    async fn shutdown_drains_the_queue_then_refuses_alerts() {
        let store = GatedStore::new(false).await;
        let ingestor = AlertIngestor::spawn(store.clone(), 64);
        let tasks = hold_first_and_queue(&ingestor, &store, 3).await;
        let survivor = ingestor.clone();
        let shutdown = tokio::spawn(ingestor.shutdown());
        store.open_gate();
        shutdown.await.unwrap();
        for task in tasks {
            assert!(task.await.unwrap().unwrap());
        }
        let page = store.list_alerts(&tenant(), None, 10).await.unwrap();
        assert_eq!(page.alerts.len(), 4);

        let error = survivor.ingest(alert("late")).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
    }
}
