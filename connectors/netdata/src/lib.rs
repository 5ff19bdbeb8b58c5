//! The Netdata connector. It connects with an API key,
//! proves the credentials with a read of the account, offers a paged read
//! operation (`list_items`) and normalises token-authenticated webhooks into alerts.
//!
//! The provider's API base, paths and payload shapes are placeholders
//! (`https://api.example.invalid`, `/v1/account`, `/v1/items`, the webhook payload) that
//! the fake in `src/fake.rs` answers; replace them with Netdata's own. See the crate
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
    QueryOutput, Result, ValidationReport, VerifiedDelivery, WebhookAuth, WebhookDescriptor,
    WebhookMethod, WebhookOutcome,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, NetdataSecrets};
use client::NetdataClient;
pub use config::NetdataConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "netdata";

/// The header Netdata is told to send with the per-connection webhook token.
pub const WEBHOOK_TOKEN_HEADER: &str = "X-Patchbay-Token";

/// What the registry knows about the Netdata connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Netdata",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/netdata/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::Token {
            header: WEBHOOK_TOKEN_HEADER,
        },
    }),
    oauth: None,
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<NetdataConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Netdata connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct NetdataConnector {
    http: HttpClient,
}

impl NetdataConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for NetdataConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const ACCOUNT_CHECK: (&str, &str) = (
    "account",
    "Netdata accepts the credentials and names their account (GET /v1/account)",
);
const ITEMS_CHECK: (&str, &str) = (
    "items_read",
    "The credentials can list items (GET /v1/items?limit=1)",
);

#[async_trait]
impl Connector for NetdataConnector {
    type Config = NetdataConfig;
    type Secrets = NetdataSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<NetdataConfig, NetdataSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            _ => Err(
                Error::unsupported("Netdata connects with a form, not through OAuth")
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
        credentials: &mut Credentials<NetdataConfig, NetdataSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Netdata credentials");
        let client = NetdataClient::new(&self.http, credentials)?;
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
        credentials: &Credentials<NetdataConfig, NetdataSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Netdata query");
        let client = NetdataClient::new(&self.http, credentials)?;
        query::run(&client, ctx, operation, params).await
    }

    /// Normalises a delivery whose token the host verified.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &NetdataConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        Ok(WebhookOutcome {
            events: vec![webhook::normalize(delivery)?],
            reply: None,
        })
    }
}
