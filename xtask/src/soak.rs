//! `cargo xtask soak`: webhook deliveries and connection changes under crashes and
//! outages, then a check that nothing was lost, doubled or left half-done.
//!
//! Two `patchbay serve` replicas share PostgreSQL (through a [`FaultProxy`])
//! and OpenBao (Raft storage on disk, through another proxy). A sender behaving like a
//! provider sends the deliveries (Datadog and PagerDuty, about 2 KB each, 5% of them
//! re-deliveries of earlier ones) from 64 workers, alternating replicas as a load
//! balancer would, and retries with backoff whatever was not answered 2xx. Meanwhile
//! workers connect, query and disconnect Datadog connections, and query a Slack
//! connection whose OAuth token expires every few seconds. Mid-run, at fixed points
//! of the deliveries, the soak SIGKILLs one replica and starts it again, cuts
//! PostgreSQL, stalls OpenBao (both replicas must stay ready: intake does not need
//! it) and restarts OpenBao.
//!
//! Afterwards: every delivery is stored exactly once (a query over the stored alerts
//! against the sender's log), every connection has its secret and, once `patchbay
//! secrets sweep` has run, every secret its connection, and the Slack connection
//! holds the newest refresh token the provider issued.

mod openbao;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use hyper::body::Bytes;
use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_connector_pagerduty::fake::{self as pagerduty, FakePagerduty};
use patchbay_connector_slack::fake::{FakeSlack, INSTALLER_USER_ID};
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fault_proxy::FaultProxy;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, Row};
use tokio::sync::watch;

use crate::bench::{self, slack};
use crate::{services, target_dir, workspace_root};
use openbao::DurableOpenBao;

/// The PagerDuty API token the fake accepts.
const PAGERDUTY_TOKEN: &str = "soak-pagerduty-token-0001";
/// The signing secret of the PagerDuty webhook subscription.
const PAGERDUTY_WEBHOOK_SECRET: &str = "soak-pagerduty-webhook-secret-0001";
/// The user whose connections receive the deliveries.
const USER: &str = "soak";
/// Sender workers: deliveries in flight at once.
const CONCURRENCY: usize = 64;
/// One delivery in this many is a re-delivery of an earlier one.
const REDELIVERY_EVERY: usize = 20;
/// A delivery not acknowledged within this long counts as lost.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(180);
/// The sender's wait for one answer before it retries.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How many of each replica's token-refresh log lines a failed soak shows.
const REFRESH_LOG_LINES: usize = 30;
/// Lifetime of the Slack access tokens the fake issues, so refreshes happen all run long.
const SLACK_TOKEN_SECS: u64 = 3;
/// The Datadog monitor the churn workers read.
const MONITOR_ID: u64 = 1001;
/// Where the figures go with `--write-docs`.
const DOCUMENT: &str = "docs/reliability.md";
const BEGIN: &str = "<!-- soak:begin -->";
const END: &str = "<!-- soak:end -->";

/// Options of `cargo xtask soak`.
#[derive(Args)]
pub struct Soak {
    /// Webhook deliveries to send (re-deliveries included).
    #[arg(long, default_value_t = 10_000)]
    deliveries: usize,
    /// Deliveries the provider sends per second, as alerts arrive: the run lasts long
    /// enough for every fault and its recovery to happen under load.
    #[arg(long, default_value_t = 250)]
    rate: u32,
    /// Run the debug `patchbay` that `cargo build -p patchbay-host` builds instead
    /// of building and running the release one.
    #[arg(long)]
    debug: bool,
    /// Replace the soak section of docs/reliability.md with this run's figures.
    #[arg(long)]
    write_docs: bool,
}

/// Runs the soak as `cargo xtask soak` was asked to.
pub fn run(options: &Soak) -> Result<()> {
    ensure!(
        options.deliveries >= 100,
        "--deliveries must be at least 100"
    );
    ensure!(options.rate > 0, "--rate must be positive");
    let binary = if options.debug {
        crate::cargo(&["build", "--package", "patchbay-host", "--bin", "patchbay"])?;
        target_dir().join("debug/patchbay")
    } else {
        bench::build_release()?;
        target_dir().join("release/patchbay")
    };
    let report = soak(&binary, options.deliveries, options.rate)?;
    println!("{report}");
    if options.write_docs {
        let path = workspace_root().join(DOCUMENT);
        let document = std::fs::read_to_string(&path)?;
        std::fs::write(
            &path,
            bench::all::replace_between(&document, DOCUMENT, BEGIN, END, &report)?,
        )?;
        eprintln!("wrote the figures into {DOCUMENT}");
    }
    Ok(())
}

/// The short soak `cargo xtask test` runs: 1,000 deliveries at 50 a second on the
/// debug binary it built.
pub fn short_run() -> Result<()> {
    let report = soak(&target_dir().join("debug/patchbay"), 1_000, 50)?;
    eprintln!("{report}");
    Ok(())
}

/// Sets everything up, runs the load with its faults, checks and reports.
fn soak(binary: &Path, deliveries: usize, rate: u32) -> Result<String> {
    let database = services::fresh_postgres_database("patchbay_soak")?;
    let bao_binary = services::ensure_openbao()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let run = Run::start(binary, &bao_binary, &database.url).await?;
            run.go(deliveries, rate).await
        })
}

