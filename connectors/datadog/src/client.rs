//! A thin Datadog API client: URLs, key headers, retries of transient 500s and
//! the mapping of provider errors to messages users can act on.

use patchbay_core::{Error, ErrorKind, Result};
use patchbay_http::{HttpClient, Method};
use serde_json::Value;

use crate::auth::DatadogSecrets;
use crate::config::DatadogConfig;
use crate::CONNECTOR_ID;

/// The header carrying the API key.
pub const API_KEY_HEADER: &str = "DD-API-KEY";
/// The header carrying the application key.
pub const APP_KEY_HEADER: &str = "DD-APPLICATION-KEY";

/// Which keys a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keys {
    /// Only `DD-API-KEY` (the validate endpoint checks nothing else).
    ApiOnly,
    /// `DD-API-KEY` and `DD-APPLICATION-KEY`.
    ApiAndApp,
}

/// Talks to one Datadog site with one pair of keys.
pub struct DatadogClient<'a> {
    http: &'a HttpClient,
    api_base: &'a str,
    secrets: &'a DatadogSecrets,
}

impl<'a> DatadogClient<'a> {
    /// A client for the connection's site and keys.
    pub fn new(
        http: &'a HttpClient,
        config: &'a DatadogConfig,
        secrets: &'a DatadogSecrets,
    ) -> Self {
        Self {
            http,
            api_base: config.api_base.trim_end_matches('/'),
            secrets,
        }
    }

    /// Proves the API key with `GET /api/v1/validate`, sending only the API key.
    pub async fn validate_api_key(&self) -> Result<()> {
        let body = self
            .send(
                Method::GET,
                "validate",
                "/api/v1/validate",
                &[],
                None,
                Keys::ApiOnly,
            )
            .await
            .map_err(validate_error)?;
        if body.get("valid").and_then(Value::as_bool) == Some(false) {
            return Err(validate_error(
                Error::new(ErrorKind::AuthFailed, "Datadog answered valid: false")
                    .with_provider_status(200),
            ));
        }
        Ok(())
    }

    /// `GET path?query` with both keys; provider errors come back as mapped by the HTTP client.
    pub async fn get(
        &self,
        operation: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value> {
        self.send(Method::GET, operation, path, query, None, Keys::ApiAndApp)
            .await
    }

    /// A read-only `POST path` (a search) with a JSON body and both keys.
    pub async fn post_search(
        &self,
        operation: &'static str,
        path: &str,
        body: &Value,
    ) -> Result<Value> {
        self.send(
            Method::POST,
            operation,
            path,
            &[],
            Some(body),
            Keys::ApiAndApp,
        )
        .await
    }

    async fn send(
        &self,
        method: Method,
        operation: &'static str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        keys: Keys,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.api_base);
        // Every call here is a read, so a 500 may be repeated. The shared client
        // retries 502/503/504 and 429; Datadog's own API clients also retry 500,
        // which it returns for transient faults, so one extra attempt is made here.
        let mut retried_server_error = false;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .connector(CONNECTOR_ID)
                .operation(operation)
                .header("Accept", "application/json")
                .idempotent(true)
                .secret_header(API_KEY_HEADER, &self.secrets.api_key);
            if keys == Keys::ApiAndApp {
                request = request.secret_header(APP_KEY_HEADER, &self.secrets.app_key);
            }
            if !query.is_empty() {
                request = request.query(query);
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await?;
            if response.status.as_u16() == 500 && !retried_server_error {
                retried_server_error = true;
                tokio::time::sleep(self.http.config().base_backoff).await;
                continue;
            }
            let response = response.error_for_status()?;
            if response.body.is_empty() {
                return Ok(Value::Null);
            }
            return response.json();
        }
    }
}

/// Whether the provider answered that the keys are not accepted.
fn is_auth_rejection(error: &Error) -> bool {
    matches!(error.provider_status(), Some(401 | 403))
        || matches!(error.kind(), ErrorKind::AuthFailed)
}

/// Maps a failure of `GET /api/v1/validate`.
fn validate_error(error: Error) -> Error {
    if is_auth_rejection(&error) {
        return rebuild(
            &error,
            ErrorKind::AuthFailed,
            "Unable to validate Datadog credentials: the API key was rejected",
        )
        .with_field("api_key")
        .with_hint(
            "check the API key and that the site matches your Datadog account (e.g. datadoghq.eu for EU)",
        );
    }
    error
}

/// Maps a failure of a validation probe that needs `permission`.
pub(crate) fn probe_error(error: Error, permission: &str) -> Error {
    match error.provider_status() {
        Some(403) => rebuild(
            &error,
            ErrorKind::PermissionDenied,
            &format!("the application key lacks the `{permission}` permission"),
        )
        .with_hint(format!(
            "grant `{permission}` to a role of the application key's owner in Datadog \
             (Organization Settings > Roles), or use a key whose owner has it"
        )),
        Some(401) => rebuild(
            &error,
            ErrorKind::AuthFailed,
            "Datadog rejected the application key",
        )
        .with_hint("check the application key and that it belongs to the same organisation and site as the API key"),
        _ => error,
    }
}

/// Maps a failure of a query made with stored keys that needs `permission`.
pub(crate) fn query_error(error: Error, permission: &str) -> Error {
    if is_auth_rejection(&error) {
        return rebuild(
            &error,
            ErrorKind::AuthFailed,
            "Stored Datadog keys are no longer valid",
        )
        .with_hint(format!(
            "reconnect Datadog with a valid API key and application key; if the keys are valid, \
                 grant the application key's owner the `{permission}` permission"
        ));
    }
    error
}

/// A new error of `kind` keeping the provider status and retry hint of `error`.
fn rebuild(error: &Error, kind: ErrorKind, message: &str) -> Error {
    let mut rebuilt = Error::new(kind, message).with_connector(CONNECTOR_ID);
    if let Some(status) = error.provider_status() {
        rebuilt = rebuilt.with_provider_status(status);
    }
    if let Some(wait) = error.retry_after() {
        rebuilt = rebuilt.with_retry_after(wait);
    }
    rebuilt
}
