//! The `Connector` trait and its object-safe twin.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::descriptor::ConnectorDescriptor;
use crate::error::{Error, ErrorKind, Result};
use crate::oauth::{OAuthClientCredentials, OAuthGrant, RevokeOutcome};
use crate::secret::{reveal_json, RevealedJson};
use crate::tenant::Tenant;
use crate::validation::ValidationReport;
use crate::webhook::{InboundWebhook, WebhookOutcome, WebhookRoute};

/// A request to turn user input into credentials.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AuthRequest {
    /// Fields of the connect form (API keys, site, base URL). May hold secrets:
    /// never log it.
    Form(FormFields),
    /// Tokens from a finished OAuth authorization-code flow.
    OAuth(OAuthGrant),
}

/// Connect-form fields; `Debug` prints names only because values may be secrets.
#[derive(Clone, Default)]
pub struct FormFields(pub serde_json::Map<String, serde_json::Value>);

impl std::fmt::Debug for FormFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Who is acting and on which connection; carried for logs and scoping.
#[derive(Debug, Clone, Default)]
pub struct ConnectorContext {
    /// The connection in use, once it exists.
    pub connection_id: Option<String>,
    /// The tenant acting.
    pub tenant: Option<Tenant>,
}

/// A connection's settings and secrets, typed.
#[derive(Debug, Clone)]
pub struct Credentials<C, S> {
    /// Non-secret settings and metadata (site, base URL, org name).
    pub config: C,
    /// Secret values; every field is a redacting [`crate::Secret`].
    pub secrets: S,
}

/// A connection's settings and secrets as JSON, for hosts holding any connector.
#[derive(Debug, Clone)]
pub struct DynCredentials {
    /// Non-secret settings; safe to store in the records database.
    pub config: serde_json::Value,
    /// Secret values; only a secret store may persist them.
    pub secrets: RevealedJson,
}

/// What a query returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryOutput {
    /// The result, in the provider's shape trimmed to what matters.
    pub data: serde_json::Value,
    /// True when caps cut the result short.
    pub truncated: bool,
    /// A token to pass back as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

/// One provider integration: auth, validate, query and webhook hooks.
///
/// Implementors are built by their descriptor's `build` function; hosts use them
/// through [`DynConnector`], which every `Connector` implements.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Non-secret settings stored in the records database.
    type Config: Serialize + DeserializeOwned + Send + Sync;
    /// Secret values stored only in a secret store.
    type Secrets: Serialize + DeserializeOwned + Send + Sync;

    /// The connector's static descriptor.
    fn descriptor(&self) -> &'static ConnectorDescriptor;

    /// Turns a connect request into credentials (no network call needed).
    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<Self::Config, Self::Secrets>>;

    /// Proves the credentials work, one check per capability. May refine the
    /// config with what the provider reports (org name).
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<Self::Config, Self::Secrets>,
    ) -> Result<ValidationReport>;

    /// Runs a named operation with JSON parameters.
    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<Self::Config, Self::Secrets>,
        operation: &str,
        params: serde_json::Value,
    ) -> Result<QueryOutput>;

    /// Authenticates (for signature schemes) and normalises an inbound delivery.
    async fn webhook(
        &self,
        _ctx: &ConnectorContext,
        _config: &Self::Config,
        _secrets: Option<&Self::Secrets>,
        _request: &InboundWebhook,
    ) -> Result<WebhookOutcome> {
        Err(
            Error::unsupported("this connector does not receive webhooks")
                .with_connector(self.descriptor().id),
        )
    }

    /// For app-level webhooks: verifies a delivery and says where it goes.
    async fn route_webhook(&self, _request: &InboundWebhook) -> Result<WebhookRoute> {
        Err(
            Error::unsupported("this connector has no app-level webhook")
                .with_connector(self.descriptor().id),
        )
    }

    /// The key app-level webhooks are routed by (Slack's team id), from a connection's config.
    fn routing_key(&self, _config: &Self::Config) -> Option<String> {
        None
    }

    /// Revokes the grant at the provider when disconnecting, where it offers that.
    async fn revoke(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &Credentials<Self::Config, Self::Secrets>,
        _client: Option<&OAuthClientCredentials>,
    ) -> Result<RevokeOutcome> {
        Ok(RevokeOutcome::NotOffered)
    }
}

/// The object-safe twin of [`Connector`], over JSON.
#[async_trait]
pub trait DynConnector: Send + Sync + 'static {
    /// The connector's static descriptor.
    fn descriptor(&self) -> &'static ConnectorDescriptor;

    /// See [`Connector::authenticate`].
    async fn authenticate(&self, request: AuthRequest) -> Result<DynCredentials>;

    /// See [`Connector::validate`]; updates `credentials.config` in place.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut DynCredentials,
    ) -> Result<ValidationReport>;

    /// See [`Connector::query`].
    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        operation: &str,
        params: serde_json::Value,
    ) -> Result<QueryOutput>;

    /// See [`Connector::webhook`].
    async fn webhook(
        &self,
        ctx: &ConnectorContext,
        config: &serde_json::Value,
        secrets: Option<&RevealedJson>,
        request: &InboundWebhook,
    ) -> Result<WebhookOutcome>;

    /// See [`Connector::route_webhook`].
    async fn route_webhook(&self, request: &InboundWebhook) -> Result<WebhookRoute>;

    /// See [`Connector::routing_key`].
    fn routing_key(&self, config: &serde_json::Value) -> Option<String>;

    /// See [`Connector::revoke`].
    async fn revoke(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        client: Option<&OAuthClientCredentials>,
    ) -> Result<RevokeOutcome>;
}

