//! Behaviour every `RecordStore` backend must share; `main.rs` runs each function
//! against every backend, on a fresh, empty database.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use patchbay_core::{
    AlertSeverity, AlertStatus, CheckOutcome, ErrorKind, EventKind, NormalizedAlert, SecretString,
    Tenant, ValidationCheck, ValidationReport, ValidationStatus,
};
use patchbay_store::{
    AgentActivity, AgentTokenRecord, AgentTokenStatus, ApiKeyRecord, BegunState, ConnectLinkRecord,
    ConnectionRecord, ConnectionStatus, ConsumedState, NewAlert, OpenedLink, PendingAuthorization,
    RecordStore, SecretRef,
};
use serde_json::json;

pub fn alice() -> Tenant {
    Tenant {
        user_id: "alice".into(),
        org_id: Some("acme".into()),
    }
}

pub fn bob_same_org() -> Tenant {
    Tenant {
        user_id: "bob".into(),
        org_id: Some("acme".into()),
    }
}

fn mallory_other_org() -> Tenant {
    Tenant {
        user_id: "mallory".into(),
        org_id: Some("evil".into()),
    }
}

/// Now, at the microsecond precision every backend keeps.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

pub fn connection(id: &str, tenant: Tenant) -> ConnectionRecord {
    ConnectionRecord {
        id: id.into(),
        tenant,
        connector: "datadog".into(),
        label: "prod EU".into(),
        metadata: json!({ "site": "datadoghq.eu" }),
        secret_ref: SecretRef(format!("local:{id}-secret")),
        status: ConnectionStatus::Active,
        webhook_token_hash: Some("ab".repeat(32)),
        routing_key: None,
        allow_writes: false,
        last_report: None,
        created_at: now(),
        validated_at: None,
    }
}

fn report() -> ValidationReport {
    let mut report = ValidationReport::new(
        "datadog",
        vec![ValidationCheck {
            id: "monitors_read".into(),
            description: "Can read monitors".into(),
            mandatory: false,
            outcome: CheckOutcome::Failed,
            detail: "missing monitors_read scope".into(),
            provider_status: Some(403),
            elapsed_ms: 12,
        }],
    );
    report.validated_at = report.validated_at.trunc_subsecs(6);
    report
}

pub fn alert(connection_id: &str, tenant: Tenant, dedup_key: &str) -> NewAlert {
    NewAlert {
        connection_id: connection_id.into(),
        tenant,
        alert: NormalizedAlert {
            source: "datadog".into(),
            kind: EventKind::Alert,
            external_id: "monitor-42".into(),
            dedup_key: dedup_key.into(),
            title: format!("CPU high ({dedup_key})"),
            status: AlertStatus::Firing,
            severity: AlertSeverity::High,
            service: Some("checkout".into()),
            started_at: Some(now()),
            ended_at: None,
            url: Some("https://app.datadoghq.eu/monitors/42".into()),
            labels: BTreeMap::from([("priority".into(), "P2".into())]),
            tags: vec!["env:prod".into()],
            raw: json!({ "id": 42, "nested": { "value": [1, 2] } }),
        },
    }
}

fn ids(records: &[ConnectionRecord]) -> Vec<&str> {
    records.iter().map(|record| record.id.as_str()).collect()
}

