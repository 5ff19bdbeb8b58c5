//! Behaviour users rely on: the declared OAuth provider, the install flow against
//! the fake, validation lines, Slack error mapping, paging, rate limits and writes.

mod support;

use std::time::Duration;

use base64::Engine as _;
use patchbay_connector_slack::fake::{self as slack, FakeSlack, Fault};
use patchbay_connector_slack::{SlackConnector, DESCRIPTOR};
use patchbay_core::{
    AuthKind, AuthRequest, CheckOutcome, ClientAuthStyle, Error, ErrorKind, FormFields,
    RevokeOutcome, SecretString, ValidationStatus, WebhookAuth,
};
use patchbay_http::HttpClient;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};
use sha2::Digest as _;
use support::{connector_for, credentials, ctx, grant_from_answer, http_for, BOT_TOKEN};

#[test]
fn the_descriptor_declares_the_guides_oauth_app() {
    assert_eq!(DESCRIPTOR.id, "slack");
    assert_eq!(DESCRIPTOR.display_name, "Slack");
    assert_eq!(DESCRIPTOR.auth_kinds, &[AuthKind::Oauth2]);
    assert_eq!(DESCRIPTOR.feature_flag, Some("NEXT_PUBLIC_ENABLE_SLACK"));
    assert_eq!(
        DESCRIPTOR.disabled_message,
        Some("Slack connector not enabled")
    );
    let names: Vec<_> = DESCRIPTOR.env_vars.iter().map(|var| var.name).collect();
    assert_eq!(
        names,
        [
            "SLACK_CLIENT_ID",
            "SLACK_CLIENT_SECRET",
            "SLACK_SIGNING_SECRET",
            "NEXT_PUBLIC_ENABLE_SLACK"
        ]
    );
    let oauth = DESCRIPTOR.oauth.unwrap();
    assert_eq!(oauth.authorize_url, "https://slack.com/oauth/v2/authorize");
    assert_eq!(oauth.token_url, "https://slack.com/api/oauth.v2.access");
    assert_eq!(
        oauth.scope_parameter(),
        "chat:write,channels:read,channels:history,channels:join,app_mentions:read,users:read"
    );
    assert_eq!(oauth.client_auth, ClientAuthStyle::BasicHeader);
    assert!(oauth.pkce);
    assert_eq!(oauth.callback_path, "/slack/callback");
    let webhook = DESCRIPTOR.webhook.unwrap();
    assert_eq!(webhook.path, "/slack/events");
    assert_eq!(webhook.auth, WebhookAuth::App);
    let operations = (DESCRIPTOR.operations)();
    for operation in &operations {
        assert_eq!(
            operation.read_only,
            operation.name != "post_message",
            "{}",
            operation.name
        );
    }
}

#[tokio::test]
async fn forms_are_refused_with_a_hint_to_use_oauth() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let error = connector
        .authenticate(AuthRequest::Form(FormFields::default()))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    assert!(error.hint().unwrap().contains("OAuth"));
}

/// Runs the fake's authorize step and returns the code it redirected with.
async fn authorize(http: &HttpClient, fake: &FakeSlack, challenge: &str) -> String {
    let url = format!(
        "{}/oauth/v2/authorize?client_id={}&scope={}&redirect_uri={}&state=st-1&code_challenge={challenge}&code_challenge_method=S256",
        fake.base_url(),
        slack::CLIENT_ID,
        "chat:write,channels:read,channels:history,channels:join,app_mentions:read,users:read",
        slack::REDIRECT_URI,
    );
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status.as_u16(), 302);
    let location = url::Url::parse(response.header("location").unwrap()).unwrap();
    assert!(location.as_str().starts_with(slack::REDIRECT_URI));
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert!(pairs.contains(&("state".to_owned(), "st-1".to_owned())));
    pairs
        .into_iter()
        .find(|(key, _)| key == "code")
        .map(|(_, code)| code)
        .unwrap()
}

async fn exchange(http: &HttpClient, fake: &FakeSlack, form: &[(&str, &str)]) -> Value {
    http.post(&format!("{}/api/oauth.v2.access", fake.base_url()))
        .basic_auth(slack::CLIENT_ID, &SecretString::from(slack::CLIENT_SECRET))
        .form(form)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .unwrap()
}

