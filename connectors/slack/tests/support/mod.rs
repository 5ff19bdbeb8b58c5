//! Shared set-up: a connector pointed at the fake Slack, and grants as the OAuth engine hands them over.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::SystemTime;

use patchbay_connector_slack::fake::{self as slack, FakeSlack};
use patchbay_connector_slack::SlackConnector;
use patchbay_core::{
    AuthRequest, ConnectorContext, DynConnector, DynCredentials, OAuthGrant, SecretString,
};
use patchbay_http::HttpClient;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Map, Value};

pub const BOT_TOKEN: &str = "xoxb-canary-bot-token-4f1c9e2a";
pub const SIGNING_SECRET: &str = "canary-signing-secret-77ab31";

pub fn http_for(fake: &FakeSlack) -> HttpClient {
    patchbay_testkit::http::client_for_fake(&fake.override_spec())
}

pub fn connector_for(fake: &FakeSlack) -> Arc<dyn DynConnector> {
    Arc::new(SlackConnector::new(
        http_for(fake),
        Some(SecretString::from(SIGNING_SECRET)),
    ))
}

pub fn connector_at(fake: &FakeSlack, now: SystemTime) -> Arc<dyn DynConnector> {
    Arc::new(SlackConnector::with_clock(
        http_for(fake),
        Some(SecretString::from(SIGNING_SECRET)),
        Arc::new(move || now),
    ))
}

/// The grant the OAuth engine builds from the fake's `oauth.v2.access` answer for `token`.
pub fn grant(token: &str) -> OAuthGrant {
    let extra = json!({
        "ok": true,
        "bot_user_id": slack::BOT_USER_ID,
        "app_id": slack::APP_ID,
        "team": {"id": slack::TEAM_ID, "name": slack::TEAM_NAME},
        "enterprise": null,
        "is_enterprise_install": false,
        "authed_user": {"id": slack::INSTALLER_USER_ID},
    });
    OAuthGrant {
        access_token: token.into(),
        refresh_token: None,
        expires_at: None,
        scopes: slack::BOT_SCOPES
            .iter()
            .map(|scope| (*scope).to_owned())
            .collect(),
        token_type: Some("bot".to_owned()),
        extra: extra.as_object().cloned().unwrap_or_default(),
        options: Map::new(),
    }
}

/// An engine-style grant from a raw `oauth.v2.access` answer: tokens lifted out, the rest kept.
pub fn grant_from_answer(answer: &Value) -> OAuthGrant {
    let mut extra = answer.as_object().cloned().unwrap_or_default();
    let take = |extra: &mut Map<String, Value>, key: &str| {
        extra
            .remove(key)
            .and_then(|value| value.as_str().map(str::to_owned))
    };
    let access_token = take(&mut extra, "access_token").unwrap_or_default();
    let refresh_token = take(&mut extra, "refresh_token");
    let token_type = take(&mut extra, "token_type");
    let scopes = take(&mut extra, "scope")
        .map(|scope| scope.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let expires_at = extra
        .remove("expires_in")
        .and_then(|value| value.as_i64())
        .map(|seconds| chrono::Utc::now() + chrono::TimeDelta::seconds(seconds));
    OAuthGrant {
        access_token: access_token.into(),
        refresh_token: refresh_token.map(SecretString::new),
        expires_at,
        scopes,
        token_type,
        extra,
        options: Map::new(),
    }
}

pub async fn credentials(connector: &Arc<dyn DynConnector>, token: &str) -> DynCredentials {
    connector
        .authenticate(AuthRequest::OAuth(grant(token)))
        .await
        .unwrap()
}

pub fn ctx() -> ConnectorContext {
    ConnectorContext::default()
}

pub fn now_seconds() -> String {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}
