//! One Slack workspace, one connection, through the real binary: another Patchbay
//! account installing the same workspace is refused, a reinstall in the same account
//! replaces the old connection, and events reach the one connection left.

use patchbay_connector_slack::fake as fake_slack;
use patchbay_e2e::{Answer, Patchbay};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const SLACK_BOT_TOKEN: &str = "xoxb-canary-slack-bot-token-0002";
const SIGNING_SECRET: &str = "slack-signing-secret-for-e2e-0002";

/// Starts the Slack flow for the key's tenant and follows it through the fake, as a
/// browser would; returns Patchbay's callback answer.
async fn install(patchbay: &Patchbay, slack: &fake_slack::FakeSlack, key: &str) -> Answer {
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/slack/start",
            key,
            Some(json!({})),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let begin_url = started.json()["begin_url"].as_str().unwrap().to_owned();
    patchbay
        .authorize_in_browser(&begin_url, "https://slack.com", &slack.base_url())
        .await
        .0
}

async fn slack_connections(patchbay: &Patchbay, key: &str) -> Vec<Value> {
    let listed = patchbay.api("GET", "/api/connections", key, None).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    listed.json()["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|connection| connection["connector"] == "slack")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_belongs_to_one_account_and_a_reinstall_replaces_its_connection() {
    let slack = fake_slack::FakeSlack::start(SLACK_BOT_TOKEN).await;
    let overrides = slack.override_spec();
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("NEXT_PUBLIC_ENABLE_SLACK", "true"),
        ("SLACK_CLIENT_ID", fake_slack::CLIENT_ID),
        ("SLACK_CLIENT_SECRET", fake_slack::CLIENT_SECRET),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
    ])
    .await;
    slack.register_redirect_uri(&format!("{}/slack/callback", patchbay.base_url));
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let bob = patchbay.create_api_key("bob", Some("acme"));
    let mallory = patchbay.create_api_key("mallory", Some("evil"));

    let page = install(&patchbay, &slack, &alice).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let first = slack_connections(&patchbay, &alice).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let first_id = first[0]["id"].as_str().unwrap().to_owned();

    // Another account cannot take the workspace over.
    let page = install(&patchbay, &slack, &mallory).await;
    assert_eq!(page.status, 409, "{}", page.text);
    assert!(
        page.text.contains(&format!(
            "Slack workspace {} is already connected to another Patchbay account; \
             disconnect it there first",
            fake_slack::TEAM_NAME
        )),
        "{}",
        page.text
    );
    assert!(slack_connections(&patchbay, &mallory).await.is_empty());
    assert_eq!(slack_connections(&patchbay, &alice).await, first);

    // A colleague in the same organisation reinstalls: the new connection replaces the old.
    let page = install(&patchbay, &slack, &bob).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let after = slack_connections(&patchbay, &alice).await;
    assert_eq!(after.len(), 1, "{after:?}");
    let second_id = after[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(second_id, first_id);
    assert_eq!(after[0]["created_by"], "bob");
    let old = patchbay
        .api("GET", &format!("/api/connections/{first_id}"), &alice, None)
        .await;
    assert_eq!(old.status, 404, "{}", old.text);

    // The old connection's secret is gone: one secret is left in the store.
    let secrets: Value =
        serde_json::from_slice(&std::fs::read(patchbay.data_dir().join("secrets.json")).unwrap())
            .unwrap();
    assert_eq!(secrets.as_object().unwrap().len(), 1, "{secrets}");

    // Events go to the one connection left.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let mention = fake_slack::app_mention(
        "Ev0E2E0101",
        fake_slack::INCIDENTS_CHANNEL,
        "1714564800.000300",
        "<@U0FAKEBOT1> is checkout down?",
    )
    .to_string();
    let signature = fake_slack::sign(SIGNING_SECRET, &now, &mention);
    let delivered = patchbay
        .request(
            "POST",
            "/slack/events",
            &[
                ("content-type", "application/json"),
                ("x-slack-request-timestamp", now.as_str()),
                ("x-slack-signature", signature.as_str()),
            ],
            Some(mention.into_bytes()),
        )
        .await;
    assert_eq!(delivered.status, 202, "{}", delivered.text);
    assert_eq!(delivered.json()["accepted"], 1, "{}", delivered.text);
    let alerts = patchbay
        .api("GET", "/api/alerts", &alice, None)
        .await
        .json();
    let routed: Vec<_> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|alert| alert["connection_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(routed, [second_id], "{alerts}");
    let elsewhere = patchbay
        .api("GET", "/api/alerts", &mallory, None)
        .await
        .json();
    assert_eq!(elsewhere["alerts"], json!([]), "{elsewhere}");
}