fn stored_shape_error(id: &str, what: &str, error: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::Internal,
        format!("stored {what} do not match the connector's shape: {error}"),
    )
    .with_connector(id)
}

fn typed<C: Connector>(
    connector: &C,
    credentials: &DynCredentials,
) -> Result<Credentials<C::Config, C::Secrets>> {
    let id = connector.descriptor().id;
    Ok(Credentials {
        config: C::Config::deserialize(&credentials.config)
            .map_err(|e| stored_shape_error(id, "settings", e))?,
        secrets: credentials
            .secrets
            .deserialize()
            .map_err(|e| stored_shape_error(id, "secrets", e))?,
    })
}

fn untyped<C: Connector>(
    connector: &C,
    credentials: &Credentials<C::Config, C::Secrets>,
) -> Result<DynCredentials> {
    let id = connector.descriptor().id;
    Ok(DynCredentials {
        config: serde_json::to_value(&credentials.config)
            .map_err(|e| stored_shape_error(id, "settings", e))?,
        secrets: reveal_json(&credentials.secrets)
            .map_err(|e| stored_shape_error(id, "secrets", e))?,
    })
}

#[async_trait]
impl<C: Connector> DynConnector for C {
    fn descriptor(&self) -> &'static ConnectorDescriptor {
        Connector::descriptor(self)
    }

    async fn authenticate(&self, request: AuthRequest) -> Result<DynCredentials> {
        let credentials = Connector::authenticate(self, request).await?;
        untyped(self, &credentials)
    }

    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut DynCredentials,
    ) -> Result<ValidationReport> {
        let mut typed_credentials = typed(self, credentials)?;
        let report = Connector::validate(self, ctx, &mut typed_credentials).await?;
        *credentials = untyped(self, &typed_credentials)?;
        Ok(report)
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        operation: &str,
        params: serde_json::Value,
    ) -> Result<QueryOutput> {
        let typed_credentials = typed(self, credentials)?;
        Connector::query(self, ctx, &typed_credentials, operation, params).await
    }

    async fn webhook(
        &self,
        ctx: &ConnectorContext,
        config: &serde_json::Value,
        secrets: Option<&RevealedJson>,
        request: &InboundWebhook,
    ) -> Result<WebhookOutcome> {
        let id = Connector::descriptor(self).id;
        let config =
            C::Config::deserialize(config).map_err(|e| stored_shape_error(id, "settings", e))?;
        let secrets = secrets
            .map(|secrets| secrets.deserialize::<C::Secrets>())
            .transpose()
            .map_err(|e| stored_shape_error(id, "secrets", e))?;
        Connector::webhook(self, ctx, &config, secrets.as_ref(), request).await
    }

    async fn route_webhook(&self, request: &InboundWebhook) -> Result<WebhookRoute> {
        Connector::route_webhook(self, request).await
    }

    fn routing_key(&self, config: &serde_json::Value) -> Option<String> {
        let config = C::Config::deserialize(config).ok()?;
        Connector::routing_key(self, &config)
    }

    async fn revoke(
        &self,
        ctx: &ConnectorContext,
        credentials: &DynCredentials,
        client: Option<&OAuthClientCredentials>,
    ) -> Result<RevokeOutcome> {
        let typed_credentials = typed(self, credentials)?;
        Connector::revoke(self, ctx, &typed_credentials, client).await
    }
}

/// The error for an operation a connector does not offer, listing those it does.
pub fn unknown_operation(connector: &str, operation: &str, known: &[&str]) -> Error {
    Error::not_found(format!("unknown operation `{operation}` for {connector}"))
        .with_connector(connector)
        .with_hint(format!("use one of: {}", known.join(", ")))
}

/// Parses typed operation parameters, naming the bad field (by its path) in the error.
pub fn parse_params<P: DeserializeOwned>(
    connector: &str,
    operation: &str,
    params: serde_json::Value,
) -> Result<P> {
    let params = if params.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        params
    };
    serde_path_to_error::deserialize::<_, P>(params).map_err(|error| {
        let path = error.path().to_string();
        let message = error.inner().to_string();
        // Unknown and missing fields have no path of their own: serde names them in backticks.
        let field = if path == "." {
            ["unknown field `", "missing field `"]
                .iter()
                .find_map(|prefix| message.strip_prefix(prefix))
                .and_then(|rest| rest.split('`').next())
                .unwrap_or("params")
                .to_owned()
        } else {
            path
        };
        Error::invalid_input(
            field,
            format!("invalid parameters for `{operation}`: {message}"),
        )
        .with_connector(connector)
        .with_hint("see the operation's params_schema in GET /api/connectors")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        limit: u32,
        #[serde(default)]
        sort: Option<Sort>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Sort {
        Asc,
    }

    fn field_of(params: serde_json::Value) -> String {
        parse_params::<Params>("x", "op", params)
            .unwrap_err()
            .field()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn parse_params_names_the_field_not_the_value() {
        assert_eq!(field_of(serde_json::json!({"limit": "lots"})), "limit");
        assert_eq!(
            field_of(serde_json::json!({"limit": 1, "sort": "desc"})),
            "sort"
        );
        assert_eq!(
            field_of(serde_json::json!({"limit": 1, "extra": 2})),
            "extra"
        );
        assert_eq!(field_of(serde_json::json!({"limit": -1})), "limit");
        assert_eq!(field_of(serde_json::json!({})), "limit");
    }
}