fn challenge_of(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

#[tokio::test]
async fn an_install_through_the_fake_yields_routable_credentials() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let http = http_for(&fake);
    let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
    let code = authorize(&http, &fake, &challenge_of(verifier)).await;
    let wrong = exchange(
        &http,
        &fake,
        &[
            ("code", &code),
            ("redirect_uri", slack::REDIRECT_URI),
            ("code_verifier", "not-the-verifier"),
        ],
    )
    .await;
    assert_eq!(wrong["ok"], false);
    let answer = exchange(
        &http,
        &fake,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", slack::REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(answer["token_type"], "bot");
    assert_eq!(answer["team"]["id"], slack::TEAM_ID);
    let replay = exchange(
        &http,
        &fake,
        &[
            ("code", &code),
            ("redirect_uri", slack::REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await;
    assert_eq!(replay["error"], "invalid_code");

    let connector = connector_for(&fake);
    let credentials = connector
        .authenticate(AuthRequest::OAuth(grant_from_answer(&answer)))
        .await
        .unwrap();
    assert_eq!(
        credentials.config,
        json!({
            "team_id": slack::TEAM_ID,
            "team_name": slack::TEAM_NAME,
            "bot_user_id": slack::BOT_USER_ID,
            "app_id": slack::APP_ID,
            "installer_user_id": slack::INSTALLER_USER_ID,
            "granted_scopes": slack::BOT_SCOPES,
        })
    );
    assert_eq!(
        credentials.secrets.expose(),
        &json!({"access_token": BOT_TOKEN, "token_type": "bot"})
    );
    assert_eq!(
        connector.routing_key(&credentials.config).as_deref(),
        Some(slack::TEAM_ID)
    );
    assert_eq!(fake.token_requests(), 3);
}

#[tokio::test]
async fn an_unregistered_redirect_url_is_bad_redirect_uri_at_http_200() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let http = http_for(&fake);
    let code = authorize(&http, &fake, &challenge_of("v")).await;
    let answer = exchange(
        &http,
        &fake,
        &[
            ("code", &code),
            ("redirect_uri", "https://evil.example/slack/callback"),
        ],
    )
    .await;
    assert_eq!(answer, json!({"ok": false, "error": "bad_redirect_uri"}));
}

#[tokio::test]
async fn token_rotation_issues_refresh_tokens_that_work_once() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    fake.enable_rotation(43_200);
    let http = http_for(&fake);
    let verifier = "rotation-verifier-0123456789-0123456789-0123456789";
    let code = authorize(&http, &fake, &challenge_of(verifier)).await;
    let answer = exchange(
        &http,
        &fake,
        &[
            ("code", &code),
            ("redirect_uri", slack::REDIRECT_URI),
            ("code_verifier", verifier),
        ],
    )
    .await;
    let refresh = answer["refresh_token"].as_str().unwrap().to_owned();
    assert!(refresh.starts_with("xoxe-"), "{answer}");
    assert_eq!(answer["expires_in"], 43_200);
    let connector = connector_for(&fake);
    let credentials = connector
        .authenticate(AuthRequest::OAuth(grant_from_answer(&answer)))
        .await
        .unwrap();
    let secrets = credentials.secrets.expose().as_object().unwrap();
    let mut keys: Vec<_> = secrets.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["access_token", "expires_at", "refresh_token", "token_type"]
    );

    let refreshed = exchange(
        &http,
        &fake,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(refreshed["ok"], true);
    assert_ne!(refreshed["refresh_token"], answer["refresh_token"]);
    assert_ne!(refreshed["access_token"], answer["access_token"]);
    let reused = exchange(
        &http,
        &fake,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(reused["error"], "invalid_refresh_token");
    assert_eq!(fake.token_requests(), 3);
}

#[tokio::test]
async fn validation_reports_the_token_each_scope_channels_and_the_signing_secret() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let mut good = credentials(&connector, BOT_TOKEN).await;
    let report = connector.validate(&ctx(), &mut good).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    let ids: Vec<_> = report.check_ids();
    assert_eq!(
        ids,
        [
            "auth_test",
            "scope:chat:write",
            "scope:channels:read",
            "scope:channels:history",
            "scope:channels:join",
            "scope:app_mentions:read",
            "scope:users:read",
            "channels_list",
            "signing_secret"
        ]
    );
    assert!(report.checks[0].detail.contains(slack::TEAM_NAME));

    fake.set_granted_scopes(&["chat:write", "channels:read", "users:read"]);
    let report = connector.validate(&ctx(), &mut good).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Degraded);
    let failed: Vec<_> = report
        .checks
        .iter()
        .filter(|check| check.outcome == CheckOutcome::Failed)
        .map(|check| check.id.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "scope:channels:history",
            "scope:channels:join",
            "scope:app_mentions:read"
        ]
    );

    let mut revoked = credentials(&connector, "xoxb-not-issued-by-the-fake").await;
    let report = connector.validate(&ctx(), &mut revoked).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    assert_eq!(report.checks[0].outcome, CheckOutcome::Failed);
    assert!(report.checks[0]
        .detail
        .starts_with("Invalid or expired token"));
    assert!(report.checks[1..8]
        .iter()
        .all(|check| check.outcome == CheckOutcome::Skipped));

    let unsigned = SlackConnector::new(http_for(&fake), None);
    let unsigned: std::sync::Arc<dyn patchbay_core::DynConnector> = std::sync::Arc::new(unsigned);
    let mut credentials = credentials(&unsigned, BOT_TOKEN).await;
    let report = unsigned.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    let signing = report.checks.last().unwrap();
    assert_eq!(signing.id, "signing_secret");
    assert_ne!(signing.outcome, CheckOutcome::Ok);
    assert!(
        signing.detail.contains("SLACK_SIGNING_SECRET"),
        "{}",
        signing.detail
    );
}

