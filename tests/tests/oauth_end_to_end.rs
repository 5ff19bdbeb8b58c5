//! OAuth end to end through the real binary: start the flow for GitHub and Slack,
//! follow the authorize URL against the fakes, land on the callbacks, query with the
//! stored tokens (kept in Vault only), and a refresh storm across two replicas.

use std::time::Duration;

use patchbay_e2e::openbao::vault_call;
use patchbay_e2e::postgres::{self, TestDatabase};
use patchbay_e2e::{Answer, Patchbay};
use patchbay_testkit::fakes::{github as fake_github, slack as fake_slack};
use serde_json::{json, Value};

const GITHUB_TOKEN: &str = "gho_canaryGithubOauthToken0001";
const SLACK_BOT_TOKEN: &str = "xoxb-canary-slack-bot-token-0001";
const SIGNING_SECRET: &str = "slack-signing-secret-for-e2e-0001";

fn shared_vault() -> Option<(String, String)> {
    Some((
        std::env::var("PATCHBAY_TEST_VAULT_ADDR").ok()?,
        std::env::var("PATCHBAY_TEST_VAULT_TOKEN").ok()?,
    ))
}

macro_rules! require {
    ($value:expr, $what:literal) => {
        match $value {
            Some(value) => value,
            None => {
                eprintln!(
                    "SKIPPED: {} needs {} (run `cargo xtask test`)",
                    module_path!(),
                    $what
                );
                return;
            }
        }
    };
}

/// Follows an authorize URL the way a browser would: to the provider (the fake
/// stands in for its host), then to Patchbay's callback with its redirect.
async fn authorize_in_browser(
    patchbay: &Patchbay,
    authorize_url: &str,
    provider_origin: &str,
    fake_base: &str,
) -> Answer {
    let at_fake = authorize_url.replacen(provider_origin, fake_base, 1);
    assert_ne!(
        at_fake, authorize_url,
        "authorize URL starts with {provider_origin}"
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let answer = client.get(&at_fake).send().await.expect("fake authorize");
    assert_eq!(
        answer.status().as_u16(),
        302,
        "{}",
        answer.text().await.unwrap_or_default()
    );
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let callback = location
        .strip_prefix(&patchbay.base_url)
        .unwrap_or_else(|| panic!("redirected to {location}, not to Patchbay"));
    assert!(
        !callback.contains("token"),
        "no token in the callback URL: {callback}"
    );
    patchbay.request("GET", callback, &[], None).await
}

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
    started.json()["authorize_url"].as_str().unwrap().to_owned()
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
async fn github_and_slack_connect_through_oauth_with_tokens_in_vault_only() {
    let (vault_addr, vault_token) = require!(shared_vault(), "PATCHBAY_TEST_VAULT_ADDR");
    let server = require!(postgres::server_url(), "PATCHBAY_TEST_DATABASE_URL");
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
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let page =
        authorize_in_browser(&patchbay, &url, "https://github.com", &github.base_url()).await;
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
    assert!(
        url.contains("scope=chat%3Awrite%2Cchannels%3Aread")
            || url.contains("scope=chat:write,channels:read"),
        "{url}"
    );
    let page = authorize_in_browser(&patchbay, &url, "https://slack.com", &slack.base_url()).await;
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

    // A replayed callback URL is refused and stores nothing.
    let replay_url = start(&patchbay, &key, "slack").await;
    let first = authorize_in_browser(
        &patchbay,
        &replay_url,
        "https://slack.com",
        &slack.base_url(),
    )
    .await;
    assert_eq!(first.status, 200);
    let connections_before = patchbay
        .api("GET", "/api/connections", &key, None)
        .await
        .json()["connections"]
        .as_array()
        .unwrap()
        .len();

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
            &format!("patchbay/data/{base}/acme/{connector}/{id}"),
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
    assert!(connections_before >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_storm_across_two_replicas_makes_one_token_request() {
    let (vault_addr, vault_token) = require!(shared_vault(), "PATCHBAY_TEST_VAULT_ADDR");
    let server = require!(postgres::server_url(), "PATCHBAY_TEST_DATABASE_URL");
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
    let page = authorize_in_browser(&replica_a, &url, "https://slack.com", &slack.base_url()).await;
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
    let path = format!("/api/connections/{id}/query/user_info");
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
    tokio::time::sleep(Duration::from_millis(100)).await;
}
