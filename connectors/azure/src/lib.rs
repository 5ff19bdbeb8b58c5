//! The Microsoft Azure connector. It connects with OAuth 2.0 or an API key,
//! proves the credentials with a read of the account and offers a paged
//! read operation (`list_items`).
//!
//! The provider's API base, paths and payload shapes are placeholders
//! (`https://api.example.invalid`, `/v1/account`, `/v1/items`) that
//! the fake in `src/fake.rs` answers; replace them with Microsoft Azure's own. See the crate
//! README for the connect fields, checks and operations.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;

use async_trait::async_trait;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, FromEnv, OAuthSpec, QueryOutput, Result, ValidationReport,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{AzureSecrets, ConnectForm};
use client::AzureClient;
pub use config::AzureConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "azure";

/// The environment variable holding the OAuth client id.
pub const CLIENT_ID_VAR: &str = "AZURE_CLIENT_ID";
/// The environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_VAR: &str = "AZURE_CLIENT_SECRET";
/// The OAuth scopes requested; placeholders for the read-only scopes Microsoft Azure offers.
pub const OAUTH_SCOPES: &[&str] = &["read"];

/// What the registry knows about the Microsoft Azure connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Microsoft Azure",
    category: Category::Cloud,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::ApiKey],
    env_vars: &[
        EnvVar {
            name: CLIENT_ID_VAR,
            required: false,
            secret: false,
            description:
                "Client ID of the Microsoft Azure OAuth app (needed for OAuth connections only)",
        },
        EnvVar {
            name: CLIENT_SECRET_VAR,
            required: false,
            secret: true,
            description:
                "Client secret of the Microsoft Azure OAuth app (needed for OAuth connections only)",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    // Placeholder endpoints: replace them with Microsoft Azure's authorize and token URLs.
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
        callback_path: "/azure/callback",
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<AzureConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Microsoft Azure connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct AzureConnector {
    http: HttpClient,
}

impl AzureConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for AzureConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const ACCOUNT_CHECK: (&str, &str) = (
    "account",
    "Microsoft Azure accepts the credentials and names their account (GET /v1/account)",
);
const ITEMS_CHECK: (&str, &str) = (
    "items_read",
    "The credentials can list items (GET /v1/items?limit=1)",
);

#[async_trait]
impl Connector for AzureConnector {
    type Config = AzureConfig;
    type Secrets = AzureSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<AzureConfig, AzureSecrets>> {
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
                Ok(Credentials::new(config, AzureSecrets::default()).with_tokens(tokens))
            }
            _ => Err(
                Error::unsupported("Microsoft Azure connects with its form or through OAuth")
                    .with_connector(CONNECTOR_ID),
            ),
        }
    }

    /// Proves the credentials by reading the account (mandatory), then checks that
    /// items can be listed; fills the account name.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<AzureConfig, AzureSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Microsoft Azure credentials");
        let client = AzureClient::new(&self.http, credentials)?;
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
        credentials: &Credentials<AzureConfig, AzureSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Microsoft Azure query");
        let client = AzureClient::new(&self.http, credentials)?;
        query::run(&client, ctx, operation, params).await
    }
}