async fn query_error(fake: &FakeSlack, operation: &str, params: Value) -> Error {
    let connector = connector_for(fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    connector
        .query(&ctx(), &credentials, operation, params)
        .await
        .unwrap_err()
}

#[tokio::test]
async fn slack_error_codes_become_errors_users_can_act_on() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let error = query_error(
        &fake,
        "get_channel_history",
        json!({"channel": slack::OUTSIDE_CHANNEL}),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        error.message(),
        "Bot is not a member of channel C0OUTSIDE1. The bot must be invited to the channel first."
    );
    assert!(error.hint().unwrap().contains("channels:join"));
    assert_eq!(error.provider_status(), Some(200));

    let error = query_error(
        &fake,
        "get_channel_history",
        json!({"channel": "C0NOSUCH00"}),
    )
    .await;
    assert_eq!(error.kind(), ErrorKind::NotFound);

    fake.set_granted_scopes(&["channels:read"]);
    let error = query_error(&fake, "get_user", json!({"user": slack::INSTALLER_USER_ID})).await;
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(error.message().contains("`users:read`"), "{error}");

    let connector = connector_for(&fake);
    let stale = credentials(&connector, "xoxb-revoked-elsewhere").await;
    let error = connector
        .query(&ctx(), &stale, "list_channels", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert_eq!(error.message(), "Invalid or expired token");
}

#[tokio::test]
async fn rate_limits_are_retried_after_retry_after_then_reported() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    fake.inject(
        "users.info",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let started = std::time::Instant::now();
    connector
        .query(
            &ctx(),
            &credentials,
            "get_user",
            json!({"user": slack::BOT_USER_ID}),
        )
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.requests_to("users.info").len(), 2);

    for _ in 0..3 {
        fake.inject(
            "users.info",
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        );
    }
    let error = connector
        .query(
            &ctx(),
            &credentials,
            "get_user",
            json!({"user": slack::BOT_USER_ID}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));

    fake.inject("users.info", Fault::SlackError("ratelimited"));
    let error = connector
        .query(
            &ctx(),
            &credentials,
            "get_user",
            json!({"user": slack::BOT_USER_ID}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
}

#[tokio::test]
async fn list_channels_follows_cursors_in_pages_of_at_most_200() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let output = connector
        .query(
            &ctx(),
            &credentials,
            "list_channels",
            json!({"limit": 1000}),
        )
        .await
        .unwrap();
    let channels = output.data["channels"].as_array().unwrap();
    assert_eq!(channels.len(), fake.public_channel_count(true));
    assert!(output.next_cursor.is_none());
    let limits: Vec<_> = fake
        .requests_to("conversations.list")
        .iter()
        .map(|request| request.param("limit").unwrap().to_owned())
        .collect();
    assert_eq!(limits, ["200", "200"]);
    let general = channels
        .iter()
        .find(|channel| channel["id"] == slack::GENERAL_CHANNEL)
        .unwrap();
    assert_eq!(general["is_member"], true);

    let first = connector
        .query(
            &ctx(),
            &credentials,
            "list_channels",
            json!({"limit": 30, "exclude_archived": false}),
        )
        .await
        .unwrap();
    let cursor = first.next_cursor.clone().unwrap();
    let second = connector
        .query(
            &ctx(),
            &credentials,
            "list_channels",
            json!({"limit": 1000, "exclude_archived": false, "cursor": cursor}),
        )
        .await
        .unwrap();
    assert_eq!(
        first.data["channels"].as_array().unwrap().len()
            + second.data["channels"].as_array().unwrap().len(),
        fake.public_channel_count(false)
    );
}

#[tokio::test]
async fn channel_history_defaults_to_24_hours_and_pages_with_slack_ts_bounds() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let first = connector
        .query(
            &ctx(),
            &credentials,
            "get_channel_history",
            json!({"channel": slack::GENERAL_CHANNEL, "limit": 200}),
        )
        .await
        .unwrap();
    assert_eq!(first.data["messages"].as_array().unwrap().len(), 200);
    assert_eq!(first.data["has_more"], true);
    let sent = &fake.requests_to("conversations.history")[0];
    for bound in ["oldest", "latest"] {
        let value = sent.param(bound).unwrap();
        let (seconds, micros) = value.split_once('.').unwrap();
        assert!(seconds.len() == 10 && micros.len() == 6, "{bound}={value}");
    }
    let window: f64 = sent.param("latest").unwrap().parse::<f64>().unwrap()
        - sent.param("oldest").unwrap().parse::<f64>().unwrap();
    assert!((window - 86_400.0).abs() < 1.0, "{window}");
    let cursor = first.next_cursor.clone().unwrap();
    let second = connector
        .query(
            &ctx(),
            &credentials,
            "get_channel_history",
            json!({"channel": slack::GENERAL_CHANNEL, "limit": 200, "cursor": cursor}),
        )
        .await
        .unwrap();
    assert_eq!(second.data["messages"].as_array().unwrap().len(), 88);
    assert!(second.next_cursor.is_none());
    let first_ts: Vec<_> = first.data["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ts"].clone())
        .collect();
    assert!(second.data["messages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|message| !first_ts.contains(&message["ts"])));

    let replies = connector
        .query(
            &ctx(),
            &credentials,
            "get_thread_replies",
            json!({"channel": slack::INCIDENTS_CHANNEL, "ts": slack::THREAD_TS}),
        )
        .await
        .unwrap();
    assert_eq!(replies.data["messages"].as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn post_message_is_a_write_that_is_never_retried() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let output = connector
        .query(
            &ctx(),
            &credentials,
            "post_message",
            json!({"channel": slack::INCIDENTS_CHANNEL, "text": "on it", "thread_ts": slack::THREAD_TS}),
        )
        .await
        .unwrap();
    assert_eq!(output.data["channel"], slack::INCIDENTS_CHANNEL);
    let posted = fake.posted();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].1["thread_ts"], slack::THREAD_TS);
    let request = &fake.requests_to("chat.postMessage")[0];
    assert_eq!(request.http_method, "POST");
    assert!(request.bearer);

    for fault in [Fault::ServerError, Fault::Unavailable] {
        fake.inject("chat.postMessage", fault);
        let before = fake.requests_to("chat.postMessage").len();
        let error = connector
            .query(
                &ctx(),
                &credentials,
                "post_message",
                json!({"channel": slack::GENERAL_CHANNEL, "text": "once"}),
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(fake.requests_to("chat.postMessage").len(), before + 1);
    }
    assert_eq!(fake.posted().len(), 1);
}

#[tokio::test]
async fn the_cursor_is_sealed_and_slack_gets_its_own_back() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let mut cursor = None;
    let mut seen = Vec::new();
    for page in 1.. {
        let mut params = json!({"channel": slack::GENERAL_CHANNEL, "limit": 100});
        if let Some(cursor) = cursor.take() {
            params["cursor"] = json!(cursor);
        }
        let output = connector
            .query(&ctx(), &credentials, "get_channel_history", params)
            .await
            .unwrap();
        seen.extend(
            output.data["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|message| message["ts"].clone()),
        );
        let Some(next) = output.next_cursor else {
            assert_eq!(page, 3);
            break;
        };
        cursor = Some(next);
    }
    let unique: std::collections::BTreeSet<_> = seen.iter().map(Value::to_string).collect();
    assert_eq!((seen.len(), unique.len()), (288, 288));

    let sent: Vec<_> = fake
        .requests_to("conversations.history")
        .iter()
        .map(|request| request.param("cursor").map(str::to_owned))
        .collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0], None);
    // Slack receives the cursor it issued, never the sealed one callers see.
    for provider_cursor in sent[1..].iter().flatten() {
        assert!(!provider_cursor.starts_with("pb1."), "{provider_cursor}");
    }
}

