//! `cargo xtask bench query`: the time Patchbay adds to a provider call.
//!
//! One read runs two ways in the same run, for a token connector (Datadog's
//! `get_monitor`) and an OAuth connector with a cached token (Slack's `get_user`):
//! through `POST /api/connections/{id}/query/{operation}` on the release binary, and
//! as the request the connector sends, made by the bench straight to the same fake.
//! The paths alternate in short runs so both see the same machine. A bare hyper
//! endpoint answering the API request gives the cost of the extra loopback hop alone,
//! and an authenticated read of the connection the API's own floor.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use hyper::body::Bytes;
use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_connector_slack::fake::{FakeSlack, INSTALLER_USER_ID};
use patchbay_testkit::fake_server::ProviderFake;
use reqwest::Method;
use serde_json::json;

use super::{
    bench_client, connect_datadog, create_api_key, drive, free_port, millis, patchbay_binary,
    patchbay_command, slack, start_bare_server, wait_for_patchbay, ChildGuard, Sample, API_KEY,
    APP_KEY,
};

/// Runs per path in which the requests of one concurrency level are split, alternating.
const ROUNDS: usize = 10;

/// Requests per path before measuring, at each concurrency level.
const WARM_UP: usize = 100;

/// The added time at p50 the query path should stay under.
const GOAL_ADDED_P50_MS: f64 = 0.5;

/// The Datadog monitor `get_monitor` reads (one of the fake's).
const MONITOR_ID: u64 = 1001;

/// One HTTP request, sent again and again, and a piece of text its answer must hold.
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) url: String,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Option<Bytes>,
    pub(super) expect: &'static str,
}