/// The services, replicas and fakes of one soak.
struct Run {
    binary: PathBuf,
    work: PathBuf,
    load_at_start: String,
    database_url: String,
    env: Vec<(String, String)>,
    postgres_proxy: FaultProxy,
    vault_proxy: FaultProxy,
    bao: DurableOpenBao,
    replicas: Vec<Replica>,
    datadog: FakeDatadog,
    slack: FakeSlack,
    _pagerduty: FakePagerduty,
    http: reqwest::Client,
}

/// One `patchbay serve` process and where it listens.
struct Replica {
    base: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Replica {
    /// Where the replica's log goes, across restarts.
    fn log_path(&self) -> PathBuf {
        self.dir.join("patchbay.log")
    }

    /// What the replica has logged so far (empty if nothing yet).
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn spawn(&mut self, binary: &Path, env: &[(String, String)]) -> Result<()> {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let mut command = replica_command(binary, &self.dir, env);
        command
            .env("PATCHBAY_LISTEN", format!("127.0.0.1:{}", self.port))
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(command.spawn()?);
        Ok(())
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `patchbay` with only the soak's settings, run in `dir`.
fn replica_command(binary: &Path, dir: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(binary);
    command
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PATCHBAY_DATA_DIR", dir)
        .envs(env.iter().map(|(name, value)| (name, value)));
    command
}

impl Run {
    async fn start(binary: &Path, bao_binary: &Path, database_url: &str) -> Result<Self> {
        // Kept after the run (the replicas' and OpenBao's logs), replaced by the next one.
        let work = target_dir().join("soak");
        if work.exists() {
            std::fs::remove_dir_all(&work)
                .with_context(|| format!("removing the last soak's {}", work.display()))?;
        }
        std::fs::create_dir_all(&work)?;
        let bao = DurableOpenBao::start(bao_binary, &work.join("openbao")).await?;
        let postgres_proxy = FaultProxy::start(postgres_address(database_url)?).await?;
        let vault_proxy = FaultProxy::start(([127, 0, 0, 1], bao.port).into()).await?;
        let datadog = FakeDatadog::start(bench::API_KEY, bench::APP_KEY).await;
        let pagerduty = FakePagerduty::start(PAGERDUTY_TOKEN).await;
        let slack = FakeSlack::start(slack::BOT_TOKEN).await;
        slack.enable_rotation(SLACK_TOKEN_SECS);

        let ports = [bench::free_port()?, bench::free_port()?];
        let public_url = format!("http://127.0.0.1:{}", ports[0]);
        let mut slack_settings = Command::new("patchbay");
        slack::enable_slack(&mut slack_settings);
        let mut env: Vec<(String, String)> = slack_settings
            .get_envs()
            .filter_map(|(name, value)| {
                Some((name.to_str()?.to_owned(), value?.to_str()?.to_owned()))
            })
            .collect();
        let database_name = database_url.rsplit('/').next().unwrap_or_default();
        env.extend(
            [
                (
                    "DATABASE_URL",
                    format!(
                        "postgres://postgres@127.0.0.1:{}/{database_name}",
                        postgres_proxy.address().port()
                    ),
                ),
                ("PATCHBAY_SECRETS", "vault".to_owned()),
                (
                    "VAULT_ADDR",
                    format!("http://127.0.0.1:{}", vault_proxy.address().port()),
                ),
                ("VAULT_TOKEN", bao.root_token.clone()),
                ("PATCHBAY_PUBLIC_URL", public_url),
                (
                    "PATCHBAY_UPSTREAM_OVERRIDES",
                    format!(
                        "{},{},{}",
                        datadog.override_spec(),
                        pagerduty.override_spec(),
                        slack.override_spec()
                    ),
                ),
                // Refresh just before expiry, so the short-lived Slack tokens are
                // refreshed again and again during the run.
                ("PATCHBAY_OAUTH_REFRESH_SKEW_SECS", "1".to_owned()),
                ("PATCHBAY_LOG", "warn,patchbay_oauth=info".to_owned()),
            ]
            .map(|(name, value)| (name.to_owned(), value)),
        );

        let mut run = Self {
            binary: binary.to_owned(),
            database_url: database_url.to_owned(),
            env,
            postgres_proxy,
            vault_proxy,
            bao,
            replicas: Vec::new(),
            datadog,
            slack,
            _pagerduty: pagerduty,
            http: reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(CONCURRENCY * 2)
                .timeout(ANSWER_TIMEOUT)
                .build()?,
            work,
            load_at_start: load_average(),
        };
        for (index, port) in ports.into_iter().enumerate() {
            let dir = run.work.join(format!("replica-{}", index + 1));
            std::fs::create_dir_all(&dir)?;
            let mut replica = Replica {
                base: format!("http://127.0.0.1:{port}"),
                port,
                dir,
                child: None,
            };
            replica.spawn(&run.binary, &run.env)?;
            run.wait_until_ready(&replica).await?;
            run.replicas.push(replica);
        }
        Ok(run)
    }

    /// Waits until a replica answers `/readyz` with 200, showing its log if it never does.
    async fn wait_until_ready(&self, replica: &Replica) -> Result<Duration> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self
                .http
                .get(format!("{}/readyz", replica.base))
                .send()
                .await
                .is_ok_and(|answer| answer.status() == 200)
            {
                return Ok(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = replica.log();
        bail!(
            "{} was not ready within 60 s; its log:\n{log}",
            replica.base
        )
    }

    async fn go(mut self, total: usize, rate: u32) -> Result<String> {
        let key = bench::create_api_key_with(
            replica_command(&self.binary, &self.work, &self.env),
            USER,
            None,
        )?;
        let bases: Arc<Vec<String>> =
            Arc::new(self.replicas.iter().map(|r| r.base.clone()).collect());
        let (_, datadog_token) =
            bench::connect_datadog(&self.http, &bases[0], &key, "soak-webhooks").await?;
        let connected: Value = self
            .http
            .post(format!("{}/api/connections", bases[0]))
            .bearer_auth(&key)
            .json(&json!({
                "connector": "pagerduty",
                "label": "soak-webhooks",
                "fields": { "api_token": PAGERDUTY_TOKEN, "webhook_secret": PAGERDUTY_WEBHOOK_SECRET }
            }))
            .send()
            .await?
            .json()
            .await?;
        ensure!(
            connected["connection"]["id"].is_string(),
            "connecting PagerDuty failed: {connected}"
        );
        let slack_connection = slack::install(&bases[0], &key, &self.slack).await?;

        let plan = Arc::new(plan_deliveries(&self.datadog, &datadog_token, total));
        let log = Arc::new(SenderLog::default());
        let gates = Gates::new(total);
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();

        let churn: Vec<_> = (0..2)
            .map(|worker| {
                tokio::spawn(churn_datadog(
                    self.http.clone(),
                    bases.clone(),
                    key.clone(),
                    worker,
                    stop.clone(),
                ))
            })
            .collect();
        let slack_queries: Vec<_> = (0..2)
            .map(|worker| {
                tokio::spawn(query_slack(
                    self.http.clone(),
                    bases.clone(),
                    key.clone(),
                    slack_connection.clone(),
                    worker,
                    stop.clone(),
                ))
            })
            .collect();
        let sender = tokio::spawn(send_all(
            self.http.clone(),
            bases.clone(),
            plan.clone(),
            log.clone(),
            gates.clone(),
            rate,
        ));
        let faults = self.inject_faults(&gates, &log, &bases, &key).await;
        // Whatever the faults did, let the sender finish before judging.
        let sent = sender.await?;
        stop.store(true, Ordering::SeqCst);
        let mut churn_log = ActivityLog::default();
        for worker in churn {
            churn_log.merge(worker.await?);
        }
        let mut slack_log = ActivityLog::default();
        for worker in slack_queries {
            slack_log.merge(worker.await?);
        }
        let faults = faults?;
        sent?;
        let elapsed = started.elapsed();

        let alerts = self.check_alerts(&plan, &log).await?;
        let secrets = self.check_secrets().await?;
        let slack = self.check_slack(&bases, &key, &slack_connection).await?;

        let mut report = String::new();
        self.write_report(
            &mut report,
            &Figures {
                total,
                rate,
                plan: &plan,
                log: &log,
                faults: &faults,
                churn: &churn_log,
                slack_queries: &slack_log,
                alerts: &alerts,
                secrets: &secrets,
                slack: &slack,
                elapsed,
            },
        )?;
        Ok(report)
    }
}

/// One webhook delivery as the provider would send it.
struct Delivery {
    /// The delivery this one repeats, or its own index.
    original: usize,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

/// The deliveries in sending order: Datadog and PagerDuty alternately, each about
/// 2 KB and marked with its delivery number; every [`REDELIVERY_EVERY`]th one
/// repeats an earlier delivery byte for byte.
fn plan_deliveries(datadog: &FakeDatadog, datadog_token: &str, total: usize) -> Vec<Delivery> {
    let mut plan: Vec<Delivery> = Vec::with_capacity(total);
    let mut originals = Vec::new();
    for index in 0..total {
        if index % REDELIVERY_EVERY == REDELIVERY_EVERY - 1 {
            // An original from up to about 200 deliveries back: often still in flight.
            let original = originals[originals.len() - 1 - (index * 7) % originals.len().min(200)];
            let repeated = Delivery {
                original,
                path: plan[original].path,
                headers: plan[original].headers.clone(),
                body: plan[original].body.clone(),
            };
            plan.push(repeated);
            continue;
        }
        originals.push(index);
        let marker = format!("soak-{index}");
        let delivery = if index % 2 == 0 {
            let mut payload = datadog.sample_webhook(1_000_000 + index as u64, "Triggered");
            payload["soak_delivery"] = json!(marker);
            Delivery {
                original: index,
                path: "/datadog/webhook/soak",
                headers: vec![("x-patchbay-token", datadog_token.to_owned())],
                body: Bytes::from(payload.to_string()),
            }
        } else {
            let mut payload = pagerduty::sample_payload(
                &format!("01SOAKEVENT{index:08}"),
                "incident.triggered",
                &format!("PSOAK{index:06}"),
            );
            payload["soak_delivery"] = json!(marker);
            // The size of a real incident event with its description.
            payload["event"]["data"]["description"] =
                json!("Checkout latency above SLO. ".repeat(24));
            let body = payload.to_string();
            Delivery {
                original: index,
                path: "/pagerduty/webhook/soak",
                headers: vec![
                    ("x-webhook-id", format!("soak-webhook-{index}")),
                    (
                        "x-pagerduty-signature",
                        pagerduty::signature(PAGERDUTY_WEBHOOK_SECRET, body.as_bytes()),
                    ),
                ],
                body: Bytes::from(body),
            }
        };
        plan.push(delivery);
    }
    plan
}

/// What the sender saw.
#[derive(Default)]
struct SenderLog {
    /// Per delivery: when it was acknowledged, by which replica, after how many attempts.
    acks: Mutex<Vec<Option<Ack>>>,
    /// Failed attempts by kind (`refused`, `timeout`, `HTTP 503`...).
    errors: Mutex<BTreeMap<String, usize>>,
    /// Deliveries that needed more than one attempt.
    retried: AtomicUsize,
}

#[derive(Clone, Copy)]
struct Ack {
    at: Instant,
    replica: usize,
}

impl SenderLog {
    fn acknowledged(&self) -> usize {
        self.acks.lock().expect("log").iter().flatten().count()
    }

    /// The first acknowledgement at or after `after`, by `replica` if given.
    fn first_ack_after(&self, after: Instant, replica: Option<usize>) -> Option<Duration> {
        self.acks
            .lock()
            .expect("log")
            .iter()
            .flatten()
            .filter(|ack| ack.at >= after && replica.is_none_or(|r| r == ack.replica))
            .map(|ack| ack.at - after)
            .min()
    }

    fn acks_between(&self, from: Instant, to: Instant) -> usize {
        self.acks
            .lock()
            .expect("log")
            .iter()
            .flatten()
            .filter(|ack| ack.at >= from && ack.at < to)
            .count()
    }
}

/// The points in the sending order where the faults start: a delivery past a gate
/// waits until that gate's fault has been injected, so each fault lands mid-load
/// however fast the replicas are.
#[derive(Clone)]
struct Gates {
    points: Arc<Vec<usize>>,
    opened: watch::Sender<usize>,
    next: Arc<AtomicUsize>,
}

impl Gates {
    fn new(total: usize) -> Self {
        Self {
            points: Arc::new(
                [0.15, 0.35, 0.55, 0.75]
                    .iter()
                    .map(|share| (total as f64 * share) as usize)
                    .collect(),
            ),
            opened: watch::channel(0).0,
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The next delivery to send, once the faults before it have been injected.
    async fn take(&self) -> usize {
        let index = self.next.fetch_add(1, Ordering::SeqCst);
        let before = self.points.iter().filter(|point| **point <= index).count();
        let mut opened = self.opened.subscribe();
        let _ = opened.wait_for(|opened| *opened >= before).await;
        index
    }

    /// Waits until the sender has reached gate `gate`.
    async fn reached(&self, gate: usize) {
        while self.next.load(Ordering::SeqCst) <= self.points[gate] {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn open(&self, gate: usize) {
        self.opened.send_replace(gate + 1);
    }
}

/// Sends every planned delivery from [`CONCURRENCY`] workers, delivery `i` no sooner
/// than `i / rate` seconds after the start; fails when one was not acknowledged
/// within [`DELIVERY_DEADLINE`].
async fn send_all(
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    plan: Arc<Vec<Delivery>>,
    log: Arc<SenderLog>,
    gates: Gates,
    rate: u32,
) -> Result<()> {
    *log.acks.lock().expect("log") = vec![None; plan.len()];
    let start = tokio::time::Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (http, bases, plan, log, gates) = (
                http.clone(),
                bases.clone(),
                plan.clone(),
                log.clone(),
                gates.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let index = gates.take().await;
                    let Some(delivery) = plan.get(index) else {
                        return anyhow::Ok(());
                    };
                    tokio::time::sleep_until(start + Duration::from_secs(1) * index as u32 / rate)
                        .await;
                    deliver(&http, &bases, index, delivery, &log).await?;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await??;
    }
    Ok(())
}

/// Sends one delivery until a replica acknowledges it, as a provider retries:
/// exponential backoff with jitter, `Retry-After` honoured (up to 5 s), the next
/// attempt to the other replica.
async fn deliver(
    http: &reqwest::Client,
    bases: &[String],
    index: usize,
    delivery: &Delivery,
    log: &SenderLog,
) -> Result<()> {
    let started = Instant::now();
    for attempt in 0u32.. {
        let replica = (index + attempt as usize) % bases.len();
        let mut request = http
            .post(format!("{}{}", bases[replica], delivery.path))
            .header("content-type", "application/json")
            .body(delivery.body.clone());
        for (name, value) in &delivery.headers {
            request = request.header(*name, value);
        }
        let mut retry_after = None;
        let failure = match request.send().await {
            Ok(answer) if answer.status().is_success() => {
                log.acks.lock().expect("log")[index] = Some(Ack {
                    at: Instant::now(),
                    replica,
                });
                if attempt > 0 {
                    log.retried.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
            Ok(answer) => {
                retry_after = answer
                    .headers()
                    .get("retry-after")
                    .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
                    .map(|seconds| Duration::from_secs(seconds.min(5)));
                let status = answer.status();
                if status.is_client_error() && status != 429 && status != 408 {
                    let text = answer.text().await.unwrap_or_default();
                    bail!("delivery {index} was refused with {status}: {text}");
                }
                format!("HTTP {}", status.as_u16())
            }
            Err(error) => error_kind(&error).to_owned(),
        };
        *log.errors.lock().expect("log").entry(failure).or_default() += 1;
        ensure!(
            started.elapsed() < DELIVERY_DEADLINE,
            "delivery {index} was not acknowledged within {} s",
            DELIVERY_DEADLINE.as_secs()
        );
        let backoff = Duration::from_millis(50 << attempt.min(5)).min(Duration::from_secs(2));
        let jitter = 0.5 + rand::random::<f64>() / 2.0;
        tokio::time::sleep(retry_after.unwrap_or(backoff.mul_f64(jitter))).await;
    }
    unreachable!("the attempts never run out")
}

fn error_kind(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "no answer (timeout)"
    } else if error.is_connect() {
        "connection refused"
    } else {
        "connection closed"
    }
}

/// When each fault began and ended, and what was seen meanwhile.
struct FaultTimes {
    replica_killed_at: Instant,
    replica_ready_after: Duration,
    postgres_cut_at: Instant,
    postgres_restored_at: Instant,
    vault_stalled_at: Instant,
    vault_unstalled_at: Instant,
    /// `/readyz` answers during the stall: (200s, all).
    ready_during_stall: (usize, usize),
    vault_killed_at: Instant,
    vault_restarted_at: Instant,
    /// From OpenBao serving again to the first connect that succeeded.
    connect_after_vault_restart: Option<Duration>,
}

impl Run {
    /// Injects the four faults as the sender reaches each gate.
    async fn inject_faults(
        &mut self,
        gates: &Gates,
        log: &SenderLog,
        bases: &[String],
        key: &str,
    ) -> Result<FaultTimes> {
        let result = self.inject_faults_in_order(gates, log, bases, key).await;
        // However injecting went, open every gate so the sender can finish.
        gates.open(gates.points.len() - 1);
        result
    }

    /// Each fault, then a wait (bounded) until the service has recovered from it, so
    /// the recovery figures do not overlap the next fault.
    async fn inject_faults_in_order(
        &mut self,
        gates: &Gates,
        log: &SenderLog,
        bases: &[String],
        key: &str,
    ) -> Result<FaultTimes> {
        gates.reached(0).await;
        let replica_killed_at = Instant::now();
        self.replicas[1].kill();
        gates.open(0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (binary, env) = (self.binary.clone(), self.env.clone());
        self.replicas[1].spawn(&binary, &env)?;
        let replica_ready_after = self.wait_until_ready(&self.replicas[1]).await?;
        wait_for_ack(log, replica_killed_at, Some(1)).await;

        gates.reached(1).await;
        let postgres_cut_at = Instant::now();
        self.postgres_proxy.cut();
        gates.open(1);
        tokio::time::sleep(Duration::from_secs(3)).await;
        self.postgres_proxy.restore();
        let postgres_restored_at = Instant::now();
        wait_for_ack(log, postgres_restored_at, None).await;

        gates.reached(2).await;
        let vault_stalled_at = Instant::now();
        self.vault_proxy.stall();
        gates.open(2);
        let mut ready_during_stall = (0, 0);
        while vault_stalled_at.elapsed() < Duration::from_secs(4) {
            for base in bases {
                // Within Kubernetes' default probe timeout.
                let ready = self
                    .http
                    .get(format!("{base}/readyz"))
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .is_ok_and(|answer| answer.status() == 200);
                ready_during_stall.0 += usize::from(ready);
                ready_during_stall.1 += 1;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.vault_proxy.restore();
        let vault_unstalled_at = Instant::now();

        gates.reached(3).await;
        let vault_killed_at = Instant::now();
        gates.open(3);
        self.bao.restart().await?;
        let vault_restarted_at = Instant::now();
        let connect_after_vault_restart = self.probe_connect(&bases[0], key).await;

        Ok(FaultTimes {
            replica_killed_at,
            replica_ready_after,
            postgres_cut_at,
            postgres_restored_at,
            vault_stalled_at,
            vault_unstalled_at,
            ready_during_stall,
            vault_killed_at,
            vault_restarted_at,
            connect_after_vault_restart,
        })
    }

    /// Connects (and disconnects) a Datadog connection every 100 ms until one connect
    /// succeeds, for up to 30 s; how long that took.
    async fn probe_connect(&self, base: &str, key: &str) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok((id, _)) = bench::connect_datadog(&self.http, base, key, "probe").await {
                let took = started.elapsed();
                let _ = self
                    .http
                    .delete(format!("{base}/api/connections/{id}"))
                    .bearer_auth(key)
                    .send()
                    .await;
                return Some(took);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }
}

/// Waits (up to 10 s) until a delivery is acknowledged after `after`, by `replica`
/// if given.
async fn wait_for_ack(log: &SenderLog, after: Instant, replica: Option<usize>) {
    let started = Instant::now();
    while log.first_ack_after(after, replica).is_none()
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Outcomes of one kind of background activity, by step and outcome.
#[derive(Default)]
struct ActivityLog {
    outcomes: BTreeMap<(&'static str, String), usize>,
}

impl ActivityLog {
    fn record(&mut self, step: &'static str, outcome: Result<u16, &'static str>) {
        let text = match outcome {
            Ok(status) if (200..300).contains(&status) => "ok".to_owned(),
            Ok(status) => format!("HTTP {status}"),
            Err(kind) => kind.to_owned(),
        };
        *self.outcomes.entry((step, text)).or_default() += 1;
    }

    fn merge(&mut self, other: ActivityLog) {
        for (key, count) in other.outcomes {
            *self.outcomes.entry(key).or_default() += count;
        }
    }

    fn count(&self, step: &str, outcome: &str) -> usize {
        self.outcomes
            .iter()
            .filter(|((s, o), _)| *s == step && o == outcome)
            .map(|(_, count)| count)
            .sum()
    }

    /// `step: ok n, HTTP 503 m, …`
    fn describe(&self, step: &str) -> String {
        self.outcomes
            .iter()
            .filter(|((s, _), _)| *s == step)
            .map(|((_, outcome), count)| format!("{outcome} {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn outcome(result: &reqwest::Result<reqwest::Response>) -> Result<u16, &'static str> {
    match result {
        Ok(answer) => Ok(answer.status().as_u16()),
        Err(error) => Err(error_kind(error)),
    }
}

/// Connects a Datadog connection, reads a monitor through it and disconnects it,
/// over and over on alternating replicas, until told to stop. A disconnect that
/// fails is tried again (up to 30 times), as a person would.
async fn churn_datadog(
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    key: String,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> ActivityLog {
    let mut log = ActivityLog::default();
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let base = &bases[(worker + round) % bases.len()];
        let connected = http
            .post(format!("{base}/api/connections"))
            .bearer_auth(&key)
            .json(&json!({
                "connector": "datadog",
                "label": format!("churn-{worker}-{round}"),
                "fields": { "api_key": bench::API_KEY, "app_key": bench::APP_KEY, "site": "datadoghq.com" }
            }))
            .send()
            .await;
        log.record("connect", outcome(&connected));
        let id = match connected {
            Ok(answer) if answer.status() == 201 => answer
                .json::<Value>()
                .await
                .ok()
                .and_then(|body| body["connection"]["id"].as_str().map(str::to_owned)),
            _ => None,
        };
        let Some(id) = id else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let queried = http
            .post(format!("{base}/api/connections/{id}/query/get_monitor"))
            .bearer_auth(&key)
            .json(&json!({ "monitor_id": MONITOR_ID }))
            .send()
            .await;
        log.record("query", outcome(&queried));
        for attempt in 0..30 {
            let base = &bases[(worker + round + attempt) % bases.len()];
            let deleted = http
                .delete(format!("{base}/api/connections/{id}"))
                .bearer_auth(&key)
                .send()
                .await;
            let result = outcome(&deleted);
            log.record("disconnect", result);
            if matches!(result, Ok(status) if (200..300).contains(&status) || status == 404) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    log
}

/// Reads a Slack user through the Slack connection on alternating replicas until
/// told to stop; its token expires every [`SLACK_TOKEN_SECS`], so these queries
/// keep refreshing it across both replicas.
async fn query_slack(
    http: reqwest::Client,
    bases: Arc<Vec<String>>,
    key: String,
    connection: String,
    worker: usize,
    stop: Arc<AtomicBool>,
) -> ActivityLog {
    let mut log = ActivityLog::default();
    let mut round = 0usize;
    while !stop.load(Ordering::SeqCst) {
        round += 1;
        let base = &bases[(worker + round) % bases.len()];
        let queried = http
            .post(format!(
                "{base}/api/connections/{connection}/query/get_user"
            ))
            .bearer_auth(&key)
            .json(&json!({ "user": INSTALLER_USER_ID }))
            .send()
            .await;
        log.record("query", outcome(&queried));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log
}

/// The stored alerts against the sender's log.
struct AlertCheck {
    distinct: usize,
    stored_rows: usize,
    lost: Vec<usize>,
    duplicated: Vec<String>,
}

/// What the secret store held against the records.
struct SecretCheck {
    connections: usize,
    without_secret: Vec<String>,
    orphans_before_sweep: usize,
    swept: usize,
    orphans_after_sweep: usize,
}

/// The Slack connection after the run.
struct SlackCheck {
    refreshes: usize,
    holds_newest: bool,
    query_after: u16,
}

impl Run {
    async fn check_alerts(&self, plan: &[Delivery], log: &SenderLog) -> Result<AlertCheck> {
        ensure!(
            log.acknowledged() == plan.len(),
            "only {} of {} deliveries were acknowledged",
            log.acknowledged(),
            plan.len()
        );
        let mut database = PgConnection::connect(&self.database_url).await?;
        let rows = sqlx::query(
            "SELECT raw->>'soak_delivery' AS delivery, count(*) AS copies FROM alerts GROUP BY 1",
        )
        .fetch_all(&mut database)
        .await?;
        let mut stored: HashMap<String, i64> = HashMap::new();
        let mut stored_rows = 0;
        for row in rows {
            let delivery: Option<String> = row.try_get("delivery")?;
            let copies: i64 = row.try_get("copies")?;
            stored_rows += copies as usize;
            stored.insert(delivery.unwrap_or_else(|| "(unmarked)".to_owned()), copies);
        }
        let originals: HashSet<usize> = plan.iter().map(|delivery| delivery.original).collect();
        let lost: Vec<usize> = originals
            .iter()
            .copied()
            .filter(|index| !stored.contains_key(&format!("soak-{index}")))
            .collect();
        let duplicated: Vec<String> = stored
            .iter()
            .filter(|(_, copies)| **copies > 1)
            .map(|(delivery, _)| delivery.clone())
            .collect();
        Ok(AlertCheck {
            distinct: originals.len(),
            stored_rows,
            lost,
            duplicated,
        })
    }

    /// Secret references of the connections, and the paths of the secrets in OpenBao.
    async fn secrets_and_records(&self) -> Result<(Vec<(String, String)>, HashSet<String>)> {
        let mut database = PgConnection::connect(&self.database_url).await?;
        let records: Vec<(String, String)> =
            sqlx::query_as("SELECT id, secret_ref FROM connections")
                .fetch_all(&mut database)
                .await?;
        let secrets: HashSet<String> = self
            .bao
            .list_secrets("tenants")
            .await?
            .into_iter()
            .map(|path| format!("vault:patchbay/{path}"))
            .collect();
        Ok((records, secrets))
    }

    async fn check_secrets(&self) -> Result<SecretCheck> {
        let (records, secrets) = self.secrets_and_records().await?;
        let referenced: HashSet<&String> = records.iter().map(|(_, secret)| secret).collect();
        let orphans_before_sweep = secrets.iter().filter(|s| !referenced.contains(s)).count();

        let swept = replica_command(&self.binary, &self.work, &self.env)
            .args(["secrets", "sweep", "--grace-secs", "0"])
            .stderr(Stdio::inherit())
            .output()?;
        ensure!(swept.status.success(), "patchbay secrets sweep failed");
        let swept = String::from_utf8_lossy(&swept.stdout)
            .lines()
            .filter(|line| line.starts_with("removed "))
            .count();

        let (records, secrets) = self.secrets_and_records().await?;
        let referenced: HashSet<&String> = records.iter().map(|(_, secret)| secret).collect();
        let mut without_secret = Vec::new();
        for (id, reference) in &records {
            let path = reference
                .strip_prefix("vault:patchbay/")
                .with_context(|| format!("connection {id} has secret {reference} outside Vault"))?;
            if !secrets.contains(reference) || self.bao.read_secret(path).await?.is_none() {
                without_secret.push(id.clone());
            }
        }
        Ok(SecretCheck {
            connections: records.len(),
            without_secret,
            orphans_before_sweep,
            swept,
            orphans_after_sweep: secrets.iter().filter(|s| !referenced.contains(s)).count(),
        })
    }

    async fn check_slack(
        &self,
        bases: &[String],
        key: &str,
        connection: &str,
    ) -> Result<SlackCheck> {
        let mut database = PgConnection::connect(&self.database_url).await?;
        let reference: String =
            sqlx::query_scalar("SELECT secret_ref FROM connections WHERE id = $1")
                .bind(connection)
                .fetch_one(&mut database)
                .await
                .context("the Slack connection is gone")?;
        let path = reference
            .strip_prefix("vault:patchbay/")
            .unwrap_or(&reference);
        let secrets = self
            .bao
            .read_secret(path)
            .await?
            .context("the Slack connection has no secret")?;
        let held = secrets["refresh_token"].as_str().unwrap_or_default();
        let newest = self.slack.newest_refresh_token();
        let query_after = self
            .http
            .post(format!(
                "{}/api/connections/{connection}/query/get_user",
                bases[0]
            ))
            .bearer_auth(key)
            .json(&json!({ "user": INSTALLER_USER_ID }))
            .send()
            .await?
            .status()
            .as_u16();
        Ok(SlackCheck {
            refreshes: self.slack.token_requests().saturating_sub(1),
            holds_newest: newest.as_deref() == Some(held),
            query_after,
        })
    }
}

/// Everything the report shows.
struct Figures<'a> {
    total: usize,
    rate: u32,
    plan: &'a [Delivery],
    log: &'a SenderLog,
    faults: &'a FaultTimes,
    churn: &'a ActivityLog,
    slack_queries: &'a ActivityLog,
    alerts: &'a AlertCheck,
    secrets: &'a SecretCheck,
    slack: &'a SlackCheck,
    elapsed: Duration,
}

fn seconds(duration: Option<Duration>) -> String {
    duration.map_or_else(
        || "never".to_owned(),
        |d| format!("{:.2} s", d.as_secs_f64()),
    )
}

impl Run {
    /// Writes the report as Markdown and fails if any check failed.
    fn write_report(&self, out: &mut String, figures: &Figures<'_>) -> Result<()> {
        let Figures {
            total,
            rate,
            plan,
            log,
            faults,
            churn,
            slack_queries,
            alerts,
            secrets,
            slack,
            elapsed,
        } = figures;
        let redeliveries = plan
            .iter()
            .enumerate()
            .filter(|(i, d)| d.original != *i)
            .count();
        let binary = if self.binary.ends_with("release/patchbay") {
            "release"
        } else {
            "debug"
        };
        writeln!(
            out,
            "### Soak: {total} deliveries under faults ({binary} build)\n"
        )?;
        writeln!(
            out,
            "Run {} at commit {}, on {} cores; load average {} when it began.\n",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            git_commit().unwrap_or_else(|| "unknown".to_owned()),
            std::thread::available_parallelism().map_or(0, usize::from),
            self.load_at_start
        )?;
        writeln!(
            out,
            "Two replicas on PostgreSQL and OpenBao (Raft storage on disk); {rate} deliveries a \
             second, at most {CONCURRENCY} in flight; {redeliveries} re-deliveries; run time {:.1} s.\n",
            elapsed.as_secs_f64()
        )?;
        writeln!(out, "| | |\n|---|---:|")?;
        writeln!(
            out,
            "| deliveries acknowledged | {} of {total} |",
            log.acknowledged()
        )?;
        writeln!(
            out,
            "| deliveries that needed a retry | {} |",
            log.retried.load(Ordering::Relaxed)
        )?;
        for (kind, count) in log.errors.lock().expect("log").iter() {
            writeln!(out, "| failed attempts: {kind} | {count} |")?;
        }
        writeln!(out, "| distinct alerts sent | {} |", alerts.distinct)?;
        writeln!(out, "| alerts stored | {} |", alerts.stored_rows)?;
        writeln!(out, "| lost | {} |", alerts.lost.len())?;
        writeln!(out, "| duplicated | {} |", alerts.duplicated.len())?;
        writeln!(out, "\n| fault | recovery |\n|---|---|")?;
        writeln!(
            out,
            "| SIGKILL of replica 2, restarted 1 s later | ready {:.2} s after the restart; its first \
             acknowledgement {} after the kill |",
            faults.replica_ready_after.as_secs_f64(),
            seconds(log.first_ack_after(faults.replica_killed_at, Some(1)))
        )?;
        writeln!(
            out,
            "| PostgreSQL cut for {:.1} s | first acknowledgement {} after it came back |",
            (faults.postgres_restored_at - faults.postgres_cut_at).as_secs_f64(),
            seconds(log.first_ack_after(faults.postgres_restored_at, None))
        )?;
        writeln!(
            out,
            "| OpenBao stalled for {:.1} s | `/readyz` 200 within 1 s in {} of {} polls; {} \
             deliveries acknowledged during the stall |",
            (faults.vault_unstalled_at - faults.vault_stalled_at).as_secs_f64(),
            faults.ready_during_stall.0,
            faults.ready_during_stall.1,
            log.acks_between(faults.vault_stalled_at, faults.vault_unstalled_at)
        )?;
        writeln!(
            out,
            "| OpenBao killed and restarted (serving {:.2} s after the kill) | first connect {} \
             after it was back |",
            (faults.vault_restarted_at - faults.vault_killed_at).as_secs_f64(),
            seconds(faults.connect_after_vault_restart)
        )?;
        writeln!(out, "\n| connections under the faults | |\n|---|---|")?;
        for step in ["connect", "query", "disconnect"] {
            writeln!(out, "| Datadog {step} | {} |", churn.describe(step))?;
        }
        writeln!(
            out,
            "| Slack queries (token refreshed every {SLACK_TOKEN_SECS} s) | {} |",
            slack_queries.describe("query")
        )?;
        writeln!(out, "| Slack token refreshes | {} |", slack.refreshes)?;
        writeln!(
            out,
            "| connections at the end / without their secret | {} / {} |",
            secrets.connections,
            secrets.without_secret.len()
        )?;
        writeln!(
            out,
            "| secrets without a connection: before the sweep / removed by it / after | {} / {} / {} |",
            secrets.orphans_before_sweep, secrets.swept, secrets.orphans_after_sweep
        )?;
        writeln!(
            out,
            "| Slack connection holds the newest refresh token issued | {} (query afterwards: HTTP {}) |",
            if slack.holds_newest { "yes" } else { "no" },
            slack.query_after
        )?;

        let mut failures = Vec::new();
        if !alerts.lost.is_empty() {
            failures.push(format!(
                "{} deliveries lost (first: soak-{})",
                alerts.lost.len(),
                alerts.lost[0]
            ));
        }
        if !alerts.duplicated.is_empty() {
            failures.push(format!(
                "{} deliveries stored more than once: {:?}",
                alerts.duplicated.len(),
                &alerts.duplicated[..alerts.duplicated.len().min(5)]
            ));
        }
        if alerts.stored_rows != alerts.distinct {
            failures.push(format!(
                "{} alerts stored for {} distinct deliveries",
                alerts.stored_rows, alerts.distinct
            ));
        }
        if faults.ready_during_stall.0 != faults.ready_during_stall.1 {
            failures.push("a replica was not ready while OpenBao stalled".to_owned());
        }
        if !secrets.without_secret.is_empty() {
            failures.push(format!(
                "connections without their secret: {:?}",
                secrets.without_secret
            ));
        }
        if secrets.orphans_after_sweep != 0 {
            failures.push(format!(
                "{} secrets without a connection after the sweep",
                secrets.orphans_after_sweep
            ));
        }
        if !slack.holds_newest || slack.query_after != 200 {
            failures.push("the Slack connection does not hold the newest refresh token".to_owned());
        }
        if churn.count("connect", "ok") == 0 || slack_queries.count("query", "ok") == 0 {
            failures.push("the connection workers never succeeded".to_owned());
        }
        if failures.is_empty() {
            Ok(())
        } else {
            bail!(
                "the soak failed:\n- {}\n\n{out}\n{}",
                failures.join("\n- "),
                self.refresh_log()
            )
        }
    }

    /// The replicas' log lines about token refreshes (the last few of each), so a
    /// failed refresh check can be read from the soak's own output.
    fn refresh_log(&self) -> String {
        let mut out = String::new();
        for replica in &self.replicas {
            let log = replica.log();
            let lines: Vec<&str> = log
                .lines()
                .filter(|line| line.contains("refresh"))
                .collect();
            let _ = writeln!(
                out,
                "token refreshes in {} (last {} of {}):",
                replica.dir.display(),
                lines.len().min(REFRESH_LOG_LINES),
                lines.len()
            );
            for line in &lines[lines.len().saturating_sub(REFRESH_LOG_LINES)..] {
                let _ = writeln!(out, "  {line}");
            }
        }
        out
    }
}

/// The checked-out commit, abbreviated.
fn git_commit() -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(workspace_root())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The 1, 5 and 15-minute load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// Where the database URL's server listens.
fn postgres_address(url: &str) -> Result<std::net::SocketAddr> {
    let parsed = reqwest::Url::parse(url).context("the database URL")?;
    let host = parsed.host_str().context("the database URL has no host")?;
    let port = parsed.port().unwrap_or(5432);
    let address = format!("{host}:{port}");
    std::net::ToSocketAddrs::to_socket_addrs(&address)?
        .next()
        .with_context(|| format!("{address} does not resolve"))
}
