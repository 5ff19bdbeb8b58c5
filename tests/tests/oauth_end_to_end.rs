//! OAuth end to end through the real binary: start the flow for GitHub and Slack,
//! follow the authorize URL against the fakes, land on the callbacks, query with the
//! stored tokens (kept in Vault only), and a refresh storm across two replicas.

use std::time::Duration;

use patchbay_connector_github::fake as fake_github;
use patchbay_connector_slack::fake as fake_slack;
use patchbay_core::metrics as metric_names;
use patchbay_e2e::openbao::vault_call;
use patchbay_e2e::postgres::TestDatabase;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::services;
use serde_json::{json, Value};

const GITHUB_TOKEN: &str = "gho_canaryGithubOauthToken0001";
const SLACK_BOT_TOKEN: &str = "xoxb-canary-slack-bot-token-0001";
const SIGNING_SECRET: &str = "slack-signing-secret-for-e2e-0001";

async fn start(patchbay: &Patchbay, key: &str, connector: &str) -> String {
    let started = patchbay
        .api(
            "POST",
            &format!("/api/connections/oauth/{connector}/start"),
            key,
            Some(json!({ "label": format!("{connector} via OAuth") })),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    started.json()["begin_url"].as_str().unwrap().to_owned()
}

fn connection_of(listed: &Value, connector: &str) -> Value {
    listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["connector"] == connector)
        .unwrap_or_else(|| panic!("no {connector} connection in {listed}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_needs_postgres_github_and_slack_connect_through_oauth_with_tokens_in_vault_only(
) {
    let services::Vault {
        addr: vault_addr,
        token: vault_token,
    } = services::vault();
    let server = services::postgres_url();
    let database = TestDatabase::create(&server).await;
    let github = fake_github::FakeGitHub::start(GITHUB_TOKEN).await;
    let slack = fake_slack::FakeSlack::start(SLACK_BOT_TOKEN).await;
    let overrides = format!("{},{}", github.override_spec(), slack.override_spec());
    let base = format!("oauth-{}", patchbay_e2e::openbao::uuid_like());
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("DATABASE_URL", database.url.as_str()),
        ("PATCHBAY_SECRETS", "vault"),
        ("VAULT_ADDR", vault_addr.as_str()),
        ("VAULT_TOKEN", vault_token.as_str()),
        ("VAULT_KV_BASE_PATH", base.as_str()),
        ("GH_OAUTH_CLIENT_ID", fake_github::FAKE_CLIENT_ID),
        ("GH_OAUTH_CLIENT_SECRET", fake_github::FAKE_CLIENT_SECRET),
        ("NEXT_PUBLIC_ENABLE_SLACK", "true"),
        ("SLACK_CLIENT_ID", fake_slack::CLIENT_ID),
        ("SLACK_CLIENT_SECRET", fake_slack::CLIENT_SECRET),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
    ])
    .await;
    slack.register_redirect_uri(&format!("{}/slack/callback", patchbay.base_url));
    let key = patchbay.create_api_key("alice", Some("acme"));

    // GitHub.
    let url = start(&patchbay, &key, "github").await;
    let page = patchbay
        .authorize_in_browser(&url, "https://github.com", &github.base_url())
        .await
        .0;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("connected"), "{}", page.text);
    // The state is single use: replaying the callback stores nothing more.
    let listed = patchbay
        .api("GET", "/api/connections", &key, None)
        .await
        .json();
    let github_connection = connection_of(&listed, "github");
    let id = github_connection["id"].as_str().unwrap();
    let repos = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_repos"),
            &key,
            Some(json!({})),
        )
        .await;
    assert_eq!(repos.status, 200, "{}", repos.text);

    // Slack.
    let url = start(&patchbay, &key, "slack").await;
    let (page, authorize_url) = patchbay
        .authorize_in_browser(&url, "https://slack.com", &slack.base_url())
        .await;
    assert!(
        authorize_url.contains("scope=chat%3Awrite%2Cchannels%3Aread")
            || authorize_url.contains("scope=chat:write,channels:read"),
        "{authorize_url}"
    );
    assert_eq!(page.status, 200, "{}", page.text);
    let listed = patchbay
        .api("GET", "/api/connections", &key, None)
        .await
        .json();
    let slack_connection = connection_of(&listed, "slack");
    assert_eq!(slack_connection["metadata"]["team_id"], fake_slack::TEAM_ID);
    let id = slack_connection["id"].as_str().unwrap();
    let channels = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_channels"),
            &key,
            Some(json!({})),
        )
        .await;
    assert_eq!(channels.status, 200, "{}", channels.text);

    // GitHub webhooks: the signing secret is issued through the API (an OAuth
    // callback page never shows secrets), and every delivery is verified.
    let github_id = github_connection["id"].as_str().unwrap();
    let rotated = patchbay
        .api(
            "POST",
            &format!("/api/connections/{github_id}/webhook/rotate"),
            &key,
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let rotated = rotated.json();
    assert_eq!(
        rotated["webhook"]["url"],
        format!("{}/github/webhook/alice", patchbay.base_url)
    );
    let secret = rotated["webhook"]["secret"].as_str().unwrap().to_owned();
    let deliver_github =
        |event: &'static str, delivery: &'static str, body: Vec<u8>, signature: String| {
            let patchbay = &patchbay;
            async move {
                patchbay
                    .request(
                        "POST",
                        "/github/webhook/alice",
                        &[
                            ("content-type", "application/json"),
                            ("x-github-event", event),
                            ("x-github-delivery", delivery),
                            ("x-hub-signature-256", &signature),
                        ],
                        Some(body),
                    )
                    .await
            }
        };
    let ping = serde_json::to_vec(&fake_github::sample_payload("ping", "")).unwrap();
    let answer = deliver_github(
        "ping",
        "d-ping",
        ping.clone(),
        fake_github::sign_webhook(&secret, &ping),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let failed_run =
        serde_json::to_vec(&fake_github::sample_payload("workflow_run", "failure")).unwrap();
    let signature = fake_github::sign_webhook(&secret, &failed_run);
    let answer = deliver_github(
        "workflow_run",
        "d-run-1",
        failed_run.clone(),
        signature.clone(),
    )
    .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(answer.json()["accepted"], 1);
    let redelivered =
        deliver_github("workflow_run", "d-run-1", failed_run.clone(), signature).await;
    assert_eq!(redelivered.json()["duplicates"], 1, "{}", redelivered.text);
    let forged = deliver_github(
        "workflow_run",
        "d-run-2",
        failed_run.clone(),
        fake_github::sign_webhook("not-the-secret", &failed_run),
    )
    .await;
    assert_eq!(forged.status, 401, "{}", forged.text);

    // Slack events: signed with the app's signing secret, routed by team id.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let deliver_slack = |body: String, signature: String, retry: Option<&'static str>| {
        let patchbay = &patchbay;
        let now = now.clone();
        async move {
            let mut headers = vec![
                ("content-type", "application/json"),
                ("x-slack-request-timestamp", now.as_str()),
                ("x-slack-signature", signature.as_str()),
            ];
            if let Some(retry) = retry {
                headers.push(("x-slack-retry-num", retry));
            }
            patchbay
                .request("POST", "/slack/events", &headers, Some(body.into_bytes()))
                .await
        }
    };
    let challenge = json!({ "token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification" }).to_string();
    let answer = deliver_slack(
        challenge.clone(),
        fake_slack::sign(SIGNING_SECRET, &now, &challenge),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.text,
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    let mention = fake_slack::app_mention(
        "Ev0E2E0001",
        fake_slack::INCIDENTS_CHANNEL,
        "1714564800.000200",
        "<@U0FAKEBOT1> why is checkout slow?",
    )
    .to_string();
    let signature = fake_slack::sign(SIGNING_SECRET, &now, &mention);
    let answer = deliver_slack(mention.clone(), signature.clone(), None).await;
    assert_eq!(answer.status, 202, "{}", answer.text);
    assert_eq!(answer.json()["accepted"], 1);
    let retried = deliver_slack(mention.clone(), signature, Some("1")).await;
    assert_eq!(retried.json()["duplicates"], 1, "{}", retried.text);
    let forged = deliver_slack(
        mention.clone(),
        fake_slack::sign("wrong-secret", &now, &mention),
        None,
    )
    .await;
    assert_eq!(forged.status, 401, "{}", forged.text);
    let alerts = patchbay.api("GET", "/api/alerts", &key, None).await.json();
    let kinds: Vec<_> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["source"].as_str().unwrap().to_owned(),
                a["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("slack".to_owned(), "chat_trigger".to_owned())),
        "{alerts}"
    );
    assert!(
        kinds.iter().any(|(source, _)| source == "github"),
        "{alerts}"
    );

    // Installing the workspace again replaces its connection: one workspace, one connection.
    let reinstall_url = start(&patchbay, &key, "slack").await;
    let (reinstalled, _) = patchbay
        .authorize_in_browser(&reinstall_url, "https://slack.com", &slack.base_url())
        .await;
    assert_eq!(reinstalled.status, 200, "{}", reinstalled.text);
    let listed = patchbay
        .api("GET", "/api/connections", &key, None)
        .await
        .json();
    assert_eq!(
        listed["connections"].as_array().unwrap().len(),
        2,
        "{listed}"
    );
    let replaced_id = slack_connection["id"].clone();
    let slack_connection = connection_of(&listed, "slack");
    assert_ne!(slack_connection["id"], replaced_id);

    // The tokens are in Vault, and nowhere else.
    let client = reqwest::Client::new();
    for connection in [&github_connection, &slack_connection] {
        let connector = connection["connector"].as_str().unwrap();
        let id = connection["id"].as_str().unwrap();
        let (status, secret) = vault_call(
            &client,
            &vault_addr,
            &vault_token,
            "GET",
            &format!("patchbay/data/{base}/orgs/acme/{connector}/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{secret}");
        assert!(secret["data"]["data"]["secrets"]["access_token"].is_string());
    }
    let dump = database.dump().await;
    for token in [GITHUB_TOKEN, SLACK_BOT_TOKEN] {
        assert!(!dump.contains(token), "{token} stored in Postgres");
        assert!(!patchbay.logs().contains(token), "{token} in the logs");
        assert!(
            !patchbay.transcript().contains(token),
            "{token} in a response"
        );
    }

    // Disconnecting revokes the grant at the provider, then deletes locally.
    for (connection, revoked) in [
        (
            &github_connection,
            Box::new(|| github.is_revoked()) as Box<dyn Fn() -> bool>,
        ),
        (
            &slack_connection,
            Box::new(|| slack.is_revoked(SLACK_BOT_TOKEN)),
        ),
    ] {
        let id = connection["id"].as_str().unwrap();
        let deleted = patchbay
            .api("DELETE", &format!("/api/connections/{id}"), &key, None)
            .await;
        assert_eq!(deleted.status, 200, "{}", deleted.text);
        assert_eq!(deleted.json()["revoke"], "revoked", "{}", deleted.text);
        assert!(
            revoked(),
            "{} revoked at the provider",
            connection["connector"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_routes_answer_the_guides_message_while_the_flag_is_off() {
    let patchbay = Patchbay::start(&[
        ("SLACK_CLIENT_ID", fake_slack::CLIENT_ID),
        ("SLACK_CLIENT_SECRET", fake_slack::CLIENT_SECRET),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
    ])
    .await;
    let key = patchbay.create_api_key("alice", None);
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/slack/start",
            &key,
            Some(json!({})),
        )
        .await;
    let events = patchbay
        .request(
            "POST",
            "/slack/events",
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    let callback = patchbay
        .request("GET", "/slack/callback?code=x&state=y", &[], None)
        .await;
    for answer in [&started, &events] {
        assert_eq!(answer.status, 403, "{}", answer.text);
        assert_eq!(
            answer.json()["error"]["message"],
            "Slack connector not enabled"
        );
    }
    assert!(
        callback.text.contains("Slack connector not enabled"),
        "{}",
        callback.text
    );
    let status = patchbay
        .api("GET", "/api/connectors/status", &key, None)
        .await
        .json();
    assert_eq!(status["connectors"]["slack"]["enabled"], false);
    assert_eq!(
        status["connectors"]["slack"]["message"],
        "Slack connector not enabled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_vault_needs_postgres_a_refresh_storm_across_two_replicas_makes_one_token_request() {
    let services::Vault {
        addr: vault_addr,
        token: vault_token,
    } = services::vault();
    let server = services::postgres_url();
    let database = TestDatabase::create(&server).await;
    let slack = fake_slack::FakeSlack::start(SLACK_BOT_TOKEN).await;
    // Installs issue a token that is already inside the refresh window.
    slack.enable_rotation(30);
    let overrides = slack.override_spec();
    let base = format!("storm-{}", patchbay_e2e::openbao::uuid_like());
    let env = [
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("DATABASE_URL", database.url.as_str()),
        ("PATCHBAY_SECRETS", "vault"),
        ("VAULT_ADDR", vault_addr.as_str()),
        ("VAULT_TOKEN", vault_token.as_str()),
        ("VAULT_KV_BASE_PATH", base.as_str()),
        ("NEXT_PUBLIC_ENABLE_SLACK", "true"),
        ("SLACK_CLIENT_ID", fake_slack::CLIENT_ID),
        ("SLACK_CLIENT_SECRET", fake_slack::CLIENT_SECRET),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
        ("PATCHBAY_OAUTH_REFRESH_SKEW_SECS", "300"),
    ];
    let replica_a = Patchbay::start(&env).await;
    let mut env_b = env.to_vec();
    let public_a = replica_a.base_url.clone();
    env_b.push(("PATCHBAY_PUBLIC_URL", public_a.as_str()));
    let replica_b = Patchbay::start(&env_b).await;
    slack.register_redirect_uri(&format!("{}/slack/callback", replica_a.base_url));
    let key = replica_a.create_api_key("alice", None);

    let url = start(&replica_a, &key, "slack").await;
    let (page, _) = replica_a
        .authorize_in_browser(&url, "https://slack.com", &slack.base_url())
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let listed = replica_a
        .api("GET", "/api/connections", &key, None)
        .await
        .json();
    let id = connection_of(&listed, "slack")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = slack.token_requests();

    // Refreshed tokens last long, so one refresh serves every waiting query.
    slack.enable_rotation(43_200);
    let path = format!("/api/connections/{id}/query/get_user");
    let queries = (0..500).map(|n| {
        let replica = if n % 2 == 0 { &replica_a } else { &replica_b };
        let path = path.clone();
        let key = key.clone();
        async move {
            replica
                .api(
                    "POST",
                    &path,
                    &key,
                    Some(json!({ "user": fake_slack::INSTALLER_USER_ID })),
                )
                .await
        }
    });
    let answers = futures::future::join_all(queries).await;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    assert_eq!(
        slack.token_requests() - before,
        1,
        "500 concurrent queries on two replicas refresh the token exactly once"
    );

    // The metrics of both replicas say the same: one refresh, one completed flow,
    // and the stores by their backend names.
    let scrapes = [
        replica_a.scrape(&replica_a.base_url).await,
        replica_b.scrape(&replica_b.base_url).await,
    ];
    let total = |name: &str, labels: &[(&str, &str)]| -> f64 {
        scrapes.iter().map(|scrape| scrape.sum(name, labels)).sum()
    };
    let slack = ("connector", "slack");
    assert_eq!(
        total(
            metric_names::TOKEN_REFRESHES,
            &[slack, ("outcome", "refreshed")]
        ),
        1.0
    );
    assert_eq!(total(metric_names::TOKEN_REFRESHES, &[slack]), 1.0);
    assert_eq!(
        total(metric_names::OAUTH_FLOWS, &[slack, ("stage", "started")]),
        1.0
    );
    assert_eq!(
        total(metric_names::OAUTH_FLOWS, &[slack, ("stage", "completed")]),
        1.0
    );
    for backend in ["postgres", "vault"] {
        assert!(
            total(
                metric_names::STORE_OPERATIONS,
                &[("backend", backend), ("outcome", "ok")]
            ) > 0.0,
            "{backend} calls are counted"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}
