//! The PagerDuty connector. It connects with OAuth 2.0 or an API key,
//! proves the credentials with a read of the account, offers a paged read
//! operation (`list_items`) and normalises HMAC-signed webhooks into alerts.
//!
//! The provider's API base, paths and payload shapes are placeholders
//! (`https://api.example.invalid`, `/v1/account`, `/v1/items`, the webhook payload) that
//! the fake in `src/fake.rs` answers; replace them with PagerDuty's own. See the crate
//! README for the connect fields, checks and operations.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;
pub mod webhook;

use async_trait::async_trait;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, FromEnv, OAuthSpec, QueryOutput, Result, UnverifiedDelivery, ValidationReport,
    VerifiedDelivery, WebhookAuth, WebhookDescriptor, WebhookMethod, WebhookOutcome,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, PagerdutySecrets};
use client::PagerdutyClient;
pub use config::PagerdutyConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "pagerduty";

/// The environment variable holding the OAuth client id.
pub const CLIENT_ID_VAR: &str = "PAGERDUTY_CLIENT_ID";
/// The environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_VAR: &str = "PAGERDUTY_CLIENT_SECRET";
/// The OAuth scopes requested; placeholders for the read-only scopes PagerDuty offers.
pub const OAUTH_SCOPES: &[&str] = &["read"];

/// What the registry knows about the PagerDuty connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "PagerDuty",
    category: Category::Observability,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::ApiKey],
    env_vars: &[
        EnvVar {
            name: CLIENT_ID_VAR,
            required: false,
            secret: false,
            description: "Client ID of the PagerDuty OAuth app (needed for OAuth connections only)",
        },
        EnvVar {
            name: CLIENT_SECRET_VAR,
            required: false,
            secret: true,
            description:
                "Client secret of the PagerDuty OAuth app (needed for OAuth connections only)",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/pagerduty/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::Signature,
    }),
    // Placeholder endpoints: replace them with PagerDuty's authorize and token URLs.
    oauth: Some(OAuthSpec {
        authorize_url: "https://example.invalid/oauth/authorize",
        token_url: "https://example.invalid/oauth/token",
        revoke_url: None,
        api_base_url: Some(client::API_BASE),
        start_options: &[],
        scopes: OAUTH_SCOPES,
        scope_separator: " ",
        extra_authorize_params: &[],
        client_auth: ClientAuthStyle::BasicHeader,
        pkce: true,
        client_id_env: &[CLIENT_ID_VAR],
        client_secret_env: &[CLIENT_SECRET_VAR],
        callback_path: "/pagerduty/callback",
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<PagerdutyConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The PagerDuty connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct PagerdutyConnector {
    http: HttpClient,
}

impl PagerdutyConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for PagerdutyConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const ACCOUNT_CHECK: (&str, &str) = (
    "account",
    "PagerDuty accepts the credentials and names their account (GET /v1/account)",
);
const ITEMS_CHECK: (&str, &str) = (
    "items_read",
    "The credentials can list items (GET /v1/items?limit=1)",
);

#[async_trait]
impl Connector for PagerdutyConnector {
    type Config = PagerdutyConfig;
    type Secrets = PagerdutySecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<PagerdutyConfig, PagerdutySecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            AuthRequest::OAuth(grant) => {
                let (config, tokens) =
                    auth::from_grant(grant).map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, PagerdutySecrets::default()).with_tokens(tokens))
            }
            _ => Err(
                Error::unsupported("PagerDuty connects with its form or through OAuth")
                    .with_connector(CONNECTOR_ID),
            ),
        }
    }

    /// Proves the credentials by reading the account (mandatory), then checks that
    /// items can be listed; fills the account name.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<PagerdutyConfig, PagerdutySecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating PagerDuty credentials");
        let client = PagerdutyClient::new(&self.http, credentials)?;
        let (account_id, account_description) = ACCOUNT_CHECK;
        let (items_id, items_description) = ITEMS_CHECK;

        let timer = CheckTimer::start();
        let account = client.account().await;
        let account_name = account.as_ref().ok().map(|account| account.name.clone());
        let account_check = timer.finish(
            account_id,
            account_description,
            true,
            account.map(|account| format!("account `{}`", account.name)),
        );
        if account_check.outcome != CheckOutcome::Ok {
            let items_check = CheckTimer::skipped(items_id, items_description, false);
            return Ok(ValidationReport::new(
                CONNECTOR_ID,
                vec![account_check, items_check],
            ));
        }

        let timer = CheckTimer::start();
        let items = client
            .probe_items()
            .await
            .map(|()| "items are readable".to_owned());
        let items_check = timer.finish(items_id, items_description, false, items);
        credentials.config.account_name = account_name;
        Ok(ValidationReport::new(
            CONNECTOR_ID,
            vec![account_check, items_check],
        ))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<PagerdutyConfig, PagerdutySecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "PagerDuty query");
        let client = PagerdutyClient::new(&self.http, credentials)?;
        query::run(&client, ctx, operation, params).await
    }

    /// Checks `X-Pagerduty-Signature` with the connection's webhook secret.
    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<PagerdutyConfig, PagerdutySecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        let secret = credentials.and_then(|credentials| credentials.webhook_secret.as_ref());
        webhook::verify(secret, delivery)
    }

    /// Normalises a delivery whose signature was verified.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &PagerdutyConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        Ok(WebhookOutcome {
            events: vec![webhook::normalize(delivery)?],
            reply: None,
        })
    }
}
