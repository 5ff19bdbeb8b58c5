//! The `RecordStore` behaviour suite, run against SQLite and against the PostgreSQL
//! server named by `PATCHBAY_TEST_DATABASE_URL` (the PostgreSQL tests fail without it),
//! each test on a fresh database (a temporary file; a schema of its own). Then the
//! PostgreSQL-only behaviour: outages, reconnection, startup errors.

mod proxy;
mod route_cache;
mod suite;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patchbay_core::ErrorKind;
use patchbay_store::{open_record_store, CachedWebhookRoutes, RecordStore};
use sqlx::Connection;
use url::Url;

/// A fresh SQLite database in a temporary directory.
struct SqliteDatabase {
    url: String,
    _dir: tempfile::TempDir,
}

impl SqliteDatabase {
    async fn create() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("patchbay.db").display()
        );
        Self { url, _dir: dir }
    }

    async fn open(&self) -> Arc<dyn RecordStore> {
        open_record_store(&self.url).await.unwrap()
    }
}

/// A fresh SQLite database whose stores cache webhook lookups for a minute: the whole
/// suite holds through the cache, so every change made through a store is seen at once.
struct CachedSqliteDatabase(SqliteDatabase);

impl CachedSqliteDatabase {
    async fn create() -> Self {
        Self(SqliteDatabase::create().await)
    }

    async fn open(&self) -> Arc<dyn RecordStore> {
        CachedWebhookRoutes::wrap(self.0.open().await, Duration::from_secs(60))
    }
}

/// A fresh schema in the PostgreSQL database named by `PATCHBAY_TEST_DATABASE_URL`,
/// dropped when this value is.
struct PostgresDatabase {
    server_url: Url,
    schema: String,
    url: Url,
}

impl PostgresDatabase {
    /// Fails the test, naming the fix, when no PostgreSQL server is configured.
    async fn create() -> Self {
        let server_url = patchbay_testkit::services::postgres_url();
        let server_url = Url::parse(&server_url).expect("a valid PostgreSQL URL");
        let schema = format!("patchbay_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(server_url.as_str())
            .await
            .unwrap_or_else(|error| panic!("cannot reach PATCHBAY_TEST_DATABASE_URL: {error}"));
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut admin)
            .await
            .unwrap();
        admin.close().await.unwrap();
        let mut url = server_url.clone();
        url.query_pairs_mut()
            .append_pair("options", &format!("-c search_path={schema}"))
            .append_pair("application_name", &schema);
        Self {
            server_url,
            schema,
            url,
        }
    }

    async fn open(&self) -> Arc<dyn RecordStore> {
        open_record_store(self.url.as_str()).await.unwrap()
    }

    /// The server's address, for a proxy in front of it.
    async fn server_addr(&self) -> SocketAddr {
        let host = self.server_url.host_str().unwrap_or("localhost");
        let port = self.server_url.port().unwrap_or(5432);
        tokio::net::lookup_host((host, port))
            .await
            .unwrap()
            .next()
            .unwrap()
    }

    /// This database's URL, reached through `addr` and carrying `password`.
    fn url_via(&self, addr: SocketAddr, password: &str) -> String {
        let mut url = self.url.clone();
        url.set_ip_host(addr.ip()).unwrap();
        url.set_port(Some(addr.port())).unwrap();
        url.set_password(Some(password)).unwrap();
        url.into()
    }

    async fn admin(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(self.server_url.as_str())
            .await
            .unwrap()
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let schema = self.schema.clone();
        // Drop runs outside async code; a private runtime on its own thread does the cleanup.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut admin) = sqlx::PgConnection::connect(server_url.as_str()).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                        .execute(&mut admin)
                        .await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// One test per suite function and backend: `single` functions get one store, `replicas`
/// functions three stores on the same database.
macro_rules! suite_for {
    ($backend:ident, $database:ty; single [$($single:ident),* $(,)?]; replicas [$($replicas:ident),* $(,)?]) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $single() {
                    let database = <$database>::create().await;
                    crate::suite::$single(database.open().await).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $replicas() {
                    let database = <$database>::create().await;
                    let stores = vec![
                        database.open().await,
                        database.open().await,
                        database.open().await,
                    ];
                    crate::suite::$replicas(stores).await;
                }
            )*
        }
    };
}

