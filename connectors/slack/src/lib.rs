//! The Slack connector: a workspace connects by installing the Slack app through
//! OAuth v2 (the host runs the flow; this crate declares it and reads the grant),
//! validation proves the bot token and each bot scope, queries read channels,
//! history, threads and users and post messages, and signed Events API
//! deliveries (`app_mention`) become chat triggers.
//!
//! See the crate README for the Slack app setup and the event subscription. With
//! the `fake` feature, the `fake` module serves a Slack on loopback for tests.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;
pub mod webhook;

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::Utc;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, ErrorKind, FromEnv, NoSecrets, OAuthClientCredentials, OAuthSpec, QueryOutput,
    Result, RevokeOutcome, SecretString, UnverifiedDelivery, ValidationReport, VerifiedDelivery,
    WebhookAuth, WebhookDescriptor, WebhookMethod, WebhookOutcome, WebhookRoute,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{from_grant, BOT_SCOPES};
use client::{CallContext, SlackClient};
pub use config::{ConnectOptions, SlackConfig};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "slack";
/// The feature flag that enables the connector.
pub const FEATURE_FLAG: &str = "NEXT_PUBLIC_ENABLE_SLACK";
/// The environment variable holding the OAuth client id.
pub const CLIENT_ID_VAR: &str = "SLACK_CLIENT_ID";
/// The environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_VAR: &str = "SLACK_CLIENT_SECRET";
/// The environment variable holding the app's signing secret (events).
pub const SIGNING_SECRET_VAR: &str = "SLACK_SIGNING_SECRET";
/// Where Slack posts Events API deliveries.
pub const EVENTS_PATH: &str = "/slack/events";

/// A source of the current time; injectable so signature tests can use Slack's fixed vectors.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// What the registry knows about the Slack connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Slack",
    category: Category::Communication,
    auth_kinds: &[AuthKind::Oauth2],
    env_vars: &[
        EnvVar {
            name: CLIENT_ID_VAR,
            required: true,
            secret: false,
            description: "The Slack app's Client ID (Basic Information > App Credentials).",
        },
        EnvVar {
            name: CLIENT_SECRET_VAR,
            required: true,
            secret: true,
            description: "The Slack app's Client Secret (Basic Information > App Credentials).",
        },
        EnvVar {
            name: SIGNING_SECRET_VAR,
            required: true,
            secret: true,
            description:
                "The Slack app's Signing Secret; verifies Events API deliveries to /slack/events.",
        },
        EnvVar {
            name: FEATURE_FLAG,
            required: false,
            secret: false,
            description: "Set to `true` to enable the Slack connector.",
        },
    ],
    feature_flag: Some(FEATURE_FLAG),
    disabled_message: Some("Slack connector not enabled"),
    webhook: Some(WebhookDescriptor {
        path: EVENTS_PATH,
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::App,
    }),
    oauth: Some(OAuthSpec {
        authorize_url: "https://slack.com/oauth/v2/authorize",
        token_url: "https://slack.com/api/oauth.v2.access",
        revoke_url: Some("https://slack.com/api/auth.revoke"),
        api_base_url: Some(client::API_BASE),
        start_options: &[],
        scopes: BOT_SCOPES,
        scope_separator: ",",
        extra_authorize_params: &[],
        client_auth: ClientAuthStyle::BasicHeader,
        pkce: true,
        client_id_env: &[CLIENT_ID_VAR],
        client_secret_env: &[CLIENT_SECRET_VAR],
        callback_path: "/slack/callback",
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectOptions>,
    operations: query::descriptors,
    build: build_from_env::<SlackConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Slack connector: the shared HTTP client, the app's signing secret and a clock.
#[derive(Clone)]
pub struct SlackConnector {
    http: HttpClient,
    signing_secret: Option<SecretString>,
    clock: Clock,
}

impl std::fmt::Debug for SlackConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConnector")
            .field("http", &self.http)
            .field("signing_secret", &self.signing_secret)
            .finish_non_exhaustive()
    }
}

