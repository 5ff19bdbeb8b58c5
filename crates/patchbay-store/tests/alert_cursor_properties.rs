//! Properties of alert cursors in the SQLite records store: for generated batches
//! of alerts (with redeliveries) across tenants, following `next_cursor` from the
//! start with any page size visits every stored alert of the caller exactly once,
//! in insertion order; `after = c` gives exactly the alerts past `c` for any `c`,
//! negative or past the end; and the newest cursor is where a follower starts.

use std::collections::{BTreeMap, HashSet};

use patchbay_core::{AlertSeverity, AlertStatus, EventKind, NormalizedAlert, Tenant};
use patchbay_store::{NewAlert, RecordStore, SqliteRecordStore, StoredAlert};
use proptest::prelude::*;
use serde_json::json;

/// The connections alerts arrive on, with their owners: two share an organisation.
fn owner(connection: usize) -> Tenant {
    match connection {
        0 | 1 => Tenant {
            user_id: "alice".into(),
            org_id: Some("acme".into()),
        },
        _ => Tenant::user("carol"),
    }
}

const CONNECTIONS: usize = 3;

fn tenants() -> Vec<Tenant> {
    vec![
        owner(0),
        // Another member of the organisation sees the same alerts.
        Tenant {
            user_id: "bob".into(),
            org_id: Some("acme".into()),
        },
        owner(2),
        Tenant::user("mallory"),
    ]
}

fn new_alert(connection: usize, dedup_key: &str) -> NewAlert {
    NewAlert {
        connection_id: format!("conn-{connection}"),
        tenant: owner(connection),
        alert: NormalizedAlert {
            source: "datadog".into(),
            kind: EventKind::Alert,
            external_id: format!("monitor-{dedup_key}"),
            dedup_key: dedup_key.into(),
            title: format!("CPU high ({dedup_key})"),
            status: AlertStatus::Firing,
            severity: AlertSeverity::High,
            service: None,
            started_at: None,
            ended_at: None,
            url: None,
            labels: BTreeMap::new(),
            tags: Vec::new(),
            raw: json!({ "key": dedup_key }),
        },
    }
}

/// Batches of (connection, dedup key); a small key space makes redeliveries common.
fn batches() -> impl Strategy<Value = Vec<Vec<(usize, String)>>> {
    prop::collection::vec(
        prop::collection::vec((0..CONNECTIONS, "[a-e]{1,2}"), 1..8),
        0..8,
    )
}

/// `(connection, dedup key)` of a stored alert, to compare with the model.
fn identity(alert: &StoredAlert) -> (String, String) {
    (alert.connection_id.clone(), alert.alert.dedup_key.clone())
}

/// Every alert `tenant` sees, read page by page from the start with `limit`.
async fn read_all(store: &SqliteRecordStore, tenant: &Tenant, limit: u32) -> Vec<StoredAlert> {
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_alerts(tenant, after, limit)
            .await
            .expect("a page");
        assert!(page.alerts.len() <= limit.clamp(1, 1000) as usize);
        assert_eq!(
            page.next_cursor,
            page.alerts.last().map(|alert| alert.cursor),
            "a page's next cursor is its last alert's"
        );
        let Some(next) = page.next_cursor else {
            assert!(page.alerts.is_empty());
            return seen;
        };
        assert!(
            after.is_none_or(|after| next > after),
            "the cursor moves forward"
        );
        seen.extend(page.alerts);
        after = Some(next);
    }
}

fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(future)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn paging_visits_every_alert_once_in_order(
        batches in batches(),
        limit in prop_oneof![1u32..=5, Just(0u32), Just(1000u32), Just(u32::MAX)],
        probes in prop::collection::vec(prop_oneof![
            any::<i64>(),
            -3i64..64,
            Just(i64::MIN),
            Just(i64::MAX),
        ], 1..6),
    ) {
        run(async {
            let store = SqliteRecordStore::open_in_memory().await.expect("a store");
            // The model: the first delivery of a (connection, dedup key) is stored.
            let mut stored_keys = HashSet::new();
            let mut expected: Vec<(String, String)> = Vec::new();
            for batch in &batches {
                let alerts: Vec<NewAlert> = batch
                    .iter()
                    .map(|(connection, key)| new_alert(*connection, key))
                    .collect();
                let inserted = store.insert_alerts(&alerts).await.expect("stored");
                for (alert, new) in alerts.iter().zip(inserted) {
                    let key = (alert.connection_id.clone(), alert.alert.dedup_key.clone());
                    prop_assert_eq!(new, stored_keys.insert(key.clone()), "{:?}", key);
                    if new {
                        expected.push(key);
                    }
                }
            }
            for tenant in tenants() {
                let scope = tenant.scope_key();
                let visible: Vec<(String, String)> = expected
                    .iter()
                    .filter(|(connection, _)| {
                        let index = connection["conn-".len()..].parse().unwrap();
                        owner(index).scope_key() == scope
                    })
                    .cloned()
                    .collect();
                let all = read_all(&store, &tenant, limit).await;
                prop_assert_eq!(all.iter().map(identity).collect::<Vec<_>>(), visible.clone());
                prop_assert!(all.windows(2).all(|pair| pair[0].cursor < pair[1].cursor));
                prop_assert_eq!(
                    store.last_alert_cursor(&tenant).await.expect("the newest"),
                    all.last().map(|alert| alert.cursor)
                );
                // Any cursor, issued or not, gives exactly what lies past it.
                let issued: Vec<i64> = all.iter().map(|alert| alert.cursor).collect();
                for after in probes.iter().copied().chain(issued.iter().copied()) {
                    let page = store.list_alerts(&tenant, Some(after), 1000).await.expect("a page");
                    let past: Vec<(String, String)> = all
                        .iter()
                        .filter(|alert| alert.cursor > after)
                        .map(identity)
                        .collect();
                    prop_assert_eq!(page.alerts.iter().map(identity).collect::<Vec<_>>(), past);
                }
            }
            Ok(())
        })?;
    }
}
