//! The webhook lookup cache: what a replica sees of changes made through it, and of
//! changes made by another replica on the same database.

use std::sync::Arc;
use std::time::Duration;

use patchbay_store::{CachedWebhookRoutes, RecordStore};

use crate::suite::{alice, bob_same_org, connection};
use crate::SqliteDatabase;

fn webhook_ids(records: &[patchbay_store::ConnectionRecord]) -> Vec<&str> {
    records.iter().map(|record| record.id.as_str()).collect()
}

/// A Slack connection of Alice's routed by `routing_key`.
fn routed(id: &str, routing_key: &str) -> patchbay_store::ConnectionRecord {
    let mut record = connection(id, alice());
    record.connector = "slack".into();
    record.routing_key = Some(routing_key.into());
    record
}

/// What `store`'s webhook lookups find of Alice's connections: the ids of her Datadog
/// connections, and whether the Slack routing key `T0001` names a connection.
async fn alices_lookups(store: &Arc<dyn RecordStore>) -> (Vec<String>, bool) {
    let found = store.webhook_connections("datadog", "alice").await.unwrap();
    let routed = store.routed_connection("slack", "T0001").await.unwrap();
    (
        webhook_ids(&found).into_iter().map(str::to_owned).collect(),
        routed.is_some(),
    )
}

/// A cached store and a plain one (another replica) on one database.
async fn cached_and_other(
    ttl: Duration,
) -> (Arc<dyn RecordStore>, Arc<dyn RecordStore>, SqliteDatabase) {
    let database = SqliteDatabase::create().await;
    let cached = CachedWebhookRoutes::wrap(database.open().await, ttl);
    let other = database.open().await;
    (cached, other, database)
}

#[tokio::test]
async fn a_change_made_through_the_cache_is_seen_at_once() {
    let (cached, _other, _database) = cached_and_other(Duration::from_secs(60)).await;
    cached
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    cached
        .insert_connection(&routed("team-1", "T0001"))
        .await
        .unwrap();
    assert_eq!(
        alices_lookups(&cached).await,
        (vec!["conn-1".to_owned()], true)
    );

    cached
        .update_webhook_token_hash(&alice(), "conn-1", &"cd".repeat(32))
        .await
        .unwrap();
    let found = cached
        .webhook_connections("datadog", "alice")
        .await
        .unwrap();
    assert_eq!(
        found[0].webhook_token_hash,
        Some("cd".repeat(32)),
        "the rotated token is used at once"
    );

    cached.delete_connection(&alice(), "conn-1").await.unwrap();
    cached.delete_connection(&alice(), "team-1").await.unwrap();
    assert_eq!(alices_lookups(&cached).await, (Vec::new(), false));
}

#[tokio::test]
async fn a_change_made_elsewhere_is_seen_once_the_lookup_expires() {
    let ttl = Duration::from_millis(300);
    let (cached, other, _database) = cached_and_other(ttl).await;
    other
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    other
        .insert_connection(&routed("team-1", "T0001"))
        .await
        .unwrap();
    assert_eq!(
        alices_lookups(&cached).await,
        (vec!["conn-1".to_owned()], true)
    );

    other.delete_connection(&alice(), "conn-1").await.unwrap();
    other.delete_connection(&alice(), "team-1").await.unwrap();
    // Within the time to live the lookups are answered from the cache...
    assert_eq!(
        alices_lookups(&cached).await,
        (vec!["conn-1".to_owned()], true)
    );
    // ...and once it has passed, from the database.
    tokio::time::sleep(ttl * 2).await;
    assert_eq!(alices_lookups(&cached).await, (Vec::new(), false));
}

#[tokio::test]
async fn lookups_that_find_nothing_are_not_kept() {
    let (cached, other, _database) = cached_and_other(Duration::from_secs(60)).await;
    assert!(cached
        .webhook_connections("datadog", "bob")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        cached.routed_connection("slack", "T0002").await.unwrap(),
        None
    );

    other
        .insert_connection(&connection("bobs", bob_same_org()))
        .await
        .unwrap();
    other
        .insert_connection(&routed("team-2", "T0002"))
        .await
        .unwrap();
    assert_eq!(
        webhook_ids(&cached.webhook_connections("datadog", "bob").await.unwrap()),
        ["bobs"]
    );
    assert!(cached
        .routed_connection("slack", "T0002")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_zero_time_to_live_reads_the_database_every_time() {
    let (cached, other, _database) = cached_and_other(Duration::ZERO).await;
    other
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    assert_eq!(
        webhook_ids(
            &cached
                .webhook_connections("datadog", "alice")
                .await
                .unwrap()
        ),
        ["conn-1"]
    );
    other.delete_connection(&alice(), "conn-1").await.unwrap();
    assert!(cached
        .webhook_connections("datadog", "alice")
        .await
        .unwrap()
        .is_empty());
}

/// Counts the `webhook_connections` calls that reach the database, as the metered
/// store reports them.
#[derive(Default)]
struct CountedReads(Arc<std::sync::atomic::AtomicU64>);

impl metrics::Recorder for CountedReads {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let is_read = key.name() == patchbay_core::metrics::STORE_OPERATIONS
            && key
                .labels()
                .any(|label| label.key() == "operation" && label.value() == "webhook_connections");
        if is_read {
            metrics::Counter::from_arc(Arc::clone(&self.0))
        } else {
            metrics::Counter::noop()
        }
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

#[test]
fn deliveries_that_miss_one_key_together_share_one_read() {
    let reads = CountedReads::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A runtime on this thread, so every call is counted by this thread's recorder.
    metrics::with_local_recorder(&reads, || {
        runtime.block_on(async {
            let database = SqliteDatabase::create().await;
            let store = CachedWebhookRoutes::wrap(
                patchbay_store::MeteredRecordStore::wrap(database.open().await),
                Duration::from_secs(60),
            );
            store
                .insert_connection(&connection("conn-1", alice()))
                .await
                .unwrap();
            let mut deliveries = tokio::task::JoinSet::new();
            for _ in 0..32 {
                let store = Arc::clone(&store);
                deliveries
                    .spawn(async move { store.webhook_connections("datadog", "alice").await });
            }
            while let Some(found) = deliveries.join_next().await {
                assert_eq!(webhook_ids(&found.unwrap().unwrap()), ["conn-1"]);
            }
            store.webhook_connections("datadog", "alice").await.unwrap();
        })
    });
    assert_eq!(
        reads.0.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "32 deliveries at once, then one more"
    );
}
