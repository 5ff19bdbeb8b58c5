//! `cargo xtask bench <name>`: Patchbay's benchmarks. Each measures a ceiling in the
//! same run (a bare hyper endpoint, the provider's fake called directly, kubectl run
//! directly), so its figures are ratios that carry across machines and survive a
//! noisy one.
//!
//! - `webhooks`: webhook ingestion against a bare endpoint answering 202.
//! - `agent`: the Kubernetes relay against kubectl run directly.
//! - `query`: an operation through the API against the same call made to the fake.
//! - `refresh`: concurrent queries on an expired OAuth token against a fresh one.
//! - `footprint`: start-up, memory and alert listing with many connections and alerts.
//! - `all`: every bench, their figures written into `docs/performance.md`.
//!
//! Every bench runs the release `patchbay` that `cargo build --release -p
//! patchbay-host` builds, on SQLite, with connections made against provider fakes.

mod agent;
pub(crate) mod all;
mod footprint;
mod query;
mod refresh;
pub(crate) mod slack;

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Subcommand;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

use crate::target_dir;

/// The Datadog API key the fake accepts.
pub(crate) const API_KEY: &str = "bench-dd-api-key-0001";
/// The Datadog application key the fake accepts.
pub(crate) const APP_KEY: &str = "bench-dd-app-key-0001";

/// The benchmarks.
#[derive(Subcommand)]
pub enum Bench {
    /// Webhook deliveries per second and latency, against a bare 202 endpoint.
    Webhooks {
        /// Concurrency levels, comma-separated.
        #[arg(long, default_value = "1,16,64")]
        concurrency: String,
        /// Deliveries per concurrency level (after a warm-up).
        #[arg(long, default_value_t = 4000)]
        requests: usize,
        /// Use the release binaries already built.
        #[arg(long)]
        skip_build: bool,
    },
    /// kubectl through Patchbay and the agent, against kubectl run directly.
    Agent {
        /// Commands run one at a time on each path (after a warm-up).
        #[arg(long, default_value_t = 200)]
        sequential: usize,
        /// Commands sent at once on one agent socket (and kubectl processes at once).
        #[arg(long, default_value_t = 100)]
        concurrent: usize,
        /// Use the release binaries already built.
        #[arg(long)]
        skip_build: bool,
    },
    /// One operation through Patchbay's API, against the same request sent straight to
    /// the provider's fake, for a token connector and an OAuth connector.
    Query {
        /// Concurrency levels, comma-separated.
        #[arg(long, default_value = "1,32")]
        concurrency: String,
        /// Requests per path, connector and concurrency level (after a warm-up).
        #[arg(long, default_value_t = 2000)]
        requests: usize,
        /// Use the release binaries already built.
        #[arg(long)]
        skip_build: bool,
    },
    /// Concurrent queries on an expired OAuth token, which must cause exactly one token
    /// request, against as many queries on a fresh token.
    Refresh {
        /// Queries sent at once.
        #[arg(long, default_value_t = 500)]
        queries: usize,
        /// Times the expired-token and fresh-token bursts are each run.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// Use the release binaries already built.
        #[arg(long)]
        skip_build: bool,
    },
    /// Start-up time, memory, and alert listing with many connections and alerts stored.
    Footprint {
        /// Connections stored (spread over many tenants).
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Alerts stored (half of them the benchmark tenant's).
        #[arg(long, default_value_t = 1_000_000)]
        alerts: usize,
        /// Use the release binaries already built.
        #[arg(long)]
        skip_build: bool,
    },
    /// Every benchmark with its defaults; their figures replace the generated sections
    /// of docs/performance.md.
    All {
        /// Use the release binaries already built.
        #[arg(long)]
        skip_build: bool,
    },
}

/// Runs a benchmark, building the release binaries first unless told not to.
pub fn run(bench: Bench) -> Result<()> {
    match bench {
        Bench::Webhooks {
            concurrency,
            requests,
            skip_build,
        } => {
            let levels = concurrency_levels(&concurrency)?;
            ensure!(requests > 0, "--requests must be positive");
            build_unless(skip_build)?;
            runtime()?.block_on(webhooks(&levels, requests))
        }
        Bench::Agent {
            sequential,
            concurrent,
            skip_build,
        } => {
            ensure!(
                sequential > 0 && concurrent > 0,
                "--sequential and --concurrent must be positive"
            );
            build_unless(skip_build)?;
            runtime()?.block_on(agent::agent(sequential, concurrent))
        }
        Bench::Query {
            concurrency,
            requests,
            skip_build,
        } => {
            let levels = concurrency_levels(&concurrency)?;
            ensure!(requests > 0, "--requests must be positive");
            build_unless(skip_build)?;
            runtime()?.block_on(query::query(&levels, requests))
        }
        Bench::Refresh {
            queries,
            rounds,
            skip_build,
        } => {
            ensure!(
                queries > 0 && rounds > 0,
                "--queries and --rounds must be positive"
            );
            build_unless(skip_build)?;
            runtime()?.block_on(refresh::refresh(queries, rounds))
        }
        Bench::Footprint {
            connections,
            alerts,
            skip_build,
        } => {
            build_unless(skip_build)?;
            runtime()?.block_on(footprint::footprint(connections, alerts))
        }
        Bench::All { skip_build } => {
            build_unless(skip_build)?;
            all::all()
        }
    }
}

/// Builds the release `patchbay` with its default features, exactly as `cargo build
/// --release -p patchbay-host` (and the README's `cargo run --release -p patchbay-host
/// -- serve`) does, then the release `patchbay-kubectl-agent` as its own `cargo build
/// --release -p patchbay-kubectl-agent` does; every bench uses these binaries.
///
/// One invocation per package, so that each resolves its dependencies' features as
/// its own command does (together, the agent's would be unified with the service's),
/// in the environment of a shell (see [`cargo_as_from_a_shell`]): the benches and those
/// commands then share one release build, and neither recompiles after the other.
pub fn build_release() -> Result<()> {
    for package in ["patchbay-host", "patchbay-kubectl-agent"] {
        crate::run(cargo_as_from_a_shell().args(["build", "--release", "--package", package]))?;
    }
    Ok(())
}

/// cargo without the variables `cargo run` set to describe xtask. Build scripts that
/// declare them with `rerun-if-env-changed` (ring's declares `CARGO_MANIFEST_DIR` and
/// `CARGO_PKG_*`) would otherwise rerun, and everything above them rebuild, each time
/// a release build alternated between a shell and here.
fn cargo_as_from_a_shell() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(describes_the_running_package) {
            command.env_remove(name);
        }
    }
    command
}