macro_rules! behaviour_suite {
    (single [$($single:ident),* $(,)?]; replicas [$($replicas:ident),* $(,)?]) => {
        suite_for!(sqlite, crate::SqliteDatabase; single [$($single),*]; replicas [$($replicas),*]);
        suite_for!(needs_postgres, crate::PostgresDatabase; single [$($single),*]; replicas [$($replicas),*]);
        suite_for!(sqlite_with_route_cache, crate::CachedSqliteDatabase; single [$($single),*]; replicas [$($replicas),*]);
    };
}

behaviour_suite! {
    single [
        connection_crud,
        connection_without_optional_fields_round_trips,
        duplicate_connection_id_is_rejected,
        connections_list_oldest_first,
        tenants_are_isolated,
        webhook_connections_match_connector_and_user,
        routed_connections_match_connector_and_routing_key,
        a_routing_key_held_by_another_tenant_is_a_conflict,
        a_reinstall_in_the_same_tenant_replaces_the_connection,
        secret_references_move_and_retire,
        webhook_tokens_rotate_only_for_the_owning_tenant,
        api_keys_resolve_to_their_tenant,
        api_keys_are_listed_touched_and_revoked,
        alerts_are_deduplicated_across_and_within_batches,
        alert_batches_of_any_size_keep_order_and_the_first_copy,
        alerts_round_trip_and_page_in_cursor_order,
        alert_payloads_round_trip_exactly,
        alerts_with_nul_characters_are_stored,
        list_alerts_caps_a_page_at_one_thousand,
        alerts_outlive_their_connection,
        the_last_alert_cursor_is_the_tenants_newest,
        health_is_ok,
        oauth_state_is_consumed_exactly_once,
        oauth_state_is_bound_to_one_browser_once,
        expired_oauth_state_is_expired_then_already_used,
        oauth_states_older_than_retention_are_purged_on_insert,
        set_connection_status_is_unscoped,
        refresh_lease_is_exclusive_until_released_or_expired,
        a_lapsed_refresh_lease_taken_over_is_no_longer_held,
        agent_tokens_are_found_by_hash_and_revoked_per_connection,
        connect_links_open_once_and_their_session_lasts_its_time,
        connect_links_past_retention_are_purged_on_insert,
    ];
    replicas [
        concurrent_inserters_and_a_paging_reader_see_every_alert_once,
        concurrent_replicas_consume_a_state_once_and_share_one_lease,
        concurrent_installs_of_one_routing_key_leave_one_connection,
        concurrent_replicas_open_a_connect_link_once,
    ]
}

const PASSWORD_CANARY: &str = "canary-pg-password-7f3a";

fn assert_unavailable(error: &patchbay_core::Error, started: Instant) {
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
    assert_eq!(error.message(), "records database unavailable");
    assert!(error.hint().is_some_and(|hint| !hint.is_empty()));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "failed after {:?}",
        started.elapsed()
    );
    let printed = format!("{error} {:?} {error:?}", error.hint());
    assert!(!printed.contains(PASSWORD_CANARY), "{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_outage_is_unavailable_and_the_same_store_recovers() {
    let database = PostgresDatabase::create().await;
    let proxy = proxy::CuttableProxy::start(database.server_addr().await).await;
    let store = open_record_store(&database.url_via(proxy.addr(), PASSWORD_CANARY))
        .await
        .unwrap();
    let record = suite::connection("conn-1", suite::alice());
    store.insert_connection(&record).await.unwrap();

    proxy.cut();
    let started = Instant::now();
    assert_unavailable(&store.health().await.unwrap_err(), started);
    let started = Instant::now();
    let error = store
        .get_connection(&suite::alice(), "conn-1")
        .await
        .unwrap_err();
    assert_unavailable(&error, started);
    let started = Instant::now();
    let error = store
        .insert_alerts(&[suite::alert("conn-1", suite::alice(), "k1")])
        .await
        .unwrap_err();
    assert_unavailable(&error, started);
    let started = Instant::now();
    let error = store
        .list_alerts(&suite::alice(), None, 10)
        .await
        .unwrap_err();
    assert_unavailable(&error, started);

    proxy.restore();
    store.health().await.unwrap();
    assert_eq!(
        store
            .get_connection(&suite::alice(), "conn-1")
            .await
            .unwrap(),
        Some(record)
    );
    assert_eq!(
        store
            .insert_alerts(&[suite::alert("conn-1", suite::alice(), "k1")])
            .await
            .unwrap(),
        [true],
        "the batch attempted during the outage was not stored"
    );
    assert_eq!(
        store
            .list_alerts(&suite::alice(), None, 10)
            .await
            .unwrap()
            .alerts
            .len(),
        1
    );
}

