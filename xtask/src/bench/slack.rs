//! Slack connected through OAuth, for the benches: the settings `patchbay serve`
//! needs for the Slack app, and an install that follows the flow against the fake
//! the way a browser does (begin URL, authorize, callback with the binding cookie).

use std::process::Command;

use anyhow::{ensure, Context, Result};
use patchbay_connector_slack::fake::{self, FakeSlack};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

/// The bot token the fake issues when token rotation is off.
pub const BOT_TOKEN: &str = "xoxb-bench-slack-bot-token-0001";

/// The Slack app's signing secret, which the service needs to enable Slack.
const SIGNING_SECRET: &str = "bench-slack-signing-secret-0001";

/// Where Slack's authorize page really is; the install sends that request to the fake.
const SLACK_ORIGIN: &str = "https://slack.com";

/// Adds the Slack app's settings to a `patchbay serve` command.
pub fn enable_slack(command: &mut Command) -> &mut Command {
    command
        .env("NEXT_PUBLIC_ENABLE_SLACK", "true")
        .env("SLACK_CLIENT_ID", fake::CLIENT_ID)
        .env("SLACK_CLIENT_SECRET", fake::CLIENT_SECRET)
        .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
}

/// Installs the Slack app into the fake workspace for the API key's tenant, replacing
/// any earlier install; returns the new connection's id.
pub async fn install(base: &str, key: &str, slack: &FakeSlack) -> Result<String> {
    slack.register_redirect_uri(&format!("{base}/slack/callback"));
    let api = super::bench_client(4)?;
    let started: Value = api
        .post(format!("{base}/api/connections/oauth/slack/start"))
        .bearer_auth(key)
        .json(&json!({ "label": "bench" }))
        .send()
        .await?
        .json()
        .await?;
    let begin_url = started["begin_url"]
        .as_str()
        .with_context(|| format!("the OAuth start answered {started}"))?;

    let browser = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let begun = browser.get(begin_url).send().await?;
    ensure!(
        begun.status().as_u16() == 303,
        "the begin URL answered {}",
        begun.status()
    );
    let authorize_url = header(&begun, "location")?;
    let cookie = header(&begun, "set-cookie")?
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let at_fake = authorize_url.replacen(SLACK_ORIGIN, &slack.base_url(), 1);
    ensure!(
        at_fake != authorize_url,
        "the authorize URL {authorize_url} is not on {SLACK_ORIGIN}"
    );
    let authorized = browser.get(&at_fake).send().await?;
    ensure!(
        authorized.status().as_u16() == 302,
        "the fake's authorize page answered {}",
        authorized.status()
    );
    let callback = header(&authorized, "location")?;
    let finished = browser
        .get(&callback)
        .header("cookie", &cookie)
        .send()
        .await?;
    let status = finished.status();
    let page = finished.text().await?;
    ensure!(
        status.is_success(),
        "the OAuth callback answered {status}: {page}"
    );

    let listed: Value = api
        .get(format!("{base}/api/connections"))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?;
    listed["connections"]
        .as_array()
        .and_then(|connections| {
            connections
                .iter()
                .find(|connection| connection["connector"] == "slack")
        })
        .and_then(|connection| connection["id"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no Slack connection after the install: {listed}"))
}

fn header(response: &reqwest::Response, name: &str) -> Result<String> {
    Ok(response
        .headers()
        .get(name)
        .with_context(|| format!("no {name} header in the answer"))?
        .to_str()?
        .to_owned())
}
