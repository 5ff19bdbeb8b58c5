//! The `Connector` trait and its object-safe twin.

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::descriptor::{ConnectorDescriptor, WebhookAuth};
use crate::error::{Error, ErrorKind, Result};
use crate::oauth::{OAuthClientCredentials, OAuthGrant, RevokeOutcome};
use crate::secret::{reveal_json, RevealedJson};
use crate::tenant::Tenant;
use crate::validation::ValidationReport;
use crate::webhook::{
    verify_token, InboundWebhook, UnverifiedDelivery, VerifiedDelivery, WebhookKey, WebhookOutcome,
    WebhookRoute,
};

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

    /// Proves a `Signature` or `App` delivery comes from the provider, on the raw
    /// request, and returns `delivery.mark_verified()` only if it does.
    ///
    /// `credentials` are the connection's for `Signature` webhooks and `None` for
    /// `App` webhooks, which are checked with the app's own secret. Every refusal is
    /// `AuthFailed`. Never called for `Token` webhooks: [`DynConnector::verify`]
    /// checks their token itself.
    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        _credentials: Option<&Credentials<Self::Config, Self::Secrets>>,
        _delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        Err(
            Error::unsupported("this connector does not verify webhook signatures")
                .with_connector(self.descriptor().id),
        )
    }

    /// For `App` webhooks: where a verified delivery goes (a direct reply, or the
    /// connection with a routing key).
    async fn route_webhook(&self, _delivery: &VerifiedDelivery) -> Result<WebhookRoute> {
        Err(
            Error::unsupported("this connector has no app-level webhook")
                .with_connector(self.descriptor().id),
        )
    }

    /// Turns a verified delivery into events to store and, where the provider
    /// expects one, a reply.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &Self::Config,
        _delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        Err(
            Error::unsupported("this connector does not receive webhooks")
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

    /// Proves a delivery comes from the provider; the only source of a
    /// [`VerifiedDelivery`]. Checks a `Token` webhook's token itself (constant
    /// time, against `WebhookKey::TokenHash`) and hands `Signature` and `App`
    /// webhooks to [`Connector::verify`]. Refusals are `AuthFailed`.
    async fn verify(
        &self,
        ctx: &ConnectorContext,
        key: WebhookKey<'_>,
        request: &InboundWebhook,
    ) -> Result<VerifiedDelivery>;

    /// See [`Connector::route_webhook`].
    async fn route_webhook(&self, delivery: &VerifiedDelivery) -> Result<WebhookRoute>;

    /// See [`Connector::normalize`]; refuses a delivery verified by another
    /// connector or for another connection than `ctx`'s.
    async fn normalize(
        &self,
        ctx: &ConnectorContext,
        config: &serde_json::Value,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome>;

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

    async fn verify(
        &self,
        ctx: &ConnectorContext,
        key: WebhookKey<'_>,
        request: &InboundWebhook,
    ) -> Result<VerifiedDelivery> {
        let descriptor = Connector::descriptor(self);
        let id = descriptor.id;
        let Some(webhook) = descriptor.webhook else {
            return Err(
                Error::unsupported("this connector does not receive webhooks").with_connector(id),
            );
        };
        let delivery = UnverifiedDelivery::new(id, ctx.connection_id.clone(), request.clone());
        match (webhook.auth, key) {
            (WebhookAuth::Token { header }, WebhookKey::TokenHash(stored_hash)) => {
                verify_token(header, stored_hash, delivery)
            }
            (WebhookAuth::Signature, WebhookKey::Connection { config, secrets }) => {
                let credentials = Credentials {
                    config: C::Config::deserialize(config)
                        .map_err(|e| stored_shape_error(id, "settings", e))?,
                    secrets: secrets
                        .deserialize()
                        .map_err(|e| stored_shape_error(id, "secrets", e))?,
                };
                Connector::verify(self, ctx, Some(&credentials), delivery).await
            }
            (WebhookAuth::App, WebhookKey::App) => {
                Connector::verify(self, ctx, None, delivery).await
            }
            (auth, key) => Err(Error::internal(format!(
                "a {auth:?} webhook cannot be verified with a {} key",
                key.style()
            ))
            .with_connector(id)),
        }
    }

    async fn route_webhook(&self, delivery: &VerifiedDelivery) -> Result<WebhookRoute> {
        Connector::route_webhook(self, delivery).await
    }

    async fn normalize(
        &self,
        ctx: &ConnectorContext,
        config: &serde_json::Value,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        let id = Connector::descriptor(self).id;
        let same_connection = delivery
            .connection_id()
            .is_none_or(|verified_for| ctx.connection_id.as_deref() == Some(verified_for));
        if delivery.connector() != id || !same_connection {
            return Err(Error::internal(
                "a delivery verified for another connector or connection cannot be normalised here",
            )
            .with_connector(id));
        }
        let config =
            C::Config::deserialize(config).map_err(|e| stored_shape_error(id, "settings", e))?;
        Connector::normalize(self, ctx, &config, delivery).await
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