#[tokio::test]
async fn a_cursor_of_channel_history_is_refused_by_list_channels() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let history = connector
        .query(
            &ctx(),
            &credentials,
            "get_channel_history",
            json!({"channel": slack::GENERAL_CHANNEL, "limit": 10}),
        )
        .await
        .unwrap();
    let cursor = history.next_cursor.unwrap();
    let before = fake.requests_to("conversations.list").len();
    let error = connector
        .query(
            &ctx(),
            &credentials,
            "list_channels",
            json!({"limit": 10, "cursor": cursor}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.field()),
        (ErrorKind::InvalidInput, Some("cursor"))
    );
    assert_eq!(
        error.message(),
        "`cursor` must be a `next_cursor` that `list_channels` returned on this connection; got a cursor of `get_channel_history`"
    );
    assert_eq!(fake.requests_to("conversations.list").len(), before);
}

#[tokio::test]
async fn limits_out_of_range_and_unknown_parameters_name_the_field() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let cases = [
        (
            "list_channels",
            json!({"limit": 0}),
            "limit",
            "`limit` must be from 1 to 1000; got 0",
        ),
        (
            "get_channel_history",
            json!({"channel": slack::GENERAL_CHANNEL, "limit": 201}),
            "limit",
            "`limit` must be from 1 to 200; got 201",
        ),
        (
            "get_thread_replies",
            json!({"channel": slack::INCIDENTS_CHANNEL, "ts": slack::THREAD_TS, "limit": 500}),
            "limit",
            "`limit` must be from 1 to 200; got 500",
        ),
        (
            "get_channel_history",
            json!({"channel": slack::GENERAL_CHANNEL, "count": 10}),
            "count",
            "`get_channel_history` has no parameter `count`; it takes: channel, inclusive, latest, limit, oldest, cursor",
        ),
        (
            "post_message",
            json!({"channel": slack::GENERAL_CHANNEL, "text": "hi", "cursor": "x"}),
            "cursor",
            "`post_message` has no parameter `cursor`; it takes: channel, text, thread_ts",
        ),
    ];
    for (operation, params, field, message) in cases {
        let error = query_error(&fake, operation, params).await;
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{operation}: {error}"
        );
        assert_eq!(error.field(), Some(field), "{operation}: {error}");
        assert_eq!(error.message(), message);
    }
    assert!(fake.requests_to("conversations.list").is_empty());
    assert!(fake.requests_to("conversations.history").is_empty());
    assert!(fake.requests_to("conversations.replies").is_empty());
    assert!(fake.posted().is_empty());

    let error = query_error(&fake, "user_info", json!({"user": slack::BOT_USER_ID})).await;
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.message(), "unknown operation `user_info` for slack");
    assert_eq!(
        error.hint(),
        Some("use one of: list_channels, get_channel_history, get_thread_replies, get_user, post_message")
    );
}

#[tokio::test]
async fn a_history_larger_than_256_kib_is_capped_and_marked_truncated() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let output = connector
        .query(
            &ctx(),
            &credentials,
            "get_channel_history",
            json!({"channel": slack::ALERTS_CHANNEL}),
        )
        .await
        .unwrap();
    let size = serde_json::to_vec(&output.data).unwrap().len();
    assert!(size <= patchbay_core::MAX_OUTPUT_BYTES, "{size}");
    assert!(output.truncated);
    let kept = output.data["messages"].as_array().unwrap().len();
    assert!(kept > 1 && kept < 100, "{kept}");
    assert_eq!(output.data["channel"], slack::ALERTS_CHANNEL);
    assert!(output.next_cursor.is_some());
}

#[tokio::test]
async fn revoke_calls_auth_revoke_with_the_bot_token() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let outcome = connector.revoke(&ctx(), &credentials, None).await.unwrap();
    assert_eq!(outcome, RevokeOutcome::Revoked);
    assert!(fake.is_revoked(BOT_TOKEN));
    let error = connector
        .query(&ctx(), &credentials, "list_channels", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    let again = connector.revoke(&ctx(), &credentials, None).await.unwrap();
    assert_eq!(again, RevokeOutcome::Revoked);
}