/// One replica's batch takes its cursor, then stalls before committing; another replica
/// stores a batch meanwhile. A reader paging with `after` must still see both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_a_reader_never_skips_a_batch_that_commits_late() {
    let database = PostgresDatabase::create().await;
    let slow_replica = database.open().await;
    let fast_replica = database.open().await;
    let reader = database.open().await;

    // A trigger fires after the row's cursor default is drawn, so it stalls the slow
    // batch between taking its cursor and committing.
    let mut admin = database.admin().await;
    let schema = &database.schema;
    sqlx::query(&format!(
        "CREATE FUNCTION \"{schema}\".stall_slow_alert() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN IF NEW.dedup_key = 'slow' THEN PERFORM pg_sleep(1.5); END IF; \
         RETURN NEW; END $$"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    sqlx::query(&format!(
        "CREATE TRIGGER stall_slow_alert BEFORE INSERT ON \"{schema}\".alerts \
         FOR EACH ROW EXECUTE FUNCTION \"{schema}\".stall_slow_alert()"
    ))
    .execute(&mut admin)
    .await
    .unwrap();

    let slow = tokio::spawn(async move {
        slow_replica
            .insert_alerts(&[suite::alert("conn-1", suite::alice(), "slow")])
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (stalled,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event = 'PgSleep'",
        )
        .bind(schema)
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if stalled == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the slow batch never stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fast = tokio::spawn(async move {
        fast_replica
            .insert_alerts(&[suite::alert("conn-2", suite::alice(), "fast")])
            .await
    });

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let writers_done = slow.is_finished() && fast.is_finished();
        let page = reader
            .list_alerts(&suite::alice(), after, 10)
            .await
            .unwrap();
        seen.extend(
            page.alerts
                .iter()
                .map(|stored| stored.alert.dedup_key.clone()),
        );
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None if writers_done => break,
            None => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
    assert_eq!(slow.await.unwrap().unwrap(), [true]);
    assert_eq!(fast.await.unwrap().unwrap(), [true]);
    assert_eq!(seen, ["slow", "fast"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_connections_killed_by_the_server_are_replaced() {
    let database = PostgresDatabase::create().await;
    let store = database.open().await;
    store
        .insert_connection(&suite::connection("conn-1", suite::alice()))
        .await
        .unwrap();

    let mut admin = database.admin().await;
    let terminated: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&database.schema)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!terminated.is_empty(), "the store had open connections");

    // A connection may die between the pool's check and its use; then the call reports
    // Unavailable and the next one gets a fresh connection.
    if let Err(error) = store.health().await {
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{error:?}");
    }
    store.health().await.unwrap();
    assert!(store
        .get_connection(&suite::alice(), "conn-1")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_replicas_can_start_together() {
    let database = PostgresDatabase::create().await;
    let url = database.url.to_string();
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { open_record_store(&url).await })
        })
        .collect();
    for opener in openers {
        opener.await.unwrap().unwrap().health().await.unwrap();
    }
}

async fn open_failure(url: &str) -> patchbay_core::Error {
    match open_record_store(url).await {
        Ok(_) => panic!("the records database opened unexpectedly"),
        Err(error) => error,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_startup_errors_name_the_problem_without_the_password() {
    let database = PostgresDatabase::create().await;
    let check = |error: &patchbay_core::Error| {
        let printed = format!("{error} {:?} {error:?}", error.hint());
        assert!(!printed.contains(PASSWORD_CANARY), "{printed}");
        assert!(error.hint().is_some(), "{error:?}");
    };

    let mut missing =
        Url::parse(&database.url_via(database.server_addr().await, PASSWORD_CANARY)).unwrap();
    missing.set_path(&format!("/{}", database.schema));
    let error = open_failure(missing.as_str()).await;
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error:?}");
    assert_eq!(error.field(), Some("DATABASE_URL"));
    check(&error);

    let malformed = format!("postgres://postgres:{PASSWORD_CANARY}@127.0.0.1:notaport/test");
    let error = open_failure(&malformed).await;
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error:?}");
    assert_eq!(error.field(), Some("DATABASE_URL"));
    check(&error);

    let nobody_listening = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let started = Instant::now();
    let error = open_failure(&database.url_via(nobody_listening, PASSWORD_CANARY)).await;
    assert_unavailable(&error, started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_a_user_that_cannot_create_tables_is_a_configuration_error() {
    let database = PostgresDatabase::create().await;
    let role = format!("{}_user", database.schema);
    let mut admin = database.admin().await;
    for statement in [
        format!("CREATE ROLE \"{role}\" LOGIN"),
        format!(
            "GRANT USAGE ON SCHEMA \"{}\" TO \"{role}\"",
            database.schema
        ),
    ] {
        sqlx::query(&statement).execute(&mut admin).await.unwrap();
    }
    let mut url = database.url.clone();
    url.set_username(&role).unwrap();
    let result = open_record_store(url.as_str()).await;
    for statement in [
        format!(
            "REVOKE ALL ON SCHEMA \"{}\" FROM \"{role}\"",
            database.schema
        ),
        format!("DROP ROLE \"{role}\""),
    ] {
        sqlx::query(&statement).execute(&mut admin).await.unwrap();
    }

    let Err(error) = result else {
        panic!("a user without CREATE on the schema migrated the database");
    };
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error:?}");
    assert_eq!(error.field(), Some("DATABASE_URL"));
    assert!(error.hint().unwrap().contains("GRANT CREATE"), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_schema_has_no_secret_columns() {
    let database = PostgresDatabase::create().await;
    let store = database.open().await;
    store.health().await.unwrap();
    let mut admin = database.admin().await;
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text \
         FROM information_schema.columns WHERE table_schema = $1 \
         AND table_name IN ('connections', 'api_keys', 'alerts')",
    )
    .bind(&database.schema)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(columns.len() > 30, "{columns:?}");
    for (table, column, _) in &columns {
        assert!(
            !["secret", "api_key", "token", "password", "app_key"].contains(&column.as_str()),
            "column `{table}.{column}` looks like it holds a secret"
        );
    }
    assert!(columns.contains(&("alerts".into(), "cursor".into(), "bigint".into())));
    assert!(columns.contains(&("alerts".into(), "raw".into(), "jsonb".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_rejects_a_nul_in_connection_fields_as_invalid_input() {
    let database = PostgresDatabase::create().await;
    let store = database.open().await;
    let mut record = suite::connection("conn-1", suite::alice());
    record.label = "bad\0label".into();
    let error = store.insert_connection(&record).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error:?}");
    record.label = "fine".into();
    record.metadata = serde_json::json!({ "note": "bad\0value" });
    let error = store.insert_connection(&record).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error:?}");
    assert_eq!(store.list_connections(&suite::alice()).await.unwrap(), []);
}

/// A migrator with only the migrations before `0003`, from a copy of the backend's directory.
async fn migrator_before_0003(backend: &str) -> (tempfile::TempDir, sqlx::migrate::Migrator) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let dir = tempfile::tempdir().unwrap();
    for name in ["0001_initial.sql", "0002_oauth.sql"] {
        std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
    }
    let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
    (dir, migrator)
}

/// Connections as an earlier Patchbay could leave them: three sharing routing key `T1`
/// (`first` and `second` created at the same time, in that order, then `third`), one
/// alone on `T2`.
const DUPLICATE_ROUTES: [(&str, &str, &str); 4] = [
    ("first", "T1", "2024-01-01T00:00:00Z"),
    ("second", "T1", "2024-01-01T00:00:00Z"),
    ("third", "T1", "2024-02-01T00:00:00Z"),
    ("alone", "T2", "2024-03-01T00:00:00Z"),
];

/// After `0003`, only the oldest connection of each routing key keeps it.
async fn assert_only_the_oldest_keeps_each_routing_key(store: Arc<dyn RecordStore>) {
    let tenant = patchbay_core::Tenant::user("alice");
    let routes: Vec<(String, Option<String>)> = store
        .list_connections(&tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|record| (record.id, record.routing_key))
        .collect();
    assert_eq!(
        routes,
        [
            ("first".to_owned(), Some("T1".to_owned())),
            ("second".to_owned(), None),
            ("third".to_owned(), None),
            ("alone".to_owned(), Some("T2".to_owned())),
        ]
    );
    let mut again = suite::connection("again", tenant);
    again.connector = "slack".into();
    again.routing_key = Some("T1".into());
    assert_eq!(
        store.insert_connection(&again).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_upgrade_keeps_the_routing_key_of_the_oldest_duplicate() {
    let database = SqliteDatabase::create().await;
    let (_dir, migrator) = migrator_before_0003("sqlite").await;
    let pool = sqlx::SqlitePool::connect(&database.url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    for (id, routing_key, created_at) in DUPLICATE_ROUTES {
        sqlx::query(
            "INSERT INTO connections (id, scope, user_id, connector, label, metadata, \
             secret_ref, status, routing_key, created_at) \
             VALUES (?, 'user:alice', 'alice', 'slack', ?, '{}', ?, 'active', ?, ?)",
        )
        .bind(id)
        .bind(id)
        .bind(format!("local:{id}"))
        .bind(routing_key)
        .bind(created_at)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
    assert_only_the_oldest_keeps_each_routing_key(database.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_upgrade_keeps_the_routing_key_of_the_oldest_duplicate() {
    let database = PostgresDatabase::create().await;
    let (_dir, migrator) = migrator_before_0003("postgres").await;
    let mut connection = sqlx::PgConnection::connect(database.url.as_str())
        .await
        .unwrap();
    migrator.run(&mut connection).await.unwrap();
    for (id, routing_key, created_at) in DUPLICATE_ROUTES {
        sqlx::query(
            "INSERT INTO connections (id, scope, user_id, connector, label, metadata, \
             secret_ref, status, routing_key, created_at) \
             VALUES ($1, 'user:alice', 'alice', 'slack', $1, '{}', $2, 'active', $3, $4::timestamptz)",
        )
        .bind(id)
        .bind(format!("local:{id}"))
        .bind(routing_key)
        .bind(created_at)
        .execute(&mut connection)
        .await
        .unwrap();
    }
    connection.close().await.unwrap();
    assert_only_the_oldest_keeps_each_routing_key(database.open().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_an_alert_batch_committed_anywhere_wakes_the_listeners() {
    let database = PostgresDatabase::create().await;
    let signal = patchbay_store::AlertSignal::new();
    let _listening =
        patchbay_store::alert_feed::listen_postgres(database.url.as_str(), signal.clone())
            .await
            .unwrap();
    let mut follower = signal.subscribe();
    // Another replica's store: only PostgreSQL connects the two.
    let writer = database.open().await;
    let inserted = writer
        .insert_alerts(&[suite::alert("conn-1", suite::alice(), "k1")])
        .await
        .unwrap();
    assert_eq!(inserted, [true]);
    tokio::time::timeout(Duration::from_secs(10), follower.changed())
        .await
        .expect("the listener is woken within 10 s")
        .unwrap();
    let page = writer.list_alerts(&suite::alice(), None, 10).await.unwrap();
    assert_eq!(page.alerts.len(), 1, "what woke it is visible");
}