impl Call {
    /// Sends the request once and returns how long the whole answer took; fails
    /// unless it answers 2xx with the expected text (checked after the clock stops).
    pub(super) async fn send(&self, client: &reqwest::Client) -> Result<Duration> {
        let sent = Instant::now();
        let mut request = client.request(self.method.clone(), &self.url);
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &self.body {
            request = request.body(body.clone());
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        let latency = sent.elapsed();
        let text = String::from_utf8_lossy(&body);
        ensure!(
            status.is_success() && text.contains(self.expect),
            "{} {} answered {status}: {text}",
            self.method,
            self.url,
        );
        Ok(latency)
    }

    /// `total` sends from `concurrency` workers.
    pub(super) async fn load(
        self: &Arc<Self>,
        client: &reqwest::Client,
        total: usize,
        concurrency: usize,
    ) -> Result<Sample> {
        let (call, client) = (Arc::clone(self), client.clone());
        drive(total, concurrency, move |_| {
            let (call, client) = (call.clone(), client.clone());
            async move { call.send(&client).await }
        })
        .await
    }
}

/// An operation measured both ways.
struct Case {
    name: &'static str,
    through_patchbay: Arc<Call>,
    direct: Arc<Call>,
    /// The API request sent to the bare endpoint instead.
    bare: Arc<Call>,
    /// An authenticated read of the same connection: the API's own work without the
    /// secret, the connector or the provider.
    read_connection: Arc<Call>,
}

impl Case {
    fn new(
        name: &'static str,
        base: &str,
        bare_base: &str,
        key: &str,
        (connection, operation): (&str, &str),
        params: serde_json::Value,
        direct: Call,
    ) -> Self {
        let path = format!("/api/connections/{connection}/query/{operation}");
        let api = |base: &str, expect| {
            Arc::new(Call {
                method: Method::POST,
                url: format!("{base}{path}"),
                headers: vec![
                    ("authorization", format!("Bearer {key}")),
                    ("content-type", "application/json".to_owned()),
                ],
                body: Some(Bytes::from(params.to_string())),
                expect,
            })
        };
        Self {
            name,
            through_patchbay: api(base, "\"data\""),
            direct: Arc::new(direct),
            bare: api(bare_base, "accepted"),
            read_connection: Arc::new(Call {
                method: Method::GET,
                url: format!("{base}/api/connections/{connection}"),
                headers: vec![("authorization", format!("Bearer {key}"))],
                body: None,
                expect: "\"connection\"",
            }),
        }
    }
}

/// The figures of one operation at one concurrency level.
struct Row {
    name: &'static str,
    concurrency: usize,
    direct: Sample,
    through_patchbay: Sample,
}

/// Runs the benchmark at each concurrency level with `requests` per path.
pub async fn query(levels: &[usize], requests: usize) -> Result<()> {
    let binary = patchbay_binary()?;
    let datadog = FakeDatadog::start(API_KEY, APP_KEY).await;
    let slack_fake = FakeSlack::start(slack::BOT_TOKEN).await;
    let overrides = format!("{},{}", datadog.override_spec(), slack_fake.override_spec());
    let widest = levels.iter().copied().max().unwrap_or(1);
    let client = bench_client(widest.max(16) * 2)?;

    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut serve: Command = patchbay_command(&binary, dir.path(), port, &overrides);
    serve.arg("serve");
    let _service = ChildGuard(slack::enable_slack(&mut serve).spawn()?);
    wait_for_patchbay(&client, &format!("{base}/healthz"), dir.path()).await?;
    let key = create_api_key(&binary, dir.path(), port, "bench", None)?;
    let (datadog_connection, _) = connect_datadog(&client, &base, &key, "bench").await?;
    let slack_connection = slack::install(&base, &key, &slack_fake).await?;
    let (bare_base, _bare) = start_bare_server(&client).await?;

    let cases = [
        Case::new(
            "Datadog `get_monitor` (API and application keys)",
            &base,
            &bare_base,
            &key,
            (&datadog_connection, "get_monitor"),
            json!({ "monitor_id": MONITOR_ID }),
            Call {
                method: Method::GET,
                url: format!("{}/api/v1/monitor/{MONITOR_ID}", datadog.base_url()),
                headers: vec![
                    ("accept", "application/json".to_owned()),
                    ("dd-api-key", API_KEY.to_owned()),
                    ("dd-application-key", APP_KEY.to_owned()),
                ],
                body: None,
                expect: "\"id\":1001",
            },
        ),
        Case::new(
            "Slack `get_user` (OAuth bot token)",
            &base,
            &bare_base,
            &key,
            (&slack_connection, "get_user"),
            json!({ "user": INSTALLER_USER_ID }),
            Call {
                method: Method::GET,
                url: format!(
                    "{}/api/users.info?user={INSTALLER_USER_ID}",
                    slack_fake.base_url()
                ),
                headers: vec![("authorization", format!("Bearer {}", slack::BOT_TOKEN))],
                body: None,
                expect: "\"ok\":true",
            },
        ),
    ];

    let per_round = requests.div_ceil(ROUNDS);
    let mut rows = Vec::new();
    let mut floors = Vec::new();
    for &concurrency in levels {
        let (mut bare_runs, mut read_runs) = (Vec::new(), Vec::new());
        for case in &cases {
            for call in [
                &case.direct,
                &case.through_patchbay,
                &case.bare,
                &case.read_connection,
            ] {
                call.load(&client, WARM_UP, concurrency).await?;
            }
            let (mut direct, mut through_patchbay) = (Vec::new(), Vec::new());
            for round in 0..ROUNDS {
                // Alternate which path goes first, so neither always follows the other.
                if round % 2 == 0 {
                    direct.push(case.direct.load(&client, per_round, concurrency).await?);
                    through_patchbay.push(
                        case.through_patchbay
                            .load(&client, per_round, concurrency)
                            .await?,
                    );
                } else {
                    through_patchbay.push(
                        case.through_patchbay
                            .load(&client, per_round, concurrency)
                            .await?,
                    );
                    direct.push(case.direct.load(&client, per_round, concurrency).await?);
                }
                bare_runs.push(case.bare.load(&client, per_round, concurrency).await?);
                read_runs.push(
                    case.read_connection
                        .load(&client, per_round, concurrency)
                        .await?,
                );
            }
            rows.push(Row {
                name: case.name,
                concurrency,
                direct: Sample::merged(direct),
                through_patchbay: Sample::merged(through_patchbay),
            });
        }
        floors.push((
            concurrency,
            Sample::merged(bare_runs),
            Sample::merged(read_runs),
        ));
    }

    println!("\n## Queries through the API (release build, SQLite)\n");
    println!(
        "{} requests per path, operation and concurrency level (after {WARM_UP} of each), \
         the paths alternating in {ROUNDS} runs. The direct call is the request the connector \
         sends (same method, path, parameters and credentials), made by the benchmark to the \
         same fake.\n",
        per_round * ROUNDS
    );
    println!(
        "| operation | concurrency | direct p50 ms | direct p99 ms | through Patchbay p50 ms \
         | through Patchbay p99 ms | added at p50 ms | added at p99 ms | p50 ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in &rows {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} |",
            row.name,
            row.concurrency,
            millis(row.direct.p50()),
            millis(row.direct.p99()),
            millis(row.through_patchbay.p50()),
            millis(row.through_patchbay.p99()),
            added(&row.through_patchbay, &row.direct, 0.50),
            added(&row.through_patchbay, &row.direct, 0.99),
            row.through_patchbay.p50().as_secs_f64() / row.direct.p50().as_secs_f64()
        );
    }
    println!("\nWhat the path through Patchbay is made of, measured in the same runs:\n");
    println!(
        "| concurrency | bare hyper endpoint p50 ms | p99 ms | authenticated `GET /api/connections/{{id}}` p50 ms | p99 ms |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for (concurrency, bare, read) in &floors {
        println!(
            "| {concurrency} | {:.3} | {:.3} | {:.3} | {:.3} |",
            millis(bare.p50()),
            millis(bare.p99()),
            millis(read.p50()),
            millis(read.p99())
        );
    }
    println!(
        "\n- The bare endpoint answers the same API request without work. The authenticated \
         read adds the API key lookup and the connection read in SQLite, without the \
         secret, the connector or the provider."
    );
    for row in rows.iter().filter(|row| row.concurrency == 1) {
        let Some((_, bare, read)) = floors.iter().find(|(level, ..)| *level == 1) else {
            break;
        };
        let added = added(&row.through_patchbay, &row.direct, 0.50);
        // The client's own cost and one loopback exchange are in every path and cancel
        // in these differences: the authenticated read less the bare endpoint is the
        // API's work, and what the added time has beyond it is the provider call.
        let api = millis(read.p50()) - millis(bare.p50());
        println!(
            "- {}, one at a time: of {added:.3} ms added at p50, {api:.3} ms is the API's \
             work above a bare endpoint (routing, the API key and connection lookups: the \
             authenticated read less the bare endpoint) and {:.3} ms the call to the \
             provider (the secret, the parameters, the connector's outbound request over a \
             second loopback connection, and the answer).",
            row.name,
            added - api
        );
    }
    let missed: Vec<String> = rows
        .iter()
        .filter(|row| added(&row.through_patchbay, &row.direct, 0.50) >= GOAL_ADDED_P50_MS)
        .map(|row| format!("{} at concurrency {}", row.name, row.concurrency))
        .collect();
    if missed.is_empty() {
        println!("- Goal, under {GOAL_ADDED_P50_MS} ms added at p50: met for every row.");
    } else {
        println!(
            "- Goal, under {GOAL_ADDED_P50_MS} ms added at p50: not met for {}.",
            missed.join("; ")
        );
    }
    Ok(())
}

/// What the path through Patchbay adds at `quantile`, in milliseconds (negative when it was faster).
fn added(through_patchbay: &Sample, direct: &Sample, quantile: f64) -> f64 {
    millis(through_patchbay.at(quantile)) - millis(direct.at(quantile))
}