pub async fn connection_crud(store: Arc<dyn RecordStore>) {
    let record = connection("conn-1", alice());
    store.insert_connection(&record).await.unwrap();

    let fetched = store.get_connection(&alice(), "conn-1").await.unwrap();
    assert_eq!(fetched.as_ref(), Some(&record));
    assert_eq!(
        store.list_connections(&alice()).await.unwrap(),
        vec![record.clone()]
    );

    let report = report();
    let metadata = json!({ "site": "datadoghq.eu", "org_name": "Acme", "ids": [1, 2.5, null] });
    store
        .update_validation(
            &alice(),
            "conn-1",
            ConnectionStatus::Degraded,
            &metadata,
            &report,
        )
        .await
        .unwrap();
    let updated = store
        .get_connection(&alice(), "conn-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updated.status, ConnectionStatus::Degraded);
    assert_eq!(updated.metadata, metadata);
    assert_eq!(updated.last_report.as_ref(), Some(&report));
    assert_eq!(
        updated.last_report.unwrap().overall,
        ValidationStatus::Degraded
    );
    assert_eq!(updated.validated_at, Some(report.validated_at));
    assert_eq!(updated.created_at, record.created_at);
    assert_eq!(updated.secret_ref, record.secret_ref);
    assert_eq!(updated.webhook_token_hash, record.webhook_token_hash);

    assert!(store.delete_connection(&alice(), "conn-1").await.unwrap());
    assert_eq!(
        store.get_connection(&alice(), "conn-1").await.unwrap(),
        None
    );
    assert!(!store.delete_connection(&alice(), "conn-1").await.unwrap());
    let error = store
        .update_validation(
            &alice(),
            "conn-1",
            ConnectionStatus::Active,
            &metadata,
            &report,
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

pub async fn connection_without_optional_fields_round_trips(store: Arc<dyn RecordStore>) {
    let mut record = connection("bare", Tenant::user("solo"));
    record.webhook_token_hash = None;
    record.metadata = json!({});
    let mut validated = connection("validated", Tenant::user("solo"));
    validated.last_report = Some(report());
    validated.validated_at = Some(now());
    validated.status = ConnectionStatus::NeedsReauth;
    validated.label = "prod \u{1F30D} \"quoted\" 'label'".into();
    store.insert_connection(&record).await.unwrap();
    store.insert_connection(&validated).await.unwrap();

    let listed = store.list_connections(&Tenant::user("solo")).await.unwrap();
    assert_eq!(listed, vec![record, validated]);
}

pub async fn duplicate_connection_id_is_rejected(store: Arc<dyn RecordStore>) {
    let record = connection("conn-1", alice());
    store.insert_connection(&record).await.unwrap();
    let mut clash = connection("conn-1", mallory_other_org());
    clash.label = "someone else's".into();
    let error = store.insert_connection(&clash).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert_eq!(
        store.get_connection(&alice(), "conn-1").await.unwrap(),
        Some(record)
    );
    assert_eq!(
        store
            .get_connection(&mallory_other_org(), "conn-1")
            .await
            .unwrap(),
        None
    );
}

pub async fn connections_list_oldest_first(store: Arc<dyn RecordStore>) {
    let mut older = connection("older", alice());
    older.created_at = now() - chrono::Duration::hours(1);
    let newer = connection("newer", alice());
    let mut same_time_first = connection("z-same-time-first", alice());
    same_time_first.created_at = newer.created_at;
    let mut same_time_second = connection("a-same-time-second", alice());
    same_time_second.created_at = newer.created_at;
    for record in [&newer, &same_time_first, &same_time_second, &older] {
        store.insert_connection(record).await.unwrap();
    }
    let listed = store.list_connections(&alice()).await.unwrap();
    assert_eq!(
        ids(&listed),
        ["older", "newer", "z-same-time-first", "a-same-time-second"],
        "oldest first, equal times in insertion order"
    );
}

pub async fn tenants_are_isolated(store: Arc<dyn RecordStore>) {
    store
        .insert_connection(&connection("org-conn", alice()))
        .await
        .unwrap();
    let solo = Tenant::user("alice");
    store
        .insert_connection(&connection("solo-conn", solo.clone()))
        .await
        .unwrap();

    // Members of the same org share its connections.
    assert!(store
        .get_connection(&bob_same_org(), "org-conn")
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        ids(&store.list_connections(&bob_same_org()).await.unwrap()),
        ["org-conn"]
    );

    // Another org, or the same user acting alone, sees nothing and changes nothing.
    for outsider in [mallory_other_org(), solo.clone()] {
        assert_eq!(
            store.get_connection(&outsider, "org-conn").await.unwrap(),
            None
        );
        assert!(!store
            .delete_connection(&outsider, "org-conn")
            .await
            .unwrap());
        let error = store
            .update_validation(
                &outsider,
                "org-conn",
                ConnectionStatus::Failed,
                &json!({ "hijacked": true }),
                &report(),
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
    }
    assert_eq!(
        store.list_connections(&mallory_other_org()).await.unwrap(),
        Vec::new()
    );
    assert_eq!(
        ids(&store.list_connections(&solo).await.unwrap()),
        ["solo-conn"]
    );
    assert_eq!(
        store.get_connection(&alice(), "solo-conn").await.unwrap(),
        None
    );
    assert!(!store
        .delete_connection(&alice(), "solo-conn")
        .await
        .unwrap());

    let kept = store
        .get_connection(&alice(), "org-conn")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.status, ConnectionStatus::Active);
    assert_eq!(kept.metadata, json!({ "site": "datadoghq.eu" }));
    assert_eq!(kept.last_report, None);
    assert!(store
        .get_connection(&solo, "solo-conn")
        .await
        .unwrap()
        .is_some());

    // Alerts follow the same scope, whatever cursor an outsider passes.
    store
        .insert_alerts(&[
            alert("org-conn", alice(), "k1"),
            alert("solo-conn", solo.clone(), "k1"),
        ])
        .await
        .unwrap();
    let org_alerts = store.list_alerts(&bob_same_org(), None, 100).await.unwrap();
    assert_eq!(org_alerts.alerts.len(), 1);
    assert_eq!(org_alerts.alerts[0].connection_id, "org-conn");
    let solo_alerts = store.list_alerts(&solo, None, 100).await.unwrap();
    assert_eq!(solo_alerts.alerts.len(), 1);
    assert_eq!(solo_alerts.alerts[0].connection_id, "solo-conn");
    for after in [None, Some(0), Some(-1)] {
        let page = store
            .list_alerts(&mallory_other_org(), after, 100)
            .await
            .unwrap();
        assert!(page.alerts.is_empty());
        assert_eq!(page.next_cursor, None);
    }

    assert!(store
        .delete_connection(&bob_same_org(), "org-conn")
        .await
        .unwrap());
    assert_eq!(
        ids(&store.list_connections(&solo).await.unwrap()),
        ["solo-conn"]
    );
}

pub async fn webhook_connections_match_connector_and_user(store: Arc<dyn RecordStore>) {
    store
        .insert_connection(&connection("with-token", alice()))
        .await
        .unwrap();
    let mut without_token = connection("without-token", alice());
    without_token.webhook_token_hash = None;
    store.insert_connection(&without_token).await.unwrap();
    store
        .insert_connection(&connection("bobs", bob_same_org()))
        .await
        .unwrap();
    let mut github = connection("github", alice());
    github.connector = "github".into();
    store.insert_connection(&github).await.unwrap();

    // Signature-verified webhooks have no token hash: every connection of the
    // user's is a candidate, and the caller checks the token or signature.
    let found = store.webhook_connections("datadog", "alice").await.unwrap();
    assert_eq!(ids(&found), ["with-token", "without-token"]);
    assert_eq!(found[0], connection_like(&found[0], "with-token"));
    assert_eq!(
        ids(&store.webhook_connections("datadog", "bob").await.unwrap()),
        ["bobs"]
    );
    assert_eq!(
        ids(&store.webhook_connections("github", "alice").await.unwrap()),
        ["github"]
    );
    assert!(store
        .webhook_connections("datadog", "mallory")
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .webhook_connections("pagerduty", "alice")
        .await
        .unwrap()
        .is_empty());
}

pub async fn webhook_tokens_rotate_only_for_the_owning_tenant(store: Arc<dyn RecordStore>) {
    store
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    let rotated = "ef".repeat(32);
    let error = store
        .update_webhook_token_hash(&mallory_other_org(), "conn-1", &rotated)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    store
        .update_webhook_token_hash(&bob_same_org(), "conn-1", &rotated)
        .await
        .unwrap();
    let stored = store
        .get_connection(&alice(), "conn-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.webhook_token_hash.as_deref(), Some(rotated.as_str()));
}

pub async fn routed_connections_match_connector_and_routing_key(store: Arc<dyn RecordStore>) {
    let mut team_one = connection("team-one", alice());
    team_one.connector = "slack".into();
    team_one.routing_key = Some("T0001".into());
    store.insert_connection(&team_one).await.unwrap();
    let mut other_tenant = connection("other-tenant", mallory_other_org());
    other_tenant.connector = "slack".into();
    other_tenant.routing_key = Some("T0002".into());
    store.insert_connection(&other_tenant).await.unwrap();
    let mut unrouted = connection("unrouted", alice());
    unrouted.connector = "slack".into();
    store.insert_connection(&unrouted).await.unwrap();

    let found = store
        .routed_connection("slack", "T0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, "team-one");
    assert_eq!(found.routing_key.as_deref(), Some("T0001"));
    assert_eq!(
        store
            .routed_connection("slack", "T0002")
            .await
            .unwrap()
            .map(|record| record.id),
        Some("other-tenant".to_owned())
    );
    assert_eq!(
        store.routed_connection("datadog", "T0001").await.unwrap(),
        None
    );
    assert_eq!(
        store.routed_connection("slack", "T9999").await.unwrap(),
        None
    );
}

/// The fixture `connection(id, alice())` with the stored record's creation time.
fn connection_like(stored: &ConnectionRecord, id: &str) -> ConnectionRecord {
    ConnectionRecord {
        created_at: stored.created_at,
        ..connection(id, alice())
    }
}

fn api_key(id: &str, hash: &str, prefix: Option<&str>, tenant: Tenant) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        key_hash: hash.into(),
        prefix: prefix.map(str::to_owned),
        tenant,
        created_at: now(),
        last_used_at: None,
    }
}

pub async fn api_keys_resolve_to_their_tenant(store: Arc<dyn RecordStore>) {
    let key = api_key("key-1", &"cd".repeat(32), Some("pbk_aaaaaaaa"), alice());
    store.insert_api_key(&key).await.unwrap();
    let solo_key = api_key(
        "key-solo",
        &"12".repeat(32),
        Some("pbk_bbbbbbbb"),
        Tenant::user("alice"),
    );
    store.insert_api_key(&solo_key).await.unwrap();

    assert_eq!(
        store.find_api_key(&key.key_hash).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store
            .find_api_key(&solo_key.key_hash)
            .await
            .unwrap()
            .map(|found| found.tenant),
        Some(Tenant::user("alice"))
    );
    assert_eq!(store.find_api_key(&"ef".repeat(32)).await.unwrap(), None);
    assert_eq!(store.find_api_key("").await.unwrap(), None);

    let duplicate = ApiKeyRecord {
        id: "key-2".into(),
        prefix: Some("pbk_cccccccc".into()),
        tenant: mallory_other_org(),
        ..key.clone()
    };
    let error = store.insert_api_key(&duplicate).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert!(!error.to_string().contains(&duplicate.key_hash), "{error}");
    assert_eq!(
        store
            .find_api_key(&key.key_hash)
            .await
            .unwrap()
            .map(|found| found.tenant),
        Some(alice()),
        "a rejected duplicate must not take over the key"
    );
}

pub async fn api_keys_are_listed_touched_and_revoked(store: Arc<dyn RecordStore>) {
    let mut alices = api_key("key-alice", &"a1".repeat(32), Some("pbk_alice000"), alice());
    let mut bobs = api_key(
        "key-bob",
        &"b2".repeat(32),
        Some("pbk_bob00000"),
        bob_same_org(),
    );
    let mut solo = api_key(
        "key-solo",
        &"c3".repeat(32),
        Some("pbk_solo0000"),
        Tenant::user("alice"),
    );
    let mut legacy = api_key("key-legacy", &"d4".repeat(32), None, mallory_other_org());
    // Distinct creation times: keys list oldest first.
    for (minutes, key) in [
        (5, &mut alices),
        (4, &mut bobs),
        (3, &mut solo),
        (2, &mut legacy),
    ] {
        key.created_at = now() - chrono::Duration::minutes(minutes);
        store.insert_api_key(key).await.unwrap();
    }
    let listed_ids =
        |keys: Vec<ApiKeyRecord>| -> Vec<String> { keys.into_iter().map(|key| key.id).collect() };
    assert_eq!(
        listed_ids(store.list_api_keys(None, None).await.unwrap()),
        ["key-alice", "key-bob", "key-solo", "key-legacy"]
    );
    assert_eq!(
        listed_ids(store.list_api_keys(Some("alice"), None).await.unwrap()),
        ["key-alice", "key-solo"]
    );
    assert_eq!(
        listed_ids(store.list_api_keys(None, Some("acme")).await.unwrap()),
        ["key-alice", "key-bob"]
    );
    assert_eq!(
        listed_ids(
            store
                .list_api_keys(Some("alice"), Some("acme"))
                .await
                .unwrap()
        ),
        ["key-alice"]
    );
    assert!(store
        .list_api_keys(Some("nobody"), None)
        .await
        .unwrap()
        .is_empty());

    // Uses are recorded at most once per precision interval, and never go back in time.
    let first_use = now();
    store.touch_api_key("key-alice", first_use).await.unwrap();
    let last_used = |store: Arc<dyn RecordStore>, hash: String| async move {
        store
            .find_api_key(&hash)
            .await
            .unwrap()
            .unwrap()
            .last_used_at
    };
    assert_eq!(
        last_used(store.clone(), alices.key_hash.clone()).await,
        Some(first_use)
    );
    let soon_after = first_use + chrono::Duration::seconds(30);
    store.touch_api_key("key-alice", soon_after).await.unwrap();
    assert_eq!(
        last_used(store.clone(), alices.key_hash.clone()).await,
        Some(first_use)
    );
    let later = first_use + patchbay_store::API_KEY_USE_PRECISION;
    store.touch_api_key("key-alice", later).await.unwrap();
    assert_eq!(
        last_used(store.clone(), alices.key_hash.clone()).await,
        Some(later)
    );
    store.touch_api_key("key-alice", first_use).await.unwrap();
    assert_eq!(
        last_used(store.clone(), alices.key_hash.clone()).await,
        Some(later)
    );
    assert_eq!(last_used(store.clone(), bobs.key_hash.clone()).await, None);

    // Revoking by prefix, or by id for keys without one, stops the key at once.
    let revoked = store.revoke_api_key("pbk_bob00000").await.unwrap().unwrap();
    assert_eq!(revoked.id, "key-bob");
    assert_eq!(store.find_api_key(&bobs.key_hash).await.unwrap(), None);
    assert_eq!(store.revoke_api_key("pbk_bob00000").await.unwrap(), None);
    assert_eq!(
        store
            .revoke_api_key("key-legacy")
            .await
            .unwrap()
            .map(|key| key.id),
        Some("key-legacy".to_owned())
    );
    // A key with a prefix is not revoked by its id, nor by part of its prefix.
    assert_eq!(store.revoke_api_key("key-alice").await.unwrap(), None);
    assert_eq!(store.revoke_api_key("pbk_alice").await.unwrap(), None);
    assert_eq!(store.revoke_api_key("").await.unwrap(), None);
    assert_eq!(
        listed_ids(store.list_api_keys(None, None).await.unwrap()),
        ["key-alice", "key-solo"]
    );

    // Prefixes identify keys: a second key with the same prefix is refused.
    let clash = api_key(
        "key-clash",
        &"e5".repeat(32),
        Some("pbk_alice000"),
        bob_same_org(),
    );
    assert_eq!(
        store.insert_api_key(&clash).await.unwrap_err().kind(),
        ErrorKind::Internal
    );
}

pub async fn secret_references_move_and_retire(store: Arc<dyn RecordStore>) {
    let moving = ConnectionRecord {
        secret_ref: SecretRef("vault:kv/tenants/acme/datadog/moving".into()),
        ..connection("moving", alice())
    };
    let other = ConnectionRecord {
        secret_ref: SecretRef("vault:kv/tenants/evil/datadog/other".into()),
        ..connection("other", mallory_other_org())
    };
    let local = connection("local", alice());
    for record in [&moving, &other, &local] {
        store.insert_connection(record).await.unwrap();
    }
    let found = store
        .connections_with_secret_prefix("vault:kv/tenants/")
        .await
        .unwrap();
    assert_eq!(ids(&found), ["moving", "other"]);
    assert!(store
        .connections_with_secret_prefix("vault:kv/tenants_%")
        .await
        .unwrap()
        .is_empty());

    let new_ref = SecretRef("vault:kv/tenants/orgs/acme/datadog/moving".into());
    assert!(!store
        .move_secret_ref("moving", &other.secret_ref, &new_ref)
        .await
        .unwrap());
    assert!(store
        .move_secret_ref("moving", &moving.secret_ref, &new_ref)
        .await
        .unwrap());
    assert!(!store
        .move_secret_ref("moving", &moving.secret_ref, &new_ref)
        .await
        .unwrap());
    let moved = store
        .get_connection(&alice(), "moving")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(moved.secret_ref, new_ref);
    assert_eq!(
        store.retired_secret_refs().await.unwrap(),
        [("moving".to_owned(), moving.secret_ref.clone())]
    );
    store
        .forget_retired_secret_ref("moving", &other.secret_ref)
        .await
        .unwrap();
    assert_eq!(store.retired_secret_refs().await.unwrap().len(), 1);
    store
        .forget_retired_secret_ref("moving", &moving.secret_ref)
        .await
        .unwrap();
    assert!(store.retired_secret_refs().await.unwrap().is_empty());
}

/// Batches of every size a store may split or pad (here 3, 17 and 600 alerts) keep
/// input order and the first copy of a repeated key, across the pieces too.
pub async fn alert_batches_of_any_size_keep_order_and_the_first_copy(store: Arc<dyn RecordStore>) {
    let batch = |keys: &mut dyn Iterator<Item = String>| -> Vec<NewAlert> {
        keys.map(|key| alert("conn-1", alice(), &key)).collect()
    };
    let small = store
        .insert_alerts(&batch(&mut (0..3).map(|i| format!("a{i}"))))
        .await
        .unwrap();
    assert_eq!(small, [true; 3]);
    let middle = store
        .insert_alerts(&batch(&mut (0..17).map(|i| format!("b{i}"))))
        .await
        .unwrap();
    assert_eq!(middle, [true; 17]);
    // 500 new keys, then the first 100 of them again, so the repeats fall in a later
    // piece of the batch than their first copies; one key of the small batch too.
    let mut keys = (0..500)
        .map(|i| format!("c{i}"))
        .chain((0..100).map(|i| format!("c{i}")))
        .chain(["a1".to_owned()]);
    let large = store.insert_alerts(&batch(&mut keys)).await.unwrap();
    assert_eq!(large.len(), 601);
    assert!(
        large[..500].iter().all(|new| *new),
        "the first copies are new"
    );
    assert!(large[500..].iter().all(|new| !*new), "the repeats are not");

    let page = store.list_alerts(&alice(), None, 1000).await.unwrap();
    let stored: Vec<&str> = page
        .alerts
        .iter()
        .map(|stored| stored.alert.dedup_key.as_str())
        .collect();
    let expected: Vec<String> = (0..3)
        .map(|i| format!("a{i}"))
        .chain((0..17).map(|i| format!("b{i}")))
        .chain((0..500).map(|i| format!("c{i}")))
        .collect();
    assert_eq!(stored, expected, "each key stored once, in input order");
}

pub async fn alerts_are_deduplicated_across_and_within_batches(store: Arc<dyn RecordStore>) {
    let first = store
        .insert_alerts(&[
            alert("conn-1", alice(), "k1"),
            alert("conn-1", alice(), "k2"),
        ])
        .await
        .unwrap();
    assert_eq!(first, [true, true]);

    let mut later_copy = alert("conn-1", alice(), "k3");
    later_copy.alert.title = "the later copy".into();
    let second = store
        .insert_alerts(&[
            alert("conn-1", alice(), "k1"),
            alert("conn-1", alice(), "k3"),
            later_copy,
            alert("conn-2", alice(), "k1"),
        ])
        .await
        .unwrap();
    assert_eq!(second, [false, true, false, true]);
    assert_eq!(store.insert_alerts(&[]).await.unwrap(), Vec::<bool>::new());

    let page = store.list_alerts(&alice(), None, 100).await.unwrap();
    let keys: Vec<_> = page
        .alerts
        .iter()
        .map(|stored| {
            (
                stored.connection_id.as_str(),
                stored.alert.dedup_key.as_str(),
                stored.alert.title.as_str(),
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("conn-1", "k1", "CPU high (k1)"),
            ("conn-1", "k2", "CPU high (k2)"),
            ("conn-1", "k3", "CPU high (k3)"),
            ("conn-2", "k1", "CPU high (k1)"),
        ],
        "stored once, in input order, the first copy in a batch winning"
    );
}

pub async fn alerts_round_trip_and_page_in_cursor_order(store: Arc<dyn RecordStore>) {
    let batch: Vec<_> = (0..5)
        .map(|index| alert("conn-1", alice(), &format!("k{index}")))
        .collect();
    store.insert_alerts(&batch).await.unwrap();
    store
        .insert_alerts(&[alert("conn-9", mallory_other_org(), "k0")])
        .await
        .unwrap();

    let first = store.list_alerts(&bob_same_org(), None, 2).await.unwrap();
    assert_eq!(first.alerts.len(), 2);
    assert_eq!(first.alerts[0].alert, batch[0].alert);
    assert_eq!(first.alerts[1].alert, batch[1].alert);
    assert_eq!(first.alerts[0].connection_id, "conn-1");
    assert_eq!(first.next_cursor, Some(first.alerts[1].cursor));
    assert!(first.alerts[0].cursor < first.alerts[1].cursor);
    let age = Utc::now() - first.alerts[0].received_at;
    assert!(
        age > -chrono::Duration::seconds(5) && age < chrono::Duration::minutes(1),
        "received_at is the time of storing, got {}",
        first.alerts[0].received_at
    );

    let second = store
        .list_alerts(&alice(), first.next_cursor, 2)
        .await
        .unwrap();
    let third = store
        .list_alerts(&alice(), second.next_cursor, 2)
        .await
        .unwrap();
    let rest: Vec<_> = second
        .alerts
        .iter()
        .chain(&third.alerts)
        .map(|stored| stored.alert.clone())
        .collect();
    let expected: Vec<_> = batch[2..].iter().map(|new| new.alert.clone()).collect();
    assert_eq!(rest, expected);

    let empty = store
        .list_alerts(&alice(), third.next_cursor, 2)
        .await
        .unwrap();
    assert!(empty.alerts.is_empty());
    assert_eq!(empty.next_cursor, None);

    let clamped_up = store.list_alerts(&alice(), None, 0).await.unwrap();
    assert_eq!(clamped_up.alerts.len(), 1);
    let everything = store.list_alerts(&alice(), None, u32::MAX).await.unwrap();
    assert_eq!(everything.alerts.len(), 5);

    let other = store
        .list_alerts(&mallory_other_org(), None, 100)
        .await
        .unwrap();
    assert_eq!(other.alerts.len(), 1);
    assert_eq!(other.alerts[0].connection_id, "conn-9");
}

pub async fn alert_payloads_round_trip_exactly(store: Arc<dyn RecordStore>) {
    let mut rich = alert("conn-1", alice(), "rich");
    rich.alert.kind = EventKind::Change;
    rich.alert.status = AlertStatus::Resolved;
    rich.alert.severity = AlertSeverity::Critical;
    rich.alert.title = "Disk \u{1F525} on \"db-1\" — 99%".into();
    rich.alert.ended_at = Some(now());
    rich.alert.labels = BTreeMap::from([
        ("team".into(), "payments".into()),
        ("émoji".into(), "\u{2705}".into()),
    ]);
    rich.alert.tags = vec!["env:prod".into(), "a,b".into(), String::new()];
    rich.alert.raw = json!({
        "big": u64::MAX,
        "negative": -42,
        "float": 0.1,
        "exp": 1.5e300,
        "null": null,
        "flag": false,
        "empty": {},
        "list": [[], [1, "two", { "three": 3 }]],
        "text": "line\nbreak\ttab \\ backslash \u{00e9}",
    });
    let mut bare = alert("conn-1", alice(), "bare");
    bare.alert.service = None;
    bare.alert.started_at = None;
    bare.alert.url = None;
    bare.alert.labels = BTreeMap::new();
    bare.alert.tags = Vec::new();
    bare.alert.raw = json!(null);

    assert_eq!(
        store
            .insert_alerts(&[rich.clone(), bare.clone()])
            .await
            .unwrap(),
        [true, true]
    );
    let page = store.list_alerts(&alice(), None, 10).await.unwrap();
    let stored: Vec<_> = page.alerts.iter().map(|stored| &stored.alert).collect();
    assert_eq!(stored, [&rich.alert, &bare.alert]);
}

/// Provider payloads occasionally carry U+0000; such an alert must not fail its batch.
/// Backends that cannot store the character replace it with U+FFFD.
pub async fn alerts_with_nul_characters_are_stored(store: Arc<dyn RecordStore>) {
    let mut with_nul = alert("conn-1", alice(), "nul\0key");
    with_nul.alert.title = "bad\0title".into();
    with_nul.alert.raw = json!({ "message\0": ["a\0b"] });
    with_nul.alert.labels = BTreeMap::from([("label".into(), "x\0y".into())]);
    let inserted = store
        .insert_alerts(&[alert("conn-1", alice(), "plain"), with_nul.clone()])
        .await
        .unwrap();
    assert_eq!(inserted, [true, true]);
    assert_eq!(
        store.insert_alerts(&[with_nul]).await.unwrap(),
        [false],
        "the same alert again is a duplicate"
    );

    let page = store.list_alerts(&alice(), None, 10).await.unwrap();
    assert_eq!(page.alerts.len(), 2);
    let stored = &page.alerts[1].alert;
    let nul_kept_or_replaced =
        |text: &str, expected: &str| text == expected || text == expected.replace('\0', "\u{FFFD}");
    assert!(
        nul_kept_or_replaced(&stored.title, "bad\0title"),
        "{stored:?}"
    );
    assert!(
        nul_kept_or_replaced(&stored.dedup_key, "nul\0key"),
        "{stored:?}"
    );
    assert!(
        nul_kept_or_replaced(&stored.labels["label"], "x\0y"),
        "{stored:?}"
    );
    let (key, value) = stored.raw.as_object().unwrap().iter().next().unwrap();
    assert!(nul_kept_or_replaced(key, "message\0"), "{key:?}");
    assert!(
        nul_kept_or_replaced(value[0].as_str().unwrap(), "a\0b"),
        "{value}"
    );
}

pub async fn list_alerts_caps_a_page_at_one_thousand(store: Arc<dyn RecordStore>) {
    let batch: Vec<_> = (0..1005)
        .map(|index| alert("conn-1", alice(), &format!("k{index}")))
        .collect();
    let inserted = store.insert_alerts(&batch).await.unwrap();
    assert!(inserted.iter().all(|new| *new));
    let page = store.list_alerts(&alice(), None, 5000).await.unwrap();
    assert_eq!(page.alerts.len(), 1000);
    let rest = store
        .list_alerts(&alice(), page.next_cursor, 5000)
        .await
        .unwrap();
    assert_eq!(rest.alerts.len(), 5);
    let keys: Vec<_> = page
        .alerts
        .iter()
        .chain(&rest.alerts)
        .map(|stored| stored.alert.dedup_key.clone())
        .collect();
    let expected: Vec<_> = (0..1005).map(|index| format!("k{index}")).collect();
    assert_eq!(keys, expected, "a large batch keeps its input order");
}

pub async fn the_last_alert_cursor_is_the_tenants_newest(store: Arc<dyn RecordStore>) {
    assert_eq!(store.last_alert_cursor(&alice()).await.unwrap(), None);
    store
        .insert_alerts(&[
            alert("conn-1", alice(), "a1"),
            alert("conn-2", mallory_other_org(), "m1"),
            alert("conn-1", alice(), "a2"),
            alert("conn-2", mallory_other_org(), "m2"),
        ])
        .await
        .unwrap();
    let alices = store.list_alerts(&alice(), None, 10).await.unwrap();
    assert_eq!(
        store.last_alert_cursor(&alice()).await.unwrap(),
        alices.next_cursor,
        "the newest of the tenant's own alerts"
    );
    let mallorys = store
        .list_alerts(&mallory_other_org(), None, 10)
        .await
        .unwrap();
    assert_eq!(
        store.last_alert_cursor(&mallory_other_org()).await.unwrap(),
        mallorys.next_cursor
    );
    assert_ne!(alices.next_cursor, mallorys.next_cursor);
}

pub async fn alerts_outlive_their_connection(store: Arc<dyn RecordStore>) {
    store
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    store
        .insert_alerts(&[alert("conn-1", alice(), "k1")])
        .await
        .unwrap();
    assert!(store.delete_connection(&alice(), "conn-1").await.unwrap());
    let page = store.list_alerts(&alice(), None, 10).await.unwrap();
    assert_eq!(page.alerts.len(), 1);
    assert_eq!(page.alerts[0].connection_id, "conn-1");
}

pub async fn health_is_ok(store: Arc<dyn RecordStore>) {
    store.health().await.unwrap();
    store
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    store.health().await.unwrap();
}

/// Several stores on one database (replicas) insert concurrently while a reader pages
/// with `after`: the reader must see every alert exactly once, in cursor order.
pub async fn concurrent_inserters_and_a_paging_reader_see_every_alert_once(
    stores: Vec<Arc<dyn RecordStore>>,
) {
    const WRITERS_PER_STORE: usize = 4;
    const BATCHES_PER_WRITER: usize = 40;
    const BATCH_SIZE: usize = 4;

    let reader_store = Arc::clone(&stores[0]);
    let writers_done = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn({
        let writers_done = Arc::clone(&writers_done);
        async move {
            let mut seen = Vec::new();
            let mut after = None;
            let mut last_cursor = i64::MIN;
            loop {
                // Read the flag before the page: once it is set, every write has
                // committed, so an empty page read afterwards means the end.
                let finished = writers_done.load(Ordering::SeqCst);
                let page = reader_store.list_alerts(&alice(), after, 7).await.unwrap();
                for stored in &page.alerts {
                    assert!(stored.cursor > last_cursor, "cursors only grow");
                    last_cursor = stored.cursor;
                    seen.push(stored.alert.dedup_key.clone());
                }
                match page.next_cursor {
                    Some(cursor) => after = Some(cursor),
                    None if finished => return seen,
                    None => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
        }
    });

    let mut writers = Vec::new();
    for (store_index, store) in stores.iter().enumerate() {
        for writer in 0..WRITERS_PER_STORE {
            let store = Arc::clone(store);
            writers.push(tokio::spawn(async move {
                for batch in 0..BATCHES_PER_WRITER {
                    let alerts: Vec<_> = (0..BATCH_SIZE)
                        .map(|item| {
                            let key = format!("s{store_index}-w{writer}-b{batch}-i{item}");
                            alert(&format!("conn-{store_index}-{writer}"), alice(), &key)
                        })
                        .collect();
                    let inserted = store.insert_alerts(&alerts).await.unwrap();
                    assert!(inserted.iter().all(|new| *new));
                }
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    writers_done.store(true, Ordering::SeqCst);
    let seen = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the reader finishes")
        .unwrap();

    let expected = stores.len() * WRITERS_PER_STORE * BATCHES_PER_WRITER * BATCH_SIZE;
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no alert is read twice");
    assert_eq!(
        seen.len(),
        expected,
        "the reader skipped {} alerts",
        expected.saturating_sub(seen.len())
    );
}

fn pending(
    state_hash: &str,
    tenant: Tenant,
    expires_in: chrono::TimeDelta,
) -> PendingAuthorization {
    let created_at = now();
    let mut options = serde_json::Map::new();
    options.insert("base_url".into(), json!("https://github.example.com"));
    PendingAuthorization {
        state_hash: state_hash.into(),
        tenant,
        connector: "github".into(),
        redirect_uri: "http://localhost:5080/github/callback".into(),
        label: Some("work".into()),
        options,
        allow_writes: false,
        pkce_verifier: Some(SecretString::from(format!("verifier-of-{state_hash}"))),
        binding_hash: None,
        created_at,
        expires_at: created_at + expires_in,
    }
}

pub async fn oauth_state_is_consumed_exactly_once(store: Arc<dyn RecordStore>) {
    let stored = pending("a1", alice(), chrono::TimeDelta::minutes(10));
    store.insert_oauth_state(&stored).await.unwrap();
    assert_eq!(
        store.consume_oauth_state("a1", now()).await.unwrap(),
        ConsumedState::Fresh(stored)
    );
    assert_eq!(
        store.consume_oauth_state("a1", now()).await.unwrap(),
        ConsumedState::AlreadyUsed
    );
    assert_eq!(
        store.consume_oauth_state("forged", now()).await.unwrap(),
        ConsumedState::Unknown
    );
}

pub async fn oauth_state_is_bound_to_one_browser_once(store: Arc<dyn RecordStore>) {
    let stored = pending("b1", alice(), chrono::TimeDelta::minutes(10));
    store.insert_oauth_state(&stored).await.unwrap();
    let bound = PendingAuthorization {
        binding_hash: Some("cookie-hash-1".into()),
        ..stored.clone()
    };
    assert_eq!(
        store
            .begin_oauth_state("b1", "cookie-hash-1", now())
            .await
            .unwrap(),
        BegunState::Begun(Box::new(bound.clone()))
    );
    assert_eq!(
        store
            .begin_oauth_state("b1", "cookie-hash-2", now())
            .await
            .unwrap(),
        BegunState::AlreadyBegun,
        "a begin URL opens once: a second browser cannot rebind the flow"
    );
    assert_eq!(
        store.consume_oauth_state("b1", now()).await.unwrap(),
        ConsumedState::Fresh(bound),
        "the callback sees the first browser's binding and the verifier"
    );
    let finished = pending("b2", alice(), chrono::TimeDelta::minutes(10));
    store.insert_oauth_state(&finished).await.unwrap();
    store.consume_oauth_state("b2", now()).await.unwrap();
    assert_eq!(
        store.begin_oauth_state("b2", "late", now()).await.unwrap(),
        BegunState::AlreadyBegun
    );
    let stale = pending("b3", alice(), chrono::TimeDelta::minutes(10));
    store.insert_oauth_state(&stale).await.unwrap();
    let later = stale.expires_at + chrono::TimeDelta::seconds(1);
    assert_eq!(
        store.begin_oauth_state("b3", "late", later).await.unwrap(),
        BegunState::Expired
    );
    assert_eq!(
        store.begin_oauth_state("forged", "x", now()).await.unwrap(),
        BegunState::Unknown
    );
}

pub async fn expired_oauth_state_is_expired_then_already_used(store: Arc<dyn RecordStore>) {
    let stored = pending("old", alice(), chrono::TimeDelta::minutes(10));
    store.insert_oauth_state(&stored).await.unwrap();
    let later = stored.expires_at + chrono::TimeDelta::seconds(1);
    assert_eq!(
        store.consume_oauth_state("old", later).await.unwrap(),
        ConsumedState::Expired(stored)
    );
    assert_eq!(
        store.consume_oauth_state("old", later).await.unwrap(),
        ConsumedState::AlreadyUsed
    );
}

pub async fn oauth_states_older_than_retention_are_purged_on_insert(store: Arc<dyn RecordStore>) {
    let ancient = pending("ancient", alice(), -chrono::TimeDelta::minutes(61));
    store.insert_oauth_state(&ancient).await.unwrap();
    let recent = pending("recent", alice(), -chrono::TimeDelta::minutes(30));
    store.insert_oauth_state(&recent).await.unwrap();
    store
        .insert_oauth_state(&pending("new", alice(), chrono::TimeDelta::minutes(10)))
        .await
        .unwrap();
    assert_eq!(
        store.consume_oauth_state("ancient", now()).await.unwrap(),
        ConsumedState::Unknown
    );
    assert!(matches!(
        store.consume_oauth_state("recent", now()).await.unwrap(),
        ConsumedState::Expired(_)
    ));
}

pub async fn set_connection_status_is_unscoped(store: Arc<dyn RecordStore>) {
    store
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    store
        .set_connection_status("conn-1", ConnectionStatus::NeedsReauth)
        .await
        .unwrap();
    let record = store
        .get_connection(&alice(), "conn-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConnectionStatus::NeedsReauth);
    let error = store
        .set_connection_status("missing", ConnectionStatus::Active)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}

pub async fn refresh_lease_is_exclusive_until_released_or_expired(store: Arc<dyn RecordStore>) {
    store
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    let until = Utc::now() + chrono::TimeDelta::seconds(30);
    let first = store
        .try_acquire_refresh_lease("conn-1", "replica-a", until)
        .await
        .unwrap()
        .expect("a free lease is taken");
    assert_eq!(first.until, until);
    assert_eq!(
        store
            .try_acquire_refresh_lease("conn-1", "replica-b", until)
            .await
            .unwrap(),
        None
    );
    assert!(store
        .refresh_lease_held("conn-1", "replica-a", first.fence, Utc::now())
        .await
        .unwrap());
    store
        .release_refresh_lease("conn-1", "replica-b", first.fence)
        .await
        .unwrap();
    assert_eq!(
        store
            .try_acquire_refresh_lease("conn-1", "replica-b", until)
            .await
            .unwrap(),
        None,
        "only the holder releases its lease"
    );
    store
        .release_refresh_lease("conn-1", "replica-a", first.fence)
        .await
        .unwrap();
    let expired = Utc::now() - chrono::TimeDelta::seconds(1);
    let second = store
        .try_acquire_refresh_lease("conn-1", "replica-b", expired)
        .await
        .unwrap()
        .expect("a released lease is taken");
    assert!(
        second.fence > first.fence,
        "every acquisition fences the last"
    );
    let third = store
        .try_acquire_refresh_lease("conn-1", "replica-c", until)
        .await
        .unwrap()
        .expect("an expired lease can be taken over");
    assert!(third.fence > second.fence);
    assert_eq!(
        store
            .try_acquire_refresh_lease("missing", "replica-a", until)
            .await
            .unwrap(),
        None
    );
}

pub async fn a_lapsed_refresh_lease_taken_over_is_no_longer_held(store: Arc<dyn RecordStore>) {
    store
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    let short = Utc::now() + chrono::TimeDelta::milliseconds(1);
    let lapsed = store
        .try_acquire_refresh_lease("conn-1", "replica-a", short)
        .await
        .unwrap()
        .unwrap();
    let after_lapse = short + chrono::TimeDelta::seconds(1);
    assert!(
        !store
            .refresh_lease_held("conn-1", "replica-a", lapsed.fence, after_lapse)
            .await
            .unwrap(),
        "a lapsed lease is not held"
    );
    // Acquisition compares the lease with the current time: wait until it has lapsed.
    while Utc::now() <= short {
        tokio::task::yield_now().await;
    }
    let taken = store
        .try_acquire_refresh_lease(
            "conn-1",
            "replica-b",
            Utc::now() + chrono::TimeDelta::seconds(30),
        )
        .await
        .unwrap()
        .expect("a lapsed lease is taken over");
    assert!(!store
        .refresh_lease_held("conn-1", "replica-a", lapsed.fence, Utc::now())
        .await
        .unwrap());
    assert!(store
        .refresh_lease_held("conn-1", "replica-b", taken.fence, Utc::now())
        .await
        .unwrap());
    store
        .release_refresh_lease("conn-1", "replica-a", lapsed.fence)
        .await
        .unwrap();
    assert!(
        store
            .refresh_lease_held("conn-1", "replica-b", taken.fence, Utc::now())
            .await
            .unwrap(),
        "a holder whose lease was taken over cannot release the new holder's lease"
    );
}

pub async fn concurrent_replicas_consume_a_state_once_and_share_one_lease(
    stores: Vec<Arc<dyn RecordStore>>,
) {
    stores[0]
        .insert_oauth_state(&pending("race", alice(), chrono::TimeDelta::minutes(10)))
        .await
        .unwrap();
    stores[0]
        .insert_connection(&connection("conn-1", alice()))
        .await
        .unwrap();
    let mut consumers = Vec::new();
    let mut leasers = Vec::new();
    for round in 0..30 {
        let store = Arc::clone(&stores[round % stores.len()]);
        consumers.push(tokio::spawn({
            let store = Arc::clone(&store);
            async move { store.consume_oauth_state("race", now()).await.unwrap() }
        }));
        leasers.push(tokio::spawn(async move {
            store
                .try_acquire_refresh_lease(
                    "conn-1",
                    &format!("replica-{round}"),
                    Utc::now() + chrono::TimeDelta::seconds(30),
                )
                .await
                .unwrap()
        }));
    }
    let mut fresh = 0;
    for consumer in consumers {
        match consumer.await.unwrap() {
            ConsumedState::Fresh(_) => fresh += 1,
            ConsumedState::AlreadyUsed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(fresh, 1);
    let mut leased = 0;
    for leaser in leasers {
        if leaser.await.unwrap().is_some() {
            leased += 1;
        }
    }
    assert_eq!(leased, 1);
}

pub async fn a_routing_key_held_by_another_tenant_is_a_conflict(store: Arc<dyn RecordStore>) {
    let mut first = connection("first", alice());
    first.connector = "slack".into();
    first.routing_key = Some("T0001".into());
    store.insert_connection(&first).await.unwrap();
    let mut second = connection("second", mallory_other_org());
    second.connector = "slack".into();
    second.routing_key = Some("T0001".into());
    for error in [
        store.insert_connection(&second).await.unwrap_err(),
        store.insert_routed_connection(&second).await.unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::Conflict, "{error:?}");
        assert_eq!(
            error.message(),
            "routing key T0001 of connector `slack` already belongs to another connection"
        );
    }
    assert_eq!(
        store.routed_connection("slack", "T0001").await.unwrap(),
        Some(first.clone())
    );
    assert!(store
        .list_connections(&mallory_other_org())
        .await
        .unwrap()
        .is_empty());

    // Even the same tenant cannot hold a routing key twice through a plain insert.
    let mut again = connection("again", alice());
    again.connector = "slack".into();
    again.routing_key = Some("T0001".into());
    let error = store.insert_connection(&again).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);

    // Another connector, or no routing key, is no conflict.
    let mut other_connector = second.clone();
    other_connector.connector = "teams".into();
    store.insert_connection(&other_connector).await.unwrap();
    let mut unrouted = connection("unrouted-1", mallory_other_org());
    unrouted.connector = "slack".into();
    store.insert_connection(&unrouted).await.unwrap();
    let mut unrouted = connection("unrouted-2", mallory_other_org());
    unrouted.connector = "slack".into();
    assert_eq!(
        store.insert_routed_connection(&unrouted).await.unwrap(),
        None
    );
}

pub async fn a_reinstall_in_the_same_tenant_replaces_the_connection(store: Arc<dyn RecordStore>) {
    let slack = |id: &str, tenant: Tenant| ConnectionRecord {
        connector: "slack".into(),
        routing_key: Some("T0001".into()),
        ..connection(id, tenant)
    };
    let first = slack("first", alice());
    assert_eq!(store.insert_routed_connection(&first).await.unwrap(), None);
    store
        .insert_connection(&connection("datadog-kept", alice()))
        .await
        .unwrap();

    // A colleague in the same organisation reinstalls.
    let second = slack("second", bob_same_org());
    assert_eq!(
        store.insert_routed_connection(&second).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        ids(&store.list_connections(&alice()).await.unwrap()),
        ["datadog-kept", "second"]
    );
    assert_eq!(
        store.routed_connection("slack", "T0001").await.unwrap(),
        Some(second.clone())
    );

    // Another tenant's install changes nothing, and the replaced record stays replaced.
    let error = store
        .insert_routed_connection(&slack("third", mallory_other_org()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
    assert_eq!(
        ids(&store.list_connections(&alice()).await.unwrap()),
        ["datadog-kept", "second"]
    );

    // A user without an organisation replaces their own connection only.
    let solo = Tenant::user("alice");
    let mut own = slack("own", solo.clone());
    own.routing_key = Some("T0002".into());
    assert_eq!(store.insert_routed_connection(&own).await.unwrap(), None);
    let mut reinstalled = slack("own-again", solo.clone());
    reinstalled.routing_key = Some("T0002".into());
    assert_eq!(
        store
            .insert_routed_connection(&reinstalled)
            .await
            .unwrap()
            .map(|record| record.id),
        Some("own".to_owned())
    );
    assert_eq!(
        ids(&store.list_connections(&solo).await.unwrap()),
        ["own-again"]
    );
}

pub async fn concurrent_installs_of_one_routing_key_leave_one_connection(
    stores: Vec<Arc<dyn RecordStore>>,
) {
    let tenants = [alice(), bob_same_org(), mallory_other_org()];
    let installs: Vec<_> = (0..12)
        .map(|index| {
            let store = Arc::clone(&stores[index % stores.len()]);
            let record = ConnectionRecord {
                connector: "slack".into(),
                routing_key: Some("T0001".into()),
                ..connection(&format!("install-{index}"), tenants[index % 3].clone())
            };
            tokio::spawn(async move {
                let outcome = store.insert_routed_connection(&record).await;
                (record, outcome)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for install in installs {
        outcomes.push(install.await.unwrap());
    }
    let holder = stores[0]
        .routed_connection("slack", "T0001")
        .await
        .unwrap()
        .expect("one install holds the routing key");
    let owner = holder.tenant.scope_key();
    for (record, outcome) in &outcomes {
        if record.tenant.scope_key() == owner {
            // Reinstalls in the owning tenant take turns; none fails.
            assert!(outcome.is_ok(), "{}: {outcome:?}", record.id);
        } else {
            let error = outcome.as_ref().unwrap_err();
            assert_eq!(
                error.kind(),
                ErrorKind::Conflict,
                "{}: {error:?}",
                record.id
            );
        }
    }
    let mut left = store_ids(&stores[0], &alice()).await;
    left.extend(store_ids(&stores[0], &mallory_other_org()).await);
    assert_eq!(left, [holder.id]);
}

async fn store_ids(store: &Arc<dyn RecordStore>, tenant: &Tenant) -> Vec<String> {
    store
        .list_connections(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|record| record.id)
        .collect()
}

/// An agent token is found by its hash only, keeps its activity, and a revoke
/// changes only tokens still active (an expired token stays expired).
pub async fn agent_tokens_are_found_by_hash_and_revoked_per_connection(
    store: Arc<dyn RecordStore>,
) {
    let now = Utc::now().trunc_subsecs(6);
    let token = |hash: &str, connection: &str, created_at: DateTime<Utc>| AgentTokenRecord {
        connection_id: connection.into(),
        cluster_name: format!("{connection} name"),
        token_hash: hash.into(),
        token_prefix: "pbk8s_abcd".into(),
        status: AgentTokenStatus::Active,
        created_at,
        expires_at: Some(now + chrono::TimeDelta::days(30)),
        last_connected_at: None,
        last_heartbeat: None,
        agent_version: None,
        capabilities: None,
    };
    let first = token("hash-1", "cluster-a", now);
    store.insert_agent_token(&first).await.unwrap();
    store
        .insert_agent_token(&token("hash-2", "cluster-b", now))
        .await
        .unwrap();
    assert_eq!(
        store.find_agent_token("hash-1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.find_agent_token("hash-3").await.unwrap(), None);
    assert!(
        store.insert_agent_token(&first).await.is_err(),
        "a hash is stored once"
    );

    let activity = AgentActivity {
        connected_at: Some(now),
        heartbeat_at: None,
        agent_version: Some("1.0.3".into()),
        capabilities: Some(json!({"max_concurrency": 8})),
    };
    store
        .record_agent_activity("hash-1", &activity)
        .await
        .unwrap();
    let later = now + chrono::TimeDelta::seconds(60);
    store
        .record_agent_activity(
            "hash-1",
            &AgentActivity {
                heartbeat_at: Some(later),
                ..AgentActivity::default()
            },
        )
        .await
        .unwrap();
    let seen = store.agent_token_of("cluster-a").await.unwrap().unwrap();
    assert_eq!(seen.last_connected_at, Some(now));
    assert_eq!(seen.last_heartbeat, Some(later));
    assert_eq!(seen.agent_version.as_deref(), Some("1.0.3"));
    assert_eq!(seen.capabilities, Some(json!({"max_concurrency": 8})));

    assert_eq!(
        store
            .set_agent_token_status("cluster-b", AgentTokenStatus::Expired)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .set_agent_token_status("cluster-b", AgentTokenStatus::Revoked)
            .await
            .unwrap(),
        0,
        "an expired token stays expired"
    );
    assert_eq!(
        store
            .set_agent_token_status("cluster-a", AgentTokenStatus::Revoked)
            .await
            .unwrap(),
        1
    );
    let revoked = store.find_agent_token("hash-1").await.unwrap().unwrap();
    assert_eq!(revoked.status, AgentTokenStatus::Revoked);
    assert_eq!(
        store
            .find_agent_token("hash-2")
            .await
            .unwrap()
            .unwrap()
            .status,
        AgentTokenStatus::Expired
    );
}

fn connect_link(id: &str, tenant: Tenant, expires_in: chrono::TimeDelta) -> ConnectLinkRecord {
    let created_at = now();
    ConnectLinkRecord {
        id: id.into(),
        token_hash: format!("token-hash-of-{id}"),
        tenant,
        connector: "datadog".into(),
        created_at,
        expires_at: created_at + expires_in,
        opened_at: None,
        session_expires_at: None,
    }
}

pub async fn connect_links_open_once_and_their_session_lasts_its_time(store: Arc<dyn RecordStore>) {
    let link = connect_link("l1", bob_same_org(), chrono::TimeDelta::hours(24));
    store.insert_connect_link(&link).await.unwrap();
    let opened_at = now();
    let session_ends = opened_at + chrono::TimeDelta::hours(1);
    let opened = store
        .open_connect_link("token-hash-of-l1", "session-1", opened_at, session_ends)
        .await
        .unwrap();
    let expected = ConnectLinkRecord {
        opened_at: Some(opened_at),
        session_expires_at: Some(session_ends),
        ..link.clone()
    };
    assert_eq!(opened, OpenedLink::Opened(expected.clone()));
    assert_eq!(
        store
            .open_connect_link("token-hash-of-l1", "session-2", now(), session_ends)
            .await
            .unwrap(),
        OpenedLink::AlreadyUsed,
        "a link opens once"
    );
    assert_eq!(
        store
            .open_connect_link("forged", "session-3", now(), session_ends)
            .await
            .unwrap(),
        OpenedLink::Unknown
    );
    assert_eq!(
        store
            .find_connect_link_session("session-1", now())
            .await
            .unwrap(),
        Some(expected),
        "the session acts for the link's user and connector"
    );
    assert_eq!(
        store
            .find_connect_link_session("session-2", now())
            .await
            .unwrap(),
        None,
        "the refused second opening bound no session"
    );
    assert_eq!(
        store
            .find_connect_link_session("session-1", session_ends)
            .await
            .unwrap(),
        None,
        "the session ends at its expiry"
    );

    let stale = connect_link("l2", bob_same_org(), chrono::TimeDelta::minutes(5));
    store.insert_connect_link(&stale).await.unwrap();
    let later = stale.expires_at + chrono::TimeDelta::seconds(1);
    assert_eq!(
        store
            .open_connect_link("token-hash-of-l2", "session-4", later, later)
            .await
            .unwrap(),
        OpenedLink::Expired
    );
}

pub async fn connect_links_past_retention_are_purged_on_insert(store: Arc<dyn RecordStore>) {
    let ancient = connect_link(
        "old",
        alice(),
        -(patchbay_store::CONNECT_LINK_RETENTION + chrono::TimeDelta::hours(1)),
    );
    store.insert_connect_link(&ancient).await.unwrap();
    store
        .insert_connect_link(&connect_link("new", alice(), chrono::TimeDelta::hours(1)))
        .await
        .unwrap();
    assert_eq!(
        store
            .open_connect_link("token-hash-of-old", "s", now(), now())
            .await
            .unwrap(),
        OpenedLink::Unknown,
        "a link expired longer ago than the retention is forgotten"
    );
}

pub async fn concurrent_replicas_open_a_connect_link_once(stores: Vec<Arc<dyn RecordStore>>) {
    let link = connect_link("race", alice(), chrono::TimeDelta::hours(1));
    stores[0].insert_connect_link(&link).await.unwrap();
    let attempts = (0..12).map(|attempt| {
        let store = stores[attempt % stores.len()].clone();
        tokio::spawn(async move {
            store
                .open_connect_link(
                    "token-hash-of-race",
                    &format!("session-{attempt}"),
                    now(),
                    now() + chrono::TimeDelta::hours(1),
                )
                .await
                .unwrap()
        })
    });
    let mut opened = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            OpenedLink::Opened(_) => opened += 1,
            OpenedLink::AlreadyUsed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(opened, 1, "exactly one browser gets the session");
}