impl SlackConnector {
    /// A connector using the system clock; `signing_secret` verifies events (none rejects them all).
    pub fn new(http: HttpClient, signing_secret: Option<SecretString>) -> Self {
        Self::with_clock(http, signing_secret, Arc::new(SystemTime::now))
    }

    /// A connector whose event timestamp checks use `clock`.
    pub fn with_clock(
        http: HttpClient,
        signing_secret: Option<SecretString>,
        clock: Clock,
    ) -> Self {
        Self {
            http,
            signing_secret: signing_secret.filter(|secret| !secret.is_empty()),
            clock,
        }
    }
}

impl FromEnv for SlackConnector {
    /// A connector configured from `env`: `SLACK_SIGNING_SECRET` and the HTTP
    /// client settings (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        let signing_secret = env
            .get(SIGNING_SECRET_VAR)
            .map(|secret| SecretString::new(secret.trim().to_owned()));
        Ok(Self::new(HttpClient::from_env(env)?, signing_secret))
    }
}

const AUTH_CHECK: (&str, &str) = (
    "auth_test",
    "The bot token is valid (auth.test names the workspace and bot user)",
);
const CHANNELS_CHECK: (&str, &str) = (
    "channels_list",
    "The bot can list public channels (conversations.list?limit=1)",
);
const SIGNING_CHECK: (&str, &str) = (
    "signing_secret",
    "SLACK_SIGNING_SECRET is set, so Events API deliveries can be verified",
);

fn scope_check_id(scope: &str) -> String {
    format!("scope:{scope}")
}

fn scope_check_description(scope: &str) -> String {
    let purpose = match scope {
        "chat:write" => "send messages",
        "channels:read" => "list channels",
        "channels:history" => "read channel messages",
        "channels:join" => "join public channels",
        "app_mentions:read" => "receive @mentions",
        _ => "get user info",
    };
    format!("The bot token has the `{scope}` scope ({purpose})")
}

#[async_trait]
impl Connector for SlackConnector {
    type Config = SlackConfig;
    type Secrets = NoSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<SlackConfig, NoSecrets>> {
        let AuthRequest::OAuth(grant) = request else {
            return Err(Error::unsupported("Slack connects through OAuth, not a form")
                .with_connector(CONNECTOR_ID)
                .with_hint("use Connect Slack (the OAuth flow at /slack/callback) to install the app in a workspace"));
        };
        let (config, tokens) = from_grant(grant)?;
        Ok(Credentials::new(config, NoSecrets {}).with_tokens(tokens))
    }

    /// Proves the token with `auth.test`, then reports each bot scope, channel
    /// listing and whether events can be verified.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<SlackConfig, NoSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Slack credentials");
        let client = SlackClient::new(&self.http, credentials.access_token(CONNECTOR_ID)?);
        let mut config = credentials.config.clone();
        let (auth_id, auth_description) = AUTH_CHECK;
        let (channels_id, channels_description) = CHANNELS_CHECK;
        let (signing_id, signing_description) = SIGNING_CHECK;

