//! A thin Amazon Web Services API client: the base URL, how requests authenticate, and the
//! two reads the connector makes.

use patchbay_core::{Credentials, Result, SecretString};
use patchbay_http::{HttpClient, RequestBuilder};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::AwsSecrets;
use crate::config::AwsConfig;
use crate::CONNECTOR_ID;

/// The Amazon Web Services API base URL.
///
/// A placeholder: replace it with Amazon Web Services's API base (https). Tests and local runs
/// reach a fake instead through `PATCHBAY_UPSTREAM_OVERRIDES`
/// (`api.example.invalid=http://127.0.0.1:PORT`).
pub const API_BASE: &str = "https://api.example.invalid";

/// The header carrying the API key; a placeholder for the header Amazon Web Services documents.
pub const API_KEY_HEADER: &str = "X-Api-Key";

/// How a request proves who it is.
#[derive(Debug, Clone, Copy)]
enum Authorization<'a> {
    /// An API key in [`API_KEY_HEADER`].
    ApiKey(&'a SecretString),
}

impl<'a> Authorization<'a> {
    /// The credential a connection holds.
    fn of(credentials: &'a Credentials<AwsConfig, AwsSecrets>) -> Result<Self> {
        Ok(Self::ApiKey(&credentials.secrets.api_key))
    }

    /// `request` carrying this credential.
    fn apply(self, request: RequestBuilder) -> RequestBuilder {
        match self {
            Self::ApiKey(api_key) => request.secret_header(API_KEY_HEADER, api_key),
        }
    }
}

/// The account the credentials belong to.
#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    /// Amazon Web Services's id of the account.
    pub id: String,
    /// Its display name.
    pub name: String,
}

/// Talks to the Amazon Web Services API for one connection.
#[derive(Debug)]
pub struct AwsClient<'a> {
    http: &'a HttpClient,
    authorization: Authorization<'a>,
}

impl<'a> AwsClient<'a> {
    /// A client for the connection's credentials.
    pub fn new(
        http: &'a HttpClient,
        credentials: &'a Credentials<AwsConfig, AwsSecrets>,
    ) -> Result<Self> {
        Ok(Self {
            http,
            authorization: Authorization::of(credentials)?,
        })
    }

    /// The path of `resource` (the credentials' account is implied).
    pub fn path(&self, resource: &str) -> String {
        format!("/v1{resource}")
    }

    /// The account: `GET /v1/account`.
    pub async fn account(&self) -> Result<Account> {
        self.get("validate", &self.path("/account"), &[]).await
    }

    /// Proves items can be listed: `GET /v1/items?limit=1`.
    pub async fn probe_items(&self) -> Result<()> {
        self.get::<serde_json::Value>(
            "validate",
            &self.path("/items"),
            &[("limit", "1".to_owned())],
        )
        .await
        .map(drop)
    }

    /// `GET path?query` with the connection's credential; a provider error
    /// comes back as the HTTP client maps it (status, kind and the provider's message).
    pub async fn get<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T> {
        let mut request = self
            .http
            .get(&format!("{API_BASE}{path}"))
            .connector(CONNECTOR_ID)
            .operation(operation)
            .header("Accept", "application/json");
        request = self.authorization.apply(request);
        if !query.is_empty() {
            request = request.query(query);
        }
        request.send().await?.error_for_status()?.json()
    }
}
