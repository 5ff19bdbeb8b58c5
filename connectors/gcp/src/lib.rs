//! The Google Cloud connector. It connects with OAuth 2.0 or an API key,
//! proves the credentials with a read of the account and offers a paged
//! read operation (`list_items`).
//!
//! The provider's API base, paths and payload shapes are placeholders
//! (`https://api.example.invalid`, `/v1/account`, `/v1/items`) that
//! the fake in `src/fake.rs` answers; replace them with Google Cloud's own. See the crate
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

pub use auth::{ConnectForm, GcpSecrets};
use client::GcpClient;
pub use config::GcpConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "gcp";

/// The environment variable holding the OAuth client id.
pub const CLIENT_ID_VAR: &str = "GCP_CLIENT_ID";
/// The environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_VAR: &str = "GCP_CLIENT_SECRET";
/// The OAuth scopes requested; placeholders for the read-only scopes Google Cloud offers.
pub const OAUTH_SCOPES: &[&str] = &["read"];

/// What the registry knows about the Google Cloud connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Google Cloud",
    category: Category::Cloud,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::ApiKey],
    env_vars: &[
        EnvVar {
            name: CLIENT_ID_VAR,
            required: false,
            secret: false,
            description:
                "Client ID of the Google Cloud OAuth app (needed for OAuth connections only)",
        },
        EnvVar {
            name: CLIENT_SECRET_VAR,
            required: false,
            secret: true,
            description:
                "Client secret of the Google Cloud OAuth app (needed for OAuth connections only)",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    // Placeholder endpoints: replace them with Google Cloud's authorize and token URLs.
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
        callback_path: "/gcp/callback",
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<GcpConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Google Cloud connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct GcpConnector {
    http: HttpClient,
}

impl GcpConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for GcpConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const ACCOUNT_CHECK: (&str, &str) = (
    "account",
    "Google Cloud accepts the credentials and names their account (GET /v1/account)",
);
const ITEMS_CHECK: (&str, &str) = (
    "items_read",
    "The credentials can list items (GET /v1/items?limit=1)",
);

#[async_trait]
impl Connector for GcpConnector {
    type Config = GcpConfig;
    type Secrets = GcpSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<GcpConfig, GcpSecrets>> {
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
                Ok(Credentials::new(config, GcpSecrets::default()).with_tokens(tokens))
            }
            _ => Err(
                Error::unsupported("Google Cloud connects with its form or through OAuth")
                    .with_connector(CONNECTOR_ID),
            ),
        }
    }

    /// Proves the credentials by reading the account (mandatory), then checks that
    /// items can be listed; fills the account name.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<GcpConfig, GcpSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Google Cloud credentials");
        let client = GcpClient::new(&self.http, credentials)?;
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
        credentials: &Credentials<GcpConfig, GcpSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Google Cloud query");
        let client = GcpClient::new(&self.http, credentials)?;
        query::run(&client, ctx, operation, params).await
    }
}
