//! `cargo xtask bench footprint`: start-up, memory and alert listing at size.
//!
//! Start-up is timed from spawn to `/readyz` answering 200, against the start-up of
//! the bare hyper endpoint in the same run; memory is the service's resident set
//! (`VmRSS`). The service first runs on a fresh data directory, where it makes a
//! Datadog connection against the fake and stores alerts from real deliveries; started
//! again on that data, it is measured and its listing timed (the ceiling). The stored
//! rows are then copied until the data reaches the target size (see [`seed`]), and the
//! service is started and measured the same way on it.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_core::Tenant;
use patchbay_store::{
    KeySource, LocalSecretStore, MasterKey, SecretLocation, SecretRef, SecretStore,
};
use patchbay_testkit::fake_server::ProviderFake;
use rand::RngCore;
use reqwest::Method;
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Row};

use super::query::Call;
use super::{
    bench_client, connect_datadog, count_alerts, create_api_key, deliveries, free_port, load,
    millis, patchbay_binary, patchbay_command, rss_kib, wait_for_patchbay, wait_until_up,
    ChildGuard, Sample, API_KEY, APP_KEY,
};

/// Alerts stored from real deliveries on the fresh data directory; the rows copied.
const TEMPLATE_ALERTS: usize = 1000;

/// Tenants (organisations) the copied connections are spread over.
const TENANTS: usize = 1000;

/// Start-ups timed on each side.
const STARTS: usize = 5;

/// Listing requests per page, after a warm-up of a tenth as many.
const LISTINGS: usize = 500;

/// Alerts per listed page (the API's default).
const PAGE: usize = 100;

/// How far into the benchmark tenant's alerts the deep page starts.
const DEEP: f64 = 0.9;

/// Start-up, resident set and listing figures of the service started on some data.
struct AtSize {
    /// Spawn to `/readyz` 200 on this data.
    startup: Duration,
    idle_rss_kib: u64,
    first_page: Sample,
    deep_page: Sample,
    listed_rss_kib: u64,
}

