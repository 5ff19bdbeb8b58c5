//! `cargo xtask bench refresh`: a burst of queries on an expired OAuth access token.
//!
//! Slack is installed through OAuth with token rotation on, so the stored access token
//! expires after a second and a refresh token is kept. Once it has expired, the
//! queries are all sent at once: the refresh is coordinated, so the fake's token
//! endpoint must see exactly one request, and every query must answer. The same burst
//! on the fresh token that refresh stored is the ceiling. Each round installs again.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Result};
use hyper::body::Bytes;
use patchbay_connector_slack::fake::{FakeSlack, INSTALLER_USER_ID};
use patchbay_testkit::fake_server::ProviderFake;
use reqwest::Method;
use serde_json::json;

use super::query::Call;
use super::{
    bench_client, create_api_key, free_port, millis, patchbay_binary, patchbay_command, slack,
    wait_for_patchbay, ChildGuard, Sample,
};

/// The lifetime of the access token an install issues, in seconds.
const INSTALLED_TOKEN_SECS: u64 = 1;

/// The lifetime of refreshed tokens: long, so one refresh serves every waiting query.
const REFRESHED_TOKEN_SECS: u64 = 43_200;

/// One round: the burst on the expired token and the burst on the fresh one.
struct Round {
    token_requests: usize,
    expired: Sample,
    fresh: Sample,
}

/// Runs `rounds` rounds of `queries` concurrent queries.
pub async fn refresh(queries: usize, rounds: usize) -> Result<()> {
    let binary = patchbay_binary()?;
    let slack_fake = FakeSlack::start(slack::BOT_TOKEN).await;
    let client = bench_client(queries)?;

    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let mut serve: Command =
        patchbay_command(&binary, dir.path(), port, &slack_fake.override_spec());
    serve.arg("serve");
    let _service = ChildGuard(slack::enable_slack(&mut serve).spawn()?);
    wait_for_patchbay(&client, &format!("{base}/healthz"), dir.path()).await?;
    let key = create_api_key(&binary, dir.path(), port, "bench", None)?;

    // A burst on a long-lived token first, so both kinds of burst find the connections
    // from the bench to the service, and from the service to the fake, already open.
    slack_fake.enable_rotation(REFRESHED_TOKEN_SECS);
    let connection = slack::install(&base, &key, &slack_fake).await?;
    get_user(&base, &key, &connection)
        .load(&client, queries, queries)
        .await?;

    let mut results = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        slack_fake.enable_rotation(INSTALLED_TOKEN_SECS);
        let connection = slack::install(&base, &key, &slack_fake).await?;
        slack_fake.enable_rotation(REFRESHED_TOKEN_SECS);
        let query = get_user(&base, &key, &connection);
        // Past the installed token's expiry, not merely inside the refresh window.
        tokio::time::sleep(Duration::from_secs(INSTALLED_TOKEN_SECS) + Duration::from_millis(200))
            .await;
        let before = slack_fake.token_requests();
        let expired = query.load(&client, queries, queries).await?;
        let token_requests = slack_fake.token_requests() - before;
        ensure!(
            token_requests == 1,
            "{queries} concurrent queries on an expired token made {token_requests} token requests, not one"
        );
        let fresh = query.load(&client, queries, queries).await?;
        ensure!(
            slack_fake.token_requests() - before == 1,
            "queries on a fresh token made token requests"
        );
        results.push(Round {
            token_requests,
            expired,
            fresh,
        });
    }

    println!("\n## A burst of queries on an expired OAuth token (release build, SQLite)\n");
    println!(
        "{queries} Slack `get_user` queries sent at once, {rounds} rounds. Each round installs \
         Slack again through OAuth with token rotation on (the installed access token expires \
         after {INSTALLED_TOKEN_SECS} s), waits until it has expired, sends the burst, then \
         sends the same burst on the fresh token the refresh stored (the ceiling).\n"
    );
    println!(
        "| round | token requests | expired token: all answered ms | p50 ms | p99 ms \
         | fresh token: all answered ms | p50 ms | p99 ms | wall-time ratio |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::with_capacity(rounds);
    for (index, round) in results.iter().enumerate() {
        let ratio = round.expired.elapsed.as_secs_f64() / round.fresh.elapsed.as_secs_f64();
        ratios.push(ratio);
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} |",
            index + 1,
            round.token_requests,
            millis(round.expired.elapsed),
            millis(round.expired.p50()),
            millis(round.expired.p99()),
            millis(round.fresh.elapsed),
            millis(round.fresh.p50()),
            millis(round.fresh.p99()),
            ratio
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "\nEvery burst on an expired token made exactly one token request, and all {queries} \
         queries answered; the median wall-time ratio to the fresh-token burst is {:.2}.",
        ratios[ratios.len() / 2]
    );
    Ok(())
}

/// The `get_user` query on a Slack connection.
fn get_user(base: &str, key: &str, connection: &str) -> Arc<Call> {
    Arc::new(Call {
        method: Method::POST,
        url: format!("{base}/api/connections/{connection}/query/get_user"),
        headers: vec![
            ("authorization", format!("Bearer {key}")),
            ("content-type", "application/json".to_owned()),
        ],
        body: Some(Bytes::from(
            json!({ "user": INSTALLER_USER_ID }).to_string(),
        )),
        expect: "\"data\"",
    })
}
