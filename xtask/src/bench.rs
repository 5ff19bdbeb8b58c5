//! `cargo xtask bench webhooks`: webhook ingestion measured against a bare endpoint.
//! `cargo xtask bench agent`: the Kubernetes relay measured against kubectl run directly.
//!
//! The release `patchbay` binary runs on SQLite with a Datadog connection made
//! against the connector's fake; a load generator sends distinct Datadog alerts at
//! several concurrencies. The same generator then drives a bare hyper endpoint
//! that answers 202 without work, so figures are reported as ratios measured in
//! the same run on the same machine.

mod agent;

use std::convert::Infallible;
use std::path::Path;
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

use crate::{cargo, target_dir};

const API_KEY: &str = "bench-dd-api-key-0001";
const APP_KEY: &str = "bench-dd-app-key-0001";

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
        /// Use the release binary already built.
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
}

/// Runs a benchmark.
pub fn run(bench: Bench) -> Result<()> {
    match bench {
        Bench::Webhooks {
            concurrency,
            requests,
            skip_build,
        } => {
            let levels = concurrency
                .split(',')
                .map(|level| level.trim().parse::<usize>())
                .collect::<Result<Vec<_>, _>>()
                .context("--concurrency takes whole numbers separated by commas")?;
            ensure!(
                levels.iter().all(|level| *level > 0) && requests > 0,
                "concurrency levels and --requests must be positive"
            );
            if !skip_build {
                cargo(&[
                    "build",
                    "--release",
                    "--package",
                    "patchbay-host",
                    "--bin",
                    "patchbay",
                ])?;
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(webhooks(&levels, requests))
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
            if !skip_build {
                // Only the Kubernetes connector is linked: the relay is what is measured.
                cargo(&[
                    "build",
                    "--release",
                    "--package",
                    "patchbay-host",
                    "--bin",
                    "patchbay",
                    "--no-default-features",
                    "--features",
                    "connector-kubernetes",
                ])?;
                cargo(&["build", "--release", "--package", "patchbay-kubectl-agent"])?;
            }
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(agent::agent(sequential, concurrent))
        }
    }
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

fn free_port() -> Result<u16> {
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

struct LoadResult {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

/// Sends `total` requests from `concurrency` workers; every answer must be 202.
async fn load(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    bodies: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> Result<LoadResult> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token, bodies, next) = (
            client.clone(),
            url.to_owned(),
            token.to_owned(),
            bodies.clone(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(index) else {
                    break;
                };
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-patchbay-token", &token)
                    .body(body.clone())
                    .send()
                    .await?;
                let status = response.status();
                response.bytes().await?;
                ensure!(status.as_u16() == 202, "delivery {index} answered {status}");
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(bodies.len());
    for worker in workers {
        latencies.extend(worker.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Ok(LoadResult {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(0.50),
        p99: percentile(0.99),
    })
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

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

async fn webhooks(levels: &[usize], requests: usize) -> Result<()> {
    let binary = target_dir().join("release/patchbay");
    ensure!(
        binary.exists(),
        "{} is missing; run without --skip-build",
        binary.display()
    );
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let overrides = fake.override_spec();
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()?;

    // Start-up time: spawn to first healthy answer, on fresh data directories.
    let mut startups = Vec::new();
    for _ in 0..5 {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let spawned = Instant::now();
        let _child = ChildGuard(
            patchbay_command(&binary, dir.path(), port, &overrides)
                .arg("serve")
                .spawn()?,
        );
        wait_for_patchbay(
            &client,
            &format!("http://127.0.0.1:{port}/healthz"),
            dir.path(),
        )
        .await?;
        startups.push(spawned.elapsed());
    }
    startups.sort_unstable();
    let startup = startups[startups.len() / 2];

    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let child = ChildGuard(
        patchbay_command(&binary, dir.path(), port, &overrides)
            .arg("serve")
            .spawn()?,
    );
    wait_for_patchbay(&client, &format!("{base}/healthz"), dir.path()).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = rss_kib(child.0.id())?;

    let output = patchbay_command(&binary, dir.path(), port, &overrides)
        .args(["api-keys", "create", "--user", "bench"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()?;
    ensure!(output.status.success(), "api-keys create failed");
    let key = String::from_utf8(output.stdout)?.trim().to_owned();
    let connected: Value = client
        .post(format!("{base}/api/connections"))
        .bearer_auth(&key)
        .json(&json!({
            "connector": "datadog",
            "label": "bench",
            "fields": { "api_key": API_KEY, "app_key": APP_KEY, "site": "datadoghq.com" }
        }))
        .send()
        .await?
        .json()
        .await?;
    let token = connected["webhook"]["token"]
        .as_str()
        .with_context(|| format!("connect failed: {connected}"))?
        .to_owned();
    let webhook_url = format!("{base}/datadog/webhook/bench");

    let bare_port = free_port()?;
    let _bare = ChildGuard(
        Command::new(std::env::current_exe()?)
            .args(["bare-server", "--port", &bare_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let bare_url = format!("http://127.0.0.1:{bare_port}/datadog/webhook/bench");
    wait_until_up(&client, &bare_url).await?;

    let warmup = 200;
    let mut next_id = 1_000_000u64;
    let mut sent = 0usize;
    let batch = deliveries(&fake, next_id, warmup);
    next_id += warmup as u64;
    load(&client, &webhook_url, &token, batch.clone(), 8).await?;
    load(&client, &bare_url, &token, batch, 8).await?;
    sent += warmup;

    println!("\n## Webhook ingestion (release build, SQLite, synchronous=FULL)\n");
    println!(
        "{requests} distinct Datadog deliveries (~{} bytes each) per concurrency level.\n",
        deliveries(&fake, 1, 1)[0].len()
    );
    println!("| concurrency | patchbay deliveries/s | p50 ms | p99 ms | bare 202 endpoint req/s | p50 ms | p99 ms | rate ratio |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &concurrency in levels {
        let batch = deliveries(&fake, next_id, requests);
        next_id += requests as u64;
        let patchbay = load(&client, &webhook_url, &token, batch.clone(), concurrency).await?;
        sent += requests;
        let bare = load(&client, &bare_url, &token, batch, concurrency).await?;
        println!(
            "| {concurrency} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} |",
            patchbay.rate,
            millis(patchbay.p50),
            millis(patchbay.p99),
            bare.rate,
            millis(bare.p50),
            millis(bare.p99),
            patchbay.rate / bare.rate
        );
    }

    let stored = count_alerts(&client, &base, &key).await?;
    println!("\nDeliveries acknowledged: {sent}; alerts stored: {stored}.");
    println!(
        "Idle RSS of `patchbay serve`: {:.1} MiB.",
        idle_rss as f64 / 1024.0
    );
    println!(
        "Start-up to first healthy answer (median of {}): {:.0} ms.",
        startups.len(),
        millis(startup)
    );
    ensure!(stored == sent, "lost alerts: sent {sent}, stored {stored}");
    Ok(())
}