        let timer = CheckTimer::start();
        let auth_result = client
            .read("auth.test", &[], CallContext::default())
            .await
            .map(|(body, response)| {
                refine_config(&mut config, &body, response.header("x-oauth-scopes"));
                let team = body.get("team").and_then(Value::as_str).unwrap_or("?");
                let user = body.get("user").and_then(Value::as_str).unwrap_or("?");
                format!("workspace `{team}`, bot user `{user}`")
            });
        let auth_check = timer.finish(auth_id, auth_description, true, auth_result);
        let signing_check = CheckTimer::start().finish(
            signing_id,
            signing_description,
            true,
            match &self.signing_secret {
                Some(_) => Ok(format!("{SIGNING_SECRET_VAR} is set")),
                None => Err(Error::invalid_config(
                    SIGNING_SECRET_VAR,
                    format!("{SIGNING_SECRET_VAR} is not set: every Slack event will be rejected"),
                )
                .with_hint("copy the Signing Secret from the Slack app's Basic Information page into SLACK_SIGNING_SECRET and restart")),
            },
        );
        let mut checks = vec![auth_check];
        if checks[0].outcome != CheckOutcome::Ok {
            checks.extend(BOT_SCOPES.iter().map(|scope| {
                CheckTimer::skipped(
                    &scope_check_id(scope),
                    &scope_check_description(scope),
                    false,
                )
            }));
            checks.push(CheckTimer::skipped(
                channels_id,
                channels_description,
                false,
            ));
            checks.push(signing_check);
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }
        for scope in BOT_SCOPES {
            let result = if config.has_scope(scope) {
                Ok("granted".to_owned())
            } else {
                Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("the bot token lacks `{scope}`"),
                )
                .with_hint(format!(
                    "add `{scope}` under OAuth & Permissions > Bot Token Scopes, then reinstall the app"
                )))
            };
            checks.push(CheckTimer::start().finish(
                &scope_check_id(scope),
                &scope_check_description(scope),
                false,
                result,
            ));
        }
        let timer = CheckTimer::start();
        let channels_result = client
            .read(
                "conversations.list",
                &[
                    ("types", "public_channel".to_owned()),
                    ("limit", "1".to_owned()),
                ],
                CallContext::default(),
            )
            .await
            .map(|_| "public channels are listable".to_owned());
        checks.push(timer.finish(channels_id, channels_description, false, channels_result));
        checks.push(signing_check);
        credentials.config = config;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<SlackConfig, NoSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Slack query");
        let client = SlackClient::new(&self.http, credentials.access_token(CONNECTOR_ID)?);
        let api = query::SlackApi::new(&client, &credentials.config, Utc::now());
        query::run(&api, ctx, operation, params).await
    }

    /// Checks the signature and the five-minute timestamp window with the app's
    /// signing secret (Slack events are app-level: there are no connection credentials).
    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        _credentials: Option<&Credentials<SlackConfig, NoSecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        webhook::verify(self.signing_secret.as_ref(), delivery, (self.clock)())
    }

    async fn route_webhook(&self, delivery: &VerifiedDelivery) -> Result<WebhookRoute> {
        webhook::route(delivery)
    }

    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &SlackConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        if let Some(retry) = delivery.header(webhook::RETRY_NUM_HEADER) {
            tracing::debug!(retry, "Slack redelivery; the store dedups it by event_id");
        }
        webhook::normalize(delivery)
    }

    fn routing_key(&self, config: &SlackConfig) -> Option<String> {
        Some(config.team_id.clone())
    }

    async fn revoke(
        &self,
        _ctx: &ConnectorContext,
        credentials: &Credentials<SlackConfig, NoSecrets>,
        _client: Option<&OAuthClientCredentials>,
    ) -> Result<RevokeOutcome> {
        let client = SlackClient::new(&self.http, credentials.access_token(CONNECTOR_ID)?);
        match client.revoke().await {
            Ok(_) => Ok(RevokeOutcome::Revoked),
            // A token Slack no longer accepts is already revoked.
            Err(error) if error.kind() == ErrorKind::AuthFailed => Ok(RevokeOutcome::Revoked),
            Err(error) => Err(error),
        }
    }
}

/// Fills what `auth.test` reports and the scopes Slack lists in `X-OAuth-Scopes`.
fn refine_config(config: &mut SlackConfig, body: &Value, scopes_header: Option<&str>) {
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    if let Some(team) = text("team") {
        config.team_name = Some(team);
    }
    if let Some(user_id) = text("user_id") {
        config.bot_user_id = Some(user_id);
    }
    if let Some(enterprise_id) = text("enterprise_id") {
        config.enterprise_id = Some(enterprise_id);
    }
    if let Some(scopes) = scopes_header {
        let scopes = auth::split_scopes(scopes);
        if !scopes.is_empty() {
            config.granted_scopes = scopes;
        }
    }
}