/// Runs the benchmark, growing the data to `connections` connections and `alerts` alerts.
pub async fn footprint(connections: usize, alerts: usize) -> Result<()> {
    ensure!(
        connections >= 2 && alerts >= TEMPLATE_ALERTS,
        "--connections must be at least 2 and --alerts at least {TEMPLATE_ALERTS}"
    );
    let binary = patchbay_binary()?;
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let overrides = fake.override_spec();
    let client = bench_client(32)?;

    // Start-up, alternating between the service on a fresh directory and the bare endpoint.
    let (mut service_starts, mut bare_starts) = (Vec::new(), Vec::new());
    for _ in 0..STARTS {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let spawned = Instant::now();
        let _service = ChildGuard(
            patchbay_command(&binary, dir.path(), port, &overrides)
                .arg("serve")
                .spawn()?,
        );
        wait_for_patchbay(
            &client,
            &format!("http://127.0.0.1:{port}/readyz"),
            dir.path(),
        )
        .await?;
        service_starts.push(spawned.elapsed());

        let port = free_port()?;
        let spawned = Instant::now();
        let _bare = ChildGuard(
            std::process::Command::new(std::env::current_exe()?)
                .args(["bare-server", "--port", &port.to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()?,
        );
        wait_until_up(&client, &format!("http://127.0.0.1:{port}/")).await?;
        bare_starts.push(spawned.elapsed());
    }
    let service_start = median(service_starts);
    let bare_start = median(bare_starts);

    // The fresh directory: one connection and the template alerts, from real deliveries.
    let data = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let service = ChildGuard(
        patchbay_command(&binary, data.path(), port, &overrides)
            .arg("serve")
            .spawn()?,
    );
    wait_for_patchbay(&client, &format!("{base}/readyz"), data.path()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let empty_rss_kib = rss_kib(service.0.id())?;
    let key = create_api_key(&binary, data.path(), port, "bench", None)?;
    let (connection, token) = connect_datadog(&client, &base, &key, "bench").await?;
    let url = [format!("{base}/datadog/webhook/bench")];
    load(
        &client,
        &url,
        &token,
        deliveries(&fake, 1, TEMPLATE_ALERTS),
        16,
    )
    .await?;
    let stored = count_alerts(&client, &base, &key).await?;
    ensure!(
        stored == TEMPLATE_ALERTS,
        "{TEMPLATE_ALERTS} deliveries stored {stored} alerts"
    );
    drop(service);

    // Both sizes are measured the same way: the service started again on the data.
    let database = data.path().join("patchbay.db");
    let bench_scope = Tenant::user("bench").scope_key();
    let start = || async {
        let spawned = Instant::now();
        let service = ChildGuard(
            patchbay_command(&binary, data.path(), port, &overrides)
                .arg("serve")
                .spawn()?,
        );
        wait_for_patchbay(&client, &format!("{base}/readyz"), data.path()).await?;
        anyhow::Ok((service, spawned.elapsed()))
    };
    let (service, startup) = start().await?;
    let small = at_size(
        &client,
        &base,
        &key,
        &database,
        &bench_scope,
        &service,
        startup,
    )
    .await?;
    drop(service);

    // Grow the data with the service stopped: it must be the only writer of its secrets.
    let seeding = Instant::now();
    seed(data.path(), &database, &connection, connections, alerts).await?;
    let seeding = seeding.elapsed();

    let (service, startup) = start().await?;
    check_copied_connection(&client, &binary, data.path(), port, &database).await?;
    let grown = at_size(
        &client,
        &base,
        &key,
        &database,
        &bench_scope,
        &service,
        startup,
    )
    .await?;
    let database_mib = std::fs::metadata(&database)?.len() as f64 / (1024.0 * 1024.0);
    drop(service);

    let mib = |kib: u64| kib as f64 / 1024.0;
    println!("\n## Footprint (release build, SQLite)\n");
    println!(
        "| start-up, spawn to first answer (median of {STARTS}, fresh data directory) | ms |\n|---|---:|"
    );
    println!(
        "| `patchbay serve` to `/readyz` 200 | {:.1} |",
        millis(service_start)
    );
    println!("| bare hyper endpoint | {:.1} |", millis(bare_start));
    println!(
        "| ratio | {:.2} |\n",
        service_start.as_secs_f64() / bare_start.as_secs_f64()
    );
    println!(
        "Idle RSS of `patchbay serve` on an empty data directory: {:.1} MiB.\n",
        mib(empty_rss_kib)
    );
    println!(
        "| data | start-up to `/readyz` ms | idle RSS MiB | first page p50 ms | first page p99 ms \
         | deep page p50 ms | deep page p99 ms | RSS after listing MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (label, figures) in [
        (format!("1 connection, {TEMPLATE_ALERTS} alerts"), &small),
        (
            format!(
                "{} connections, {} alerts ({database_mib:.0} MiB database)",
                thousands(connections),
                thousands(alerts)
            ),
            &grown,
        ),
    ] {
        println!(
            "| {label} | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
            millis(figures.startup),
            mib(figures.idle_rss_kib),
            millis(figures.first_page.p50()),
            millis(figures.first_page.p99()),
            millis(figures.deep_page.p50()),
            millis(figures.deep_page.p99()),
            mib(figures.listed_rss_kib)
        );
    }
    println!(
        "\n- `GET /api/alerts?limit={PAGE}` {LISTINGS} times per page, one at a time, the two \
         pages alternating; the deep page starts {:.0} % into the benchmark tenant's alerts \
         (half of all stored).",
        DEEP * 100.0
    );
    println!(
        "- Listing p99 at size over p99 with 1 connection and {TEMPLATE_ALERTS} alerts (the \
         ceiling): first page {:.2}, deep page {:.2}.",
        grown.first_page.p99().as_secs_f64() / small.first_page.p99().as_secs_f64(),
        grown.deep_page.p99().as_secs_f64() / small.deep_page.p99().as_secs_f64()
    );
    println!(
        "- Seeding took {:.0} s: each stored connection and alert is a copy of a row the \
         service wrote, with a new id, tenant, secret and dedup key.",
        seeding.as_secs_f64()
    );
    Ok(())
}

/// Idle memory, then the first and a deep page of the benchmark tenant's alerts,
/// listed one at a time, alternating.
async fn at_size(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    database: &Path,
    scope: &str,
    service: &ChildGuard,
    startup: Duration,
) -> Result<AtSize> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = rss_kib(service.0.id())?;
    let mut db = open(database).await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alerts WHERE scope = ?")
        .bind(scope)
        .fetch_one(&mut db)
        .await?;
    let (deep,): (i64,) = sqlx::query_as(
        "SELECT cursor FROM alerts WHERE scope = ? ORDER BY cursor LIMIT 1 OFFSET ?",
    )
    .bind(scope)
    .bind((count as f64 * DEEP) as i64)
    .fetch_one(&mut db)
    .await?;
    db.close().await?;
    let page = |query: String| {
        Arc::new(Call {
            method: Method::GET,
            url: format!("{base}/api/alerts?{query}"),
            headers: vec![("authorization", format!("Bearer {key}"))],
            body: None,
            expect: "\"next_cursor\"",
        })
    };
    let first = page(format!("limit={PAGE}"));
    let deep = page(format!("after={deep}&limit={PAGE}"));
    for call in [&first, &deep] {
        call.load(client, LISTINGS / 10, 1).await?;
    }
    let (mut first_runs, mut deep_runs) = (Vec::new(), Vec::new());
    for _ in 0..LISTINGS / 10 {
        first_runs.push(first.load(client, 10, 1).await?);
        deep_runs.push(deep.load(client, 10, 1).await?);
    }
    Ok(AtSize {
        startup,
        idle_rss_kib,
        first_page: Sample::merged(first_runs),
        deep_page: Sample::merged(deep_runs),
        listed_rss_kib: rss_kib(service.0.id())?,
    })
}

/// Grows the stopped service's data to `connections` connections and `alerts` alerts
/// by copying rows it wrote, as fast bulk work instead of one API call per row:
///
/// - each new connection copies the `template` connection's row with a new id, label,
///   tenant (spread over [`TENANTS`] organisations), webhook token hash and secret;
/// - each secret is the template's secret, sealed by `LocalSecretStore::put` itself in
///   a scratch store (a put rewrites the whole file, so ten thousand puts into one store
///   would take quadratic time), its entries then written into the service's
///   `secrets.json` in one go;
/// - alerts copy the template connection's stored alerts in batches, each batch under
///   a new dedup key suffix; every other batch goes to the benchmark tenant, the others
///   to the copied connections in turn.
async fn seed(
    data_dir: &Path,
    database: &Path,
    template: &str,
    connections: usize,
    alerts: usize,
) -> Result<()> {
    let mut db = open(database).await?;
    // Bulk loading only: the service sets its own durability when it opens the file.
    sqlx::query("PRAGMA synchronous = OFF")
        .execute(&mut db)
        .await?;
    sqlx::query("PRAGMA cache_size = -262144")
        .execute(&mut db)
        .await?;
    let (secret_ref,): (String,) =
        sqlx::query_as("SELECT secret_ref FROM connections WHERE id = ?")
            .bind(template)
            .fetch_one(&mut db)
            .await?;

    let copies: Vec<(String, Tenant)> = (1..connections)
        .map(|index| {
            let org = format!("seed-org-{:04}", index % TENANTS);
            let tenant = Tenant {
                user_id: format!("seed-user-{:04}", index % TENANTS),
                org_id: Some(org),
            };
            (uuid::Uuid::new_v4().to_string(), tenant)
        })
        .collect();
    let locations: Vec<SecretLocation> = copies
        .iter()
        .map(|(id, tenant)| SecretLocation::new(tenant, "datadog", id.as_str()))
        .collect();
    let references = seed_secrets(data_dir, &SecretRef(secret_ref), &locations).await?;

    let columns = table_columns(&mut db, "connections").await?;
    let changed = [
        "id",
        "scope",
        "user_id",
        "org_id",
        "label",
        "secret_ref",
        "webhook_token_hash",
    ];
    let insert = copy_statement("connections", &columns, &changed, "WHERE id = ?");
    let mut transaction = db.begin().await?;
    for (index, ((id, tenant), reference)) in copies.iter().zip(&references).enumerate() {
        let mut hash = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut hash);
        let mut statement = sqlx::query(&insert);
        for column in columns
            .iter()
            .filter(|column| changed.contains(&column.as_str()))
        {
            statement = match column.as_str() {
                "id" => statement.bind(id.clone()),
                "scope" => statement.bind(tenant.scope_key()),
                "user_id" => statement.bind(tenant.user_id.clone()),
                "org_id" => statement.bind(tenant.org_id.clone()),
                "label" => statement.bind(format!("seed-{index}")),
                "secret_ref" => statement.bind(reference.to_string()),
                _ => statement.bind(hex::encode(hash)),
            };
        }
        statement.bind(template).execute(&mut *transaction).await?;
    }
    transaction.commit().await?;

    sqlx::query("CREATE TEMP TABLE template_alerts AS SELECT * FROM alerts WHERE connection_id = ? ORDER BY cursor")
        .bind(template)
        .execute(&mut db)
        .await?;
    let columns = table_columns(&mut db, "alerts").await?;
    let insert = {
        let kept: Vec<&str> = columns
            .iter()
            .map(String::as_str)
            .filter(|column| *column != "cursor")
            .collect();
        let values: Vec<String> = kept
            .iter()
            .map(|column| match *column {
                "scope" | "connection_id" => "?".to_owned(),
                "dedup_key" | "external_id" => format!("{column} || ':' || ?"),
                other => other.to_owned(),
            })
            .collect();
        format!(
            "INSERT INTO alerts ({}) SELECT {} FROM template_alerts ORDER BY cursor LIMIT ?",
            kept.join(", "),
            values.join(", ")
        )
    };
    let bench_scope = Tenant::user("bench").scope_key();
    let mut remaining = alerts - TEMPLATE_ALERTS;
    let mut batch = 0usize;
    while remaining > 0 {
        let mut transaction = db.begin().await?;
        for _ in 0..50 {
            if remaining == 0 {
                break;
            }
            let size = remaining.min(TEMPLATE_ALERTS);
            let (scope, connection) = if batch % 2 == 0 {
                (bench_scope.clone(), template.to_owned())
            } else {
                let (id, tenant) = &copies[(batch / 2) % copies.len()];
                (tenant.scope_key(), id.clone())
            };
            let suffix = format!("seed{batch}");
            let mut statement = sqlx::query(&insert);
            for column in columns.iter().filter(|column| *column != "cursor") {
                statement = match column.as_str() {
                    "scope" => statement.bind(scope.clone()),
                    "connection_id" => statement.bind(connection.clone()),
                    "dedup_key" | "external_id" => statement.bind(suffix.clone()),
                    _ => statement,
                };
            }
            statement
                .bind(size as i64)
                .execute(&mut *transaction)
                .await?;
            remaining -= size;
            batch += 1;
        }
        transaction.commit().await?;
    }

    let (stored_connections,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM connections")
        .fetch_one(&mut db)
        .await?;
    let (stored_alerts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM alerts")
        .fetch_one(&mut db)
        .await?;
    ensure!(
        stored_connections as usize == connections && stored_alerts as usize == alerts,
        "seeded {stored_connections} connections and {stored_alerts} alerts, not {connections} and {alerts}"
    );
    db.close().await?;
    Ok(())
}

/// Seals a copy of the `template` secret for each location, returning their references.
async fn seed_secrets(
    data_dir: &Path,
    template: &SecretRef,
    locations: &[SecretLocation],
) -> Result<Vec<SecretRef>> {
    let service_store = LocalSecretStore::open(data_dir, service_key(data_dir)?)?;
    let value = service_store.get(template).await?;
    let service_file = service_store.path().to_owned();
    drop(service_store);

    let scratch = scratch_dir()?;
    let mut sealed = Map::new();
    let mut references = Vec::with_capacity(locations.len());
    for location in locations {
        let store = LocalSecretStore::open(scratch.path(), service_key(data_dir)?)?;
        references.push(store.put(location, &value).await?);
        let file = store.path().to_owned();
        let entries: Map<String, Value> = serde_json::from_slice(&std::fs::read(&file)?)
            .with_context(|| format!("reading {}", file.display()))?;
        sealed.extend(entries);
        std::fs::remove_file(&file)?;
    }

    let mut entries: Map<String, Value> = serde_json::from_slice(&std::fs::read(&service_file)?)?;
    entries.extend(sealed);
    let mut replacement = tempfile::NamedTempFile::new_in(data_dir)?;
    replacement.write_all(&serde_json::to_vec_pretty(&entries)?)?;
    replacement.as_file().sync_all()?;
    replacement.persist(&service_file)?;
    Ok(references)
}

/// The master key the service generated in its data directory.
fn service_key(data_dir: &Path) -> Result<MasterKey> {
    let (key, source) = MasterKey::resolve(None, data_dir)?;
    ensure!(
        matches!(source, KeySource::File(_)),
        "the service left no master key in {}",
        data_dir.display()
    );
    Ok(key)
}

/// A scratch directory in memory when there is one, as the scratch store syncs every write.
fn scratch_dir() -> Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() {
        tempfile::tempdir_in(shm)?
    } else {
        tempfile::tempdir()?
    })
}

/// Checks that a copied connection works: its tenant lists it, and a query on it
/// decrypts its secret and reaches the fake.
async fn check_copied_connection(
    client: &reqwest::Client,
    binary: &Path,
    data_dir: &Path,
    port: u16,
    database: &Path,
) -> Result<()> {
    let mut db = open(database).await?;
    let row = sqlx::query("SELECT id, user_id, org_id FROM connections WHERE label = 'seed-0'")
        .fetch_one(&mut db)
        .await?;
    db.close().await?;
    let (id, user, org): (String, String, Option<String>) =
        (row.get("id"), row.get("user_id"), row.get("org_id"));
    let key = create_api_key(binary, data_dir, port, &user, org.as_deref())?;
    let base = format!("http://127.0.0.1:{port}");
    let listed: Value = client
        .get(format!("{base}/api/connections"))
        .bearer_auth(&key)
        .send()
        .await?
        .json()
        .await?;
    ensure!(
        listed["connections"]
            .as_array()
            .is_some_and(|connections| connections.iter().any(|c| c["id"] == id.as_str())),
        "the copied connection {id} is not listed for its tenant: {listed}"
    );
    Call {
        method: Method::POST,
        url: format!("{base}/api/connections/{id}/query/get_monitor"),
        headers: vec![
            ("authorization", format!("Bearer {key}")),
            ("content-type", "application/json".to_owned()),
        ],
        body: Some(r#"{"monitor_id": 1001}"#.into()),
        expect: "\"data\"",
    }
    .send(client)
    .await
    .map(drop)
}

async fn open(database: &Path) -> Result<SqliteConnection> {
    Ok(SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(database)).await?)
}

async fn table_columns(db: &mut SqliteConnection, table: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(&format!("PRAGMA table_info({table})"))
        .fetch_all(&mut *db)
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.get::<String, _>("name"))
        .collect())
}

/// `INSERT INTO table (every column) SELECT …` copying a row, with a `?` for each
/// `changed` column, in table order.
fn copy_statement(table: &str, columns: &[String], changed: &[&str], filter: &str) -> String {
    let values: Vec<&str> = columns
        .iter()
        .map(|column| {
            if changed.contains(&column.as_str()) {
                "?"
            } else {
                column.as_str()
            }
        })
        .collect();
    format!(
        "INSERT INTO {table} ({}) SELECT {} FROM {table} {filter}",
        columns.join(", "),
        values.join(", ")
    )
}

fn median(mut durations: Vec<Duration>) -> Duration {
    durations.sort_unstable();
    durations[durations.len() / 2]
}

/// `1000000` as `1,000,000`.
fn thousands(number: usize) -> String {
    let digits = number.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}