/// Whether `name` is one of the variables `cargo run` sets about the package it runs.
fn describes_the_running_package(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
        )
}

fn build_unless(skip_build: bool) -> Result<()> {
    if skip_build {
        Ok(())
    } else {
        build_release()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn concurrency_levels(text: &str) -> Result<Vec<usize>> {
    let levels = text
        .split(',')
        .map(|level| level.trim().parse::<usize>())
        .collect::<Result<Vec<_>, _>>()
        .context("--concurrency takes whole numbers separated by commas")?;
    ensure!(
        !levels.is_empty() && levels.iter().all(|level| *level > 0),
        "concurrency levels must be positive"
    );
    Ok(levels)
}

/// The release `patchbay` binary, which must have been built.
fn patchbay_binary() -> Result<PathBuf> {
    let binary = target_dir().join("release/patchbay");
    ensure!(
        binary.exists(),
        "{} is missing; run without --skip-build",
        binary.display()
    );
    Ok(binary)
}

/// Serves `202 Accepted` for every request after reading its body; the baseline.
pub fn bare_server(port: u16) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|request: Request<Incoming>| async {
                        let _ = request.into_body().collect().await;
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(202)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from_static(b"{\"accepted\":1}")))
                                .expect("static response"),
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn patchbay_command(binary: &Path, data_dir: &Path, port: u16, overrides: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .current_dir(data_dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PATCHBAY_LISTEN", format!("127.0.0.1:{port}"))
        .env("PATCHBAY_DATA_DIR", data_dir)
        .env("PATCHBAY_PUBLIC_URL", format!("http://127.0.0.1:{port}"))
        .env("PATCHBAY_UPSTREAM_OVERRIDES", overrides)
        .env("PATCHBAY_LOG", "warn")
        .stdout(Stdio::null());
    match std::fs::File::create(data_dir.join("patchbay.log")) {
        Ok(log) => command.stderr(log),
        Err(_) => command.stderr(Stdio::null()),
    };
    command
}

/// Waits for a started `patchbay`, showing its log when it never answers.
async fn wait_for_patchbay(
    client: &reqwest::Client,
    url: &str,
    data_dir: &Path,
) -> Result<Duration> {
    wait_until_up(client, url).await.map_err(|error| {
        let log = std::fs::read_to_string(data_dir.join("patchbay.log")).unwrap_or_default();
        error.context(format!("patchbay's log:\n{log}"))
    })
}

async fn wait_until_up(client: &reqwest::Client, url: &str) -> Result<Duration> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok(response) = client.get(url).send().await {
            if response.status().is_success() || response.status().as_u16() == 202 {
                return Ok(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    bail!("{url} did not come up within 30 s")
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS missing from /proc status")
}

/// The latencies of one load run, sorted, and how long the run took.
struct Sample {
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Sample {
    fn new(mut latencies: Vec<Duration>, elapsed: Duration) -> Self {
        latencies.sort_unstable();
        Self { latencies, elapsed }
    }

    /// The runs together, as if they had been one.
    fn merged(samples: impl IntoIterator<Item = Sample>) -> Self {
        let mut latencies = Vec::new();
        let mut elapsed = Duration::ZERO;
        for sample in samples {
            latencies.extend(sample.latencies);
            elapsed += sample.elapsed;
        }
        Self::new(latencies, elapsed)
    }

    /// Requests completed per second.
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency at quantile `quantile` (0.5 for the median); zero for an empty run.
    fn at(&self, quantile: f64) -> Duration {
        let Some(last) = self.latencies.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        self.latencies[((self.latencies.len() as f64 * quantile) as usize).min(last)]
    }

    fn p50(&self) -> Duration {
        self.at(0.50)
    }

    fn p99(&self) -> Duration {
        self.at(0.99)
    }
}

/// Makes `total` calls of `call` (given the call's index) from `concurrency` workers;
/// each call returns its own latency, so that checking an answer is not timed. The
/// first failure ends the run.
async fn drive<F, Fut>(total: usize, concurrency: usize, call: F) -> Result<Sample>
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Duration>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.min(total))
        .map(|_| {
            let (call, next) = (call.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total {
                        break;
                    }
                    latencies.push(call(index).await?);
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    for worker in workers {
        latencies.extend(worker.await??);
    }
    Ok(Sample::new(latencies, started.elapsed()))
}

/// Sends every body as a Datadog delivery from `concurrency` workers, to the URLs in
/// turn (a load balancer's round robin); every answer must be 202.
async fn load(
    client: &reqwest::Client,
    urls: &[String],
    token: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> Result<Sample> {
    let (client, urls, token) = (
        client.clone(),
        Arc::<[String]>::from(urls),
        Arc::<str>::from(token),
    );
    drive(bodies.len(), concurrency, move |index| {
        let (client, urls, token, bodies) =
            (client.clone(), urls.clone(), token.clone(), bodies.clone());
        async move {
            let sent = Instant::now();
            let response = client
                .post(&urls[index % urls.len()])
                .header("content-type", "application/json")
                .header("x-patchbay-token", &*token)
                .body(bodies[index].clone())
                .send()
                .await?;
            let status = response.status();
            response.bytes().await?;
            let latency = sent.elapsed();
            ensure!(status.as_u16() == 202, "delivery {index} answered {status}");
            Ok(latency)
        }
    })
    .await
}

fn deliveries(fake: &FakeDatadog, first_id: u64, count: usize) -> Arc<Vec<Vec<u8>>> {
    Arc::new(
        (0..count as u64)
            .map(|offset| {
                serde_json::to_vec(&fake.sample_webhook(first_id + offset, "Triggered"))
                    .expect("payload serialises")
            })
            .collect(),
    )
}

async fn count_alerts(client: &reqwest::Client, base: &str, key: &str) -> Result<usize> {
    let mut after: Option<i64> = None;
    let mut count = 0;
    loop {
        let mut url = format!("{base}/api/alerts?limit=1000");
        if let Some(after) = after {
            url.push_str(&format!("&after={after}"));
        }
        let page: Value = client
            .get(&url)
            .bearer_auth(key)
            .send()
            .await?
            .json()
            .await?;
        let alerts = page["alerts"].as_array().context("alerts page")?;
        if alerts.is_empty() {
            return Ok(count);
        }
        count += alerts.len();
        after = page["next_cursor"].as_i64();
    }
}

pub(crate) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The HTTP client every bench sends with: no proxy, a pool as large as the load.
fn bench_client(pool: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(pool)
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// Creates an API key for `user` (in `org`, if given) with the CLI beside the data.
fn create_api_key(
    binary: &Path,
    data_dir: &Path,
    port: u16,
    user: &str,
    org: Option<&str>,
) -> Result<String> {
    create_api_key_with(patchbay_command(binary, data_dir, port, ""), user, org)
}

/// Creates an API key with `command`, a `patchbay` with the service's settings.
pub(crate) fn create_api_key_with(
    mut command: Command,
    user: &str,
    org: Option<&str>,
) -> Result<String> {
    command.args(["api-keys", "create", "--user", user]);
    if let Some(org) = org {
        command.args(["--org", org]);
    }
    let output = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    ensure!(
        output.status.success(),
        "api-keys create failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// A Datadog connection made through the API against the fake's keys: its id and webhook token.
pub(crate) async fn connect_datadog(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    label: &str,
) -> Result<(String, String)> {
    let connected: Value = client
        .post(format!("{base}/api/connections"))
        .bearer_auth(key)
        .json(&json!({
            "connector": "datadog",
            "label": label,
            "fields": { "api_key": API_KEY, "app_key": APP_KEY, "site": "datadoghq.com" }
        }))
        .send()
        .await?
        .json()
        .await?;
    let id = connected["connection"]["id"]
        .as_str()
        .with_context(|| format!("connect failed: {connected}"))?;
    let token = connected["webhook"]["token"]
        .as_str()
        .with_context(|| format!("connect answered without a webhook token: {connected}"))?;
    Ok((id.to_owned(), token.to_owned()))
}

/// Starts the bare 202 endpoint on a free port; its URL and process.
async fn start_bare_server(client: &reqwest::Client) -> Result<(String, ChildGuard)> {
    let port = free_port()?;
    let child = ChildGuard(
        Command::new(std::env::current_exe()?)
            .args(["bare-server", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_until_up(client, &url).await?;
    Ok((url, child))
}

/// How the service under the webhooks bench stores what it receives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// One replica, SQLite records, secrets in the local file.
    Sqlite,
    /// One replica, SQLite records, secrets in OpenBao (`PATCHBAY_SECRETS=vault`).
    SqliteAndVault,
    /// Two replicas sharing PostgreSQL records, behind a round robin.
    TwoReplicasOnPostgres,
}

impl Storage {
    fn describe(self) -> &'static str {
        match self {
            Storage::Sqlite => "one replica, SQLite (`synchronous=FULL`)",
            Storage::SqliteAndVault => "one replica, SQLite, `PATCHBAY_SECRETS=vault` (OpenBao)",
            Storage::TwoReplicasOnPostgres => "two replicas, PostgreSQL, round robin",
        }
    }
}

/// The services one webhooks setup runs on; they stop when this is dropped.
struct WebhookSetup {
    /// The webhook URL of each replica.
    urls: Vec<String>,
    token: String,
    /// The first replica's base URL and an API key for it.
    base: String,
    key: String,
    idle_rss_kib: u64,
    _replicas: Vec<ChildGuard>,
    _dirs: Vec<tempfile::TempDir>,
    _openbao: Option<crate::services::OpenBao>,
    _database: Option<crate::services::PostgresDatabase>,
}

async fn webhook_setup(
    storage: Storage,
    binary: &Path,
    overrides: &str,
    client: &reqwest::Client,
) -> Result<WebhookSetup> {
    // The services' helpers run a runtime of their own: off this one's workers.
    let openbao = match storage {
        Storage::SqliteAndVault => Some(tokio::task::block_in_place(|| {
            crate::services::start_openbao(&crate::services::ensure_openbao()?)
        })?),
        _ => None,
    };
    let database = match storage {
        Storage::TwoReplicasOnPostgres => Some(tokio::task::block_in_place(|| {
            crate::services::fresh_postgres_database("patchbay_bench")
        })?),
        _ => None,
    };
    let count = if storage == Storage::TwoReplicasOnPostgres {
        2
    } else {
        1
    };
    let (mut replicas, mut dirs, mut bases) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..count {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let mut command = patchbay_command(binary, dir.path(), port, overrides);
        if let Some(openbao) = &openbao {
            command
                .env("PATCHBAY_SECRETS", "vault")
                .env("VAULT_ADDR", &openbao.addr)
                .env("VAULT_TOKEN", &openbao.root_token);
        }
        if let Some(database) = &database {
            command.env("DATABASE_URL", &database.url);
        }
        replicas.push(ChildGuard(command.arg("serve").spawn()?));
        wait_for_patchbay(client, &format!("{base}/readyz"), dir.path()).await?;
        dirs.push(dir);
        bases.push(base);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = rss_kib(replicas[0].0.id())?;
    let port: u16 = bases[0].rsplit(':').next().unwrap_or_default().parse()?;
    let mut key_command = patchbay_command(binary, dirs[0].path(), port, "");
    if let Some(openbao) = &openbao {
        key_command
            .env("PATCHBAY_SECRETS", "vault")
            .env("VAULT_ADDR", &openbao.addr)
            .env("VAULT_TOKEN", &openbao.root_token);
    }
    if let Some(database) = &database {
        key_command.env("DATABASE_URL", &database.url);
    }
    let key = create_api_key_with(key_command, "bench", None)?;
    let (_, token) = connect_datadog(client, &bases[0], &key, "bench").await?;
    Ok(WebhookSetup {
        urls: bases
            .iter()
            .map(|base| format!("{base}/datadog/webhook/bench"))
            .collect(),
        token,
        base: bases[0].clone(),
        key,
        idle_rss_kib,
        _replicas: replicas,
        _dirs: dirs,
        _openbao: openbao,
        _database: database,
    })
}

async fn webhooks(levels: &[usize], requests: usize) -> Result<()> {
    let binary = patchbay_binary()?;
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let overrides = fake.override_spec();
    let client = bench_client(256)?;
    let (bare_base, _bare) = start_bare_server(&client).await?;
    let bare_url = vec![format!("{bare_base}/datadog/webhook/bench")];

    println!("\n## Webhook ingestion (release build)\n");
    println!(
        "{requests} distinct Datadog deliveries (~{} bytes each) per concurrency level and \
         setup; every delivery acknowledged only once committed. The bare 202 endpoint is \
         measured right after each row, at the same concurrency.\n",
        deliveries(&fake, 1, 1)[0].len()
    );
    println!("| setup | concurrency | patchbay deliveries/s | p50 ms | p99 ms | bare 202 endpoint req/s | p50 ms | p99 ms | rate ratio | p99 ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut next_id = 1_000_000u64;
    let mut notes = Vec::new();
    for storage in [
        Storage::Sqlite,
        Storage::SqliteAndVault,
        Storage::TwoReplicasOnPostgres,
    ] {
        let setup = webhook_setup(storage, &binary, &overrides, &client).await?;
        let warmup = 200;
        let batch = deliveries(&fake, next_id, warmup);
        next_id += warmup as u64;
        load(&client, &setup.urls, &setup.token, batch.clone(), 8).await?;
        load(&client, &bare_url, &setup.token, batch, 8).await?;
        let mut sent = warmup;
        for &concurrency in levels {
            let batch = deliveries(&fake, next_id, requests);
            next_id += requests as u64;
            let patchbay = load(
                &client,
                &setup.urls,
                &setup.token,
                batch.clone(),
                concurrency,
            )
            .await?;
            sent += requests;
            let bare = load(&client, &bare_url, &setup.token, batch, concurrency).await?;
            println!(
                "| {} | {concurrency} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
                storage.describe(),
                patchbay.rate(),
                millis(patchbay.p50()),
                millis(patchbay.p99()),
                bare.rate(),
                millis(bare.p50()),
                millis(bare.p99()),
                patchbay.rate() / bare.rate(),
                patchbay.p99().as_secs_f64() / bare.p99().as_secs_f64()
            );
        }
        let stored = count_alerts(&client, &setup.base, &setup.key).await?;
        ensure!(
            stored == sent,
            "{}: lost alerts: sent {sent}, stored {stored}",
            storage.describe()
        );
        notes.push(format!(
            "{}: {sent} acknowledged, {stored} stored; idle RSS {:.1} MiB.",
            storage.describe(),
            setup.idle_rss_kib as f64 / 1024.0
        ));
        // Dropping the database runs a runtime of its own too.
        tokio::task::block_in_place(|| drop(setup));
    }
    println!();
    for note in notes {
        println!("- {note}");
    }
    Ok(())
}
