//! The Grafana connector. It connects with an API key,
//! proves the credentials with a read of the account, offers a paged read
//! operation (`list_items`) and normalises HMAC-signed webhooks into alerts.
//!
//! The provider's API base, paths and payload shapes are placeholders
//! (`https://api.example.invalid`, `/v1/account`, `/v1/items`, the webhook payload) that
//! the fake in `src/fake.rs` answers; replace them with Grafana's own. See the crate
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
    Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, Error, FromEnv,
    QueryOutput, Result, UnverifiedDelivery, ValidationReport, VerifiedDelivery, WebhookAuth,
    WebhookDescriptor, WebhookMethod, WebhookOutcome,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, GrafanaSecrets};
use client::GrafanaClient;
pub use config::GrafanaConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "grafana";

/// What the registry knows about the Grafana connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Grafana",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/grafana/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::Signature,
    }),
    oauth: None,
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<GrafanaConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Grafana connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct GrafanaConnector {
    http: HttpClient,
}

impl GrafanaConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for GrafanaConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const ACCOUNT_CHECK: (&str, &str) = (
    "account",
    "Grafana accepts the credentials and names their account (GET /v1/account)",
);
const ITEMS_CHECK: (&str, &str) = (
    "items_read",
    "The credentials can list items (GET /v1/items?limit=1)",
);

#[async_trait]
impl Connector for GrafanaConnector {
    type Config = GrafanaConfig;
    type Secrets = GrafanaSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<GrafanaConfig, GrafanaSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            _ => Err(
                Error::unsupported("Grafana connects with a form, not through OAuth")
                    .with_connector(CONNECTOR_ID)
                    .with_hint(
                        "send the connect form's fields (see the connector's connect schema)",
                    ),
            ),
        }
    }

    /// Proves the credentials by reading the account (mandatory), then checks that
    /// items can be listed; fills the account name.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<GrafanaConfig, GrafanaSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Grafana credentials");
        let client = GrafanaClient::new(&self.http, credentials)?;
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
        credentials: &Credentials<GrafanaConfig, GrafanaSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Grafana query");
        let client = GrafanaClient::new(&self.http, credentials)?;
        query::run(&client, ctx, operation, params).await
    }

    /// Checks `X-Grafana-Signature` with the connection's webhook secret.
    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<GrafanaConfig, GrafanaSecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        let secret = credentials.and_then(|credentials| credentials.webhook_secret.as_ref());
        webhook::verify(secret, delivery)
    }

    /// Normalises a delivery whose signature was verified.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &GrafanaConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        Ok(WebhookOutcome {
            events: vec![webhook::normalize(delivery)?],
            reply: None,
        })
    }
}
