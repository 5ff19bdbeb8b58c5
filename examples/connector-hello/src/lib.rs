//! The Hello connector, an example of a connector written outside Patchbay's
//! workspace. It connects with an API key, proves the key with a read of the
//! account, and offers two read operations: `list_greetings`, a page at a time,
//! and `get_greeting` for one language.
//!
//! Hello is not a real service: its API (`https://api.hello.example`) exists only
//! as the fake in `src/fake.rs`. See the crate README for how it was made.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;

use async_trait::async_trait;
use patchbay_core::{
    AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer, Connector, ConnectorContext,
    ConnectorDescriptor, ConnectorEnv, Credentials, DynConnector, Error, QueryOutput, Result,
    ValidationReport,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, HelloSecrets};
use client::HelloClient;
pub use config::HelloConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "hello";

/// What the registry knows about the Hello connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Hello",
    category: Category::Communication,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    oauth: None,
    connect_schema,
    operations: query::descriptors,
    build,
};

patchbay_core::register_connector!(DESCRIPTOR);

fn connect_schema() -> schemars::Schema {
    schemars::schema_for!(ConnectForm)
}

fn build(env: &ConnectorEnv) -> Result<Box<dyn DynConnector>> {
    Ok(Box::new(HelloConnector::from_env(env)?))
}

/// The Hello connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct HelloConnector {
    http: HttpClient,
}

impl HelloConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    pub fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const ACCOUNT_CHECK: (&str, &str) = (
    "account",
    "Hello accepts the credentials and names their account (GET /v1/account)",
);
const GREETINGS_CHECK: (&str, &str) = (
    "greetings_read",
    "The credentials can list greetings (GET /v1/greetings?limit=1)",
);

#[async_trait]
impl Connector for HelloConnector {
    type Config = HelloConfig;
    type Secrets = HelloSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<HelloConfig, HelloSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            _ => Err(
                Error::unsupported("Hello connects with a form, not through OAuth")
                    .with_connector(CONNECTOR_ID)
                    .with_hint(
                        "send the connect form's fields (see the connector's connect schema)",
                    ),
            ),
        }
    }

    /// Proves the credentials by reading the account (mandatory), then checks that
    /// greetings can be listed; fills the account name.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<HelloConfig, HelloSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Hello credentials");
        let client = HelloClient::new(&self.http, credentials)?;
        let (account_id, account_description) = ACCOUNT_CHECK;
        let (greetings_id, greetings_description) = GREETINGS_CHECK;

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
            let greetings_check = CheckTimer::skipped(greetings_id, greetings_description, false);
            return Ok(ValidationReport::new(
                CONNECTOR_ID,
                vec![account_check, greetings_check],
            ));
        }

        let timer = CheckTimer::start();
        let greetings = client
            .probe_greetings()
            .await
            .map(|()| "greetings are readable".to_owned());
        let greetings_check = timer.finish(greetings_id, greetings_description, false, greetings);
        credentials.config.account_name = account_name;
        Ok(ValidationReport::new(
            CONNECTOR_ID,
            vec![account_check, greetings_check],
        ))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<HelloConfig, HelloSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Hello query");
        let client = HelloClient::new(&self.http, credentials)?;
        query::run(&client, ctx, operation, params).await
    }
}
