//! The JSON API: connectors, connections, queries and alerts.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use patchbay_core::connector::FormFields;
use patchbay_core::{
    is_bearer_header, AuthRequest, ConnectorDescriptor, DynConnector, Error, ErrorKind,
    SecretString, Tenant, ValidationReport, WebhookAuth,
};
use patchbay_store::{AlertPage, ConnectionRecord, ConnectionStatus};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Principal;
use crate::error::{ApiError, ErrorEnvelope};
use crate::lifecycle::{status_of, ConnectFailure, ConnectRequest, RotatedCredential};
use crate::state::AppState;

/// The JSON API routes (state is supplied by the caller).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/connectors", get(list_connectors))
        .route("/api/connectors/status", get(connectors_status))
        .route("/api/connectors/{id}/onboarding", get(onboarding))
        .route("/api/connections", post(connect).get(list_connections))
        .route(
            "/api/connections/{id}",
            get(get_connection).delete(disconnect),
        )
        .route("/api/connections/{id}/validate", post(revalidate))
        .route(
            "/api/connections/{id}/webhook/rotate",
            post(rotate_webhook_credential),
        )
        .route(
            "/api/connections/{id}/webhook/secrets",
            get(list_webhook_secrets).post(add_webhook_secret),
        )
        .route(
            "/api/connections/{id}/webhook/secrets/{secret_id}",
            delete(remove_webhook_secret),
        )
        .route("/api/connections/{id}/query/{operation}", post(query))
        .route(
            "/api/connections/{id}/agent-token/revoke",
            post(revoke_agent_token),
        )
        .route(
            "/api/connections/{id}/agent-token/rotate",
            post(rotate_agent_token),
        )
        .route("/api/alerts", get(list_alerts))
}

/// Parses a JSON body, answering 400 with serde's reason (line, column, field).
pub fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"{}").map_err(|error| {
            ApiError::from(Error::invalid_input(
                "body",
                format!("a JSON body is required: {error}"),
            ))
        });
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::from(
            Error::invalid_input("body", format!("malformed JSON body: {error}"))
                .with_hint("send a JSON object with Content-Type: application/json"),
        )
    })
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    responses((status = 200, description = "The process is up", body = serde_json::Value)),
)]
pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "service",
    responses(
        (status = 200, description = "Webhook intake can store alerts (the records database answers); `status` is `degraded` when the secret store does not, so queries and connects fail while alerts are still stored", body = serde_json::Value),
        (status = 503, description = "The records database does not answer: nothing can be stored", body = serde_json::Value),
    ),
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (records, secrets) = tokio::join!(
        bounded_health(RECORDS_PROBE_TIMEOUT, state.records.health()),
        bounded_health(SECRETS_PROBE_TIMEOUT, state.secrets.health())
    );
    let describe = |result: &patchbay_core::Result<()>| match result {
        Ok(()) => json!({ "status": "ok" }),
        Err(error) => json!({ "status": "unavailable", "message": error.message() }),
    };
    // Readiness is for intake: a load balancer that took every replica out during a
    // Vault stall would drop alerts that could have been stored.
    let (code, status) = match (records.is_ok(), secrets.is_ok()) {
        (true, true) => (StatusCode::OK, "ok"),
        (true, false) => (StatusCode::OK, "degraded"),
        (false, _) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let mut body = json!({
        "status": status,
        "records": describe(&records),
        "secrets": describe(&secrets),
        "secrets_backend": state.secrets.backend(),
        "serving": {
            "webhooks": records.is_ok(),
            "queries": records.is_ok() && secrets.is_ok(),
        },
    });
    #[cfg(feature = "connector-kubernetes")]
    {
        let (clusters, sockets) = state.kubectl_relay.attached();
        body["agents"] = json!({ "clusters": clusters, "sockets": sockets });
    }
    (code, Json(body))
}

/// How long readiness waits for the records database, which decides its status.
const RECORDS_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long readiness waits for the secret store. Its state never changes the status
/// code, so a stalled Vault must not delay the answer past a load balancer's own
/// probe timeout (Kubernetes' default is 1 s).
const SECRETS_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

async fn bounded_health(
    timeout: std::time::Duration,
    check: impl std::future::Future<Output = patchbay_core::Result<()>>,
) -> patchbay_core::Result<()> {
    tokio::time::timeout(timeout, check)
        .await
        .unwrap_or_else(|_| {
            Err(Error::unavailable(format!(
                "no answer within {} ms",
                timeout.as_millis()
            )))
        })
}

fn connector_summary(state: &AppState, descriptor: &ConnectorDescriptor) -> serde_json::Value {
    let mut document = serde_json::to_value(descriptor.document()).unwrap_or_default();
    document["enabled"] = json!(descriptor.is_enabled(&state.env));
    document["configured"] =
        json!(descriptor.is_enabled(&state.env) && descriptor.is_configured(&state.env));
    // A connector with one OAuth client per region offers only the regions whose
    // client is configured, so a form never proposes one that would be refused.
    if let Some(regional) = patchbay_core::RegionalOAuth::of(descriptor.id) {
        document["oauth_regions"] = json!({
            "option": regional.option,
            "configured": state.oauth.configured_regions(regional),
        });
    }
    document
}

#[utoipa::path(
    get,
    path = "/api/connectors",
    tag = "connectors",
    responses(
        (status = 200, description = "Every registered connector: id, auth kinds, connect form, operations with their parameter schemas, webhook, whether enabled and configured", body = serde_json::Value),
    ),
)]
pub(crate) async fn list_connectors(
    State(state): State<AppState>,
    Principal(_caller): Principal,
) -> impl IntoResponse {
    let connectors: Vec<_> = state
        .registry
        .descriptors()
        .map(|descriptor| connector_summary(&state, descriptor))
        .collect();
    Json(json!({ "connectors": connectors }))
}

/// What the caller's tenant needs before connecting a connector (AWS: the account
/// to trust, the tenant's ExternalId, the trust policy); 501 for connectors without
/// such a step.
#[utoipa::path(
    get,
    path = "/api/connectors/{id}/onboarding",
    tag = "connectors",
    params(("id" = String, Path, description = "The connector id")),
    responses(
        (status = 200, description = "What the caller needs before connecting (AWS: the account to trust, the ExternalId, the trust policy)", body = serde_json::Value),
        (status = 403, description = "The connector is turned off by its feature flag", body = ErrorEnvelope<'static>),
        (status = 404, description = "Unknown connector", body = ErrorEnvelope<'static>),
        (status = 501, description = "The connector has no onboarding step", body = ErrorEnvelope<'static>),
        (status = 503, description = "What the step needs cannot be read now (AWS: the platform's own account, from STS)", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn onboarding(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let connector = connector_for(&state, &id)?;
    let ctx = patchbay_core::ConnectorContext {
        connection_id: None,
        tenant: Some(tenant),
    };
    let onboarding = connector.onboarding(&ctx).await?;
    Ok(Json(json!({ "connector": id, "onboarding": onboarding })))
}

/// A connection as the API shows it: no secret, no secret reference.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionView {
    id: String,
    connector: String,
    label: String,
    status: ConnectionStatus,
    created_by: String,
    org_id: Option<String>,
    metadata: serde_json::Value,
    allow_writes: bool,
    created_at: DateTime<Utc>,
    validated_at: Option<DateTime<Utc>>,
    last_report: Option<ValidationReport>,
    webhook: Option<WebhookView>,
    /// For connectors reached through an in-cluster agent: whether it is connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<serde_json::Value>,
}

/// `GET /api/connections`: the caller's connections, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionList {
    connections: Vec<ConnectionView>,
}

/// `GET /api/connections/{id}`: one connection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConnectionEnvelope {
    connection: ConnectionView,
}

/// Where the provider should send webhooks for a connection.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    url: String,
    header: Option<&'static str>,
    /// The connector's field-by-field settings for the provider, without the
    /// credential (shown only at connect and on rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    setup: Option<serde_json::Value>,
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters pass through).
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

fn webhook_view(state: &AppState, record: &ConnectionRecord) -> Option<WebhookView> {
    let webhook = state.registry.descriptor(&record.connector)?.webhook?;
    let path = webhook
        .path
        .replace("{user_id}", &encode_segment(&record.tenant.user_id));
    let url = format!("{}{path}", state.public_url);
    let setup = webhook_setup(state, record, &url, None);
    Some(WebhookView {
        url,
        header: match webhook.auth {
            WebhookAuth::Token { header } => Some(header),
            WebhookAuth::Signature | WebhookAuth::App | WebhookAuth::ProviderSignature => None,
        },
        setup,
    })
}

/// The connector's webhook settings for `record`, with the URL and, where given,
/// the credential filled in.
fn webhook_setup(
    state: &AppState,
    record: &ConnectionRecord,
    url: &str,
    credential: Option<&SecretString>,
) -> Option<serde_json::Value> {
    let setup = state
        .registry
        .get(&record.connector)?
        .webhook_setup(&record.metadata)?;
    Some(setup.render(url, credential.map(|secret| secret.expose().as_str())))
}

/// The agent status of a connection reached through an in-cluster agent.
async fn agent_status(state: &AppState, record: &ConnectionRecord) -> Option<serde_json::Value> {
    #[cfg(feature = "connector-kubernetes")]
    if record.connector == crate::kubectl_agent::CONNECTOR {
        return Some(crate::kubectl_agent::status(state, &record.id).await);
    }
    let _ = (state, record);
    None
}

async fn view(state: &AppState, record: ConnectionRecord) -> ConnectionView {
    let webhook = webhook_view(state, &record);
    let agent = agent_status(state, &record).await;
    ConnectionView {
        id: record.id,
        connector: record.connector,
        label: record.label,
        status: record.status,
        created_by: record.tenant.user_id,
        org_id: record.tenant.org_id,
        metadata: record.metadata,
        allow_writes: record.allow_writes,
        created_at: record.created_at,
        validated_at: record.validated_at,
        last_report: record.last_report,
        webhook,
        agent,
    }
}

#[utoipa::path(
    get,
    path = "/api/connectors/status",
    tag = "connectors",
    responses(
        (status = 200, description = "Per connector: enabled, connected, and the caller's connections with their status (and agent state for clusters)", body = serde_json::Value),
    ),
)]
pub(crate) async fn connectors_status(
    State(state): State<AppState>,
    Principal(tenant): Principal,
) -> Result<impl IntoResponse, ApiError> {
    let records = state.records.list_connections(&tenant).await?;
    let mut connectors = BTreeMap::new();
    for descriptor in state.registry.descriptors() {
        let mut connections = Vec::new();
        for record in records
            .iter()
            .filter(|record| record.connector == descriptor.id)
        {
            let mut entry = json!({
                "id": record.id,
                "label": record.label,
                "status": record.status,
                "validated_at": record.validated_at,
            });
            if let Some(agent) = agent_status(&state, record).await {
                entry["agent"] = agent;
            }
            connections.push(entry);
        }
        let connected = records.iter().any(|record| {
            record.connector == descriptor.id
                && matches!(
                    record.status,
                    ConnectionStatus::Active | ConnectionStatus::Degraded
                )
        });
        let enabled = descriptor.is_enabled(&state.env);
        let mut entry = json!({
            "enabled": enabled,
            "connected": connected,
            "connections": connections,
        });
        if !enabled {
            entry["message"] = json!(descriptor.disabled_message);
        }
        connectors.insert(descriptor.id, entry);
    }
    Ok(Json(json!({ "connectors": connectors })))
}

/// The connector with this id, refusing unknown ones (404) and those whose feature
/// flag is off (403 with the connector's disabled message).
pub(crate) fn connector_for(
    state: &AppState,
    id: &str,
) -> Result<std::sync::Arc<dyn DynConnector>, ApiError> {
    let connector = state.registry.get(id).cloned().ok_or_else(|| {
        ApiError::from(
            Error::not_found(format!("unknown connector `{id}`"))
                .with_field("connector")
                .with_hint(format!(
                    "available connectors: {}",
                    state.registry.ids().join(", ")
                )),
        )
    })?;
    let descriptor = connector.descriptor();
    if !descriptor.is_enabled(&state.env) {
        let message = descriptor
            .disabled_message
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} connector not enabled", descriptor.display_name));
        let mut error = Error::new(ErrorKind::Unsupported, message).with_connector(descriptor.id);
        if let Some(flag) = descriptor.feature_flag {
            error = error.with_hint(format!("set {flag}=true and restart Patchbay"));
        }
        return Err(ApiError::new(StatusCode::FORBIDDEN, error));
    }
    Ok(connector)
}

/// `POST /api/connections`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectBody {
    /// The connector id (`GET /api/connectors`).
    connector: String,
    /// A name for the connection; defaults to the connector's name.
    #[serde(default)]
    label: Option<String>,
    /// Whether write operations may run on it.
    #[serde(default)]
    allow_writes: bool,
    /// The connector's connect form, field by field.
    #[serde(default)]
    #[schema(value_type = Object)]
    fields: serde_json::Map<String, serde_json::Value>,
}

#[utoipa::path(
    post,
    path = "/api/connections",
    tag = "connections",
    request_body = ConnectBody,
    responses(
        (status = 201, description = "Connected and validated: the connection, its report, and credentials shown once (webhook token, agent token)", body = serde_json::Value),
        (status = 403, description = "The connector is turned off by its feature flag", body = ErrorEnvelope<'static>),
        (status = 404, description = "No connector with that id", body = ErrorEnvelope<'static>),
        (status = 409, description = "Already connected elsewhere (a Slack workspace)", body = ErrorEnvelope<'static>),
        (status = 422, description = "The provider refused the credentials; `report` says which check failed", body = ErrorEnvelope<'static>),
        (status = 429, description = "The provider rate limited the validation; `Retry-After` says when to retry", body = ErrorEnvelope<'static>),
        (status = 503, description = "The provider or a store is unavailable; nothing was stored", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn connect(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: ConnectBody = parse_body(&body)?;
    let connector = connector_for(&state, &body.connector)?;
    let descriptor = connector.descriptor();
    let request = ConnectRequest {
        auth: AuthRequest::Form(FormFields(body.fields)),
        label: body.label,
        allow_writes: body.allow_writes,
    };
    let stored = match state
        .connections()
        .connect(tenant, connector.as_ref(), request)
        .await
    {
        Ok(stored) => stored,
        Err(ConnectFailure::Failed(error)) => return Err(error.into()),
        Err(ConnectFailure::Rejected(report)) => {
            let error = Error::new(
                ErrorKind::AuthFailed,
                format!(
                    "{} rejected the credentials; nothing was stored",
                    descriptor.display_name
                ),
            )
            .with_connector(descriptor.id)
            .with_hint("see the failed checks in `report`");
            return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error).with_report(report));
        }
    };
    #[cfg(feature = "connector-kubernetes")]
    let agent = if stored.record.connector == crate::kubectl_agent::CONNECTOR {
        match crate::kubectl_agent::issue_token(state.records.as_ref(), &stored.record).await {
            Ok(issued) => Some(crate::kubectl_agent::install_answer(
                &state.public_url,
                &issued,
            )),
            Err(error) => {
                // A cluster without a token could never connect: remove it.
                if let Err(cleanup) = state
                    .connections()
                    .disconnect(&stored.record.tenant, &stored.record)
                    .await
                {
                    tracing::warn!(connection = %stored.record.id, error = %cleanup, "could not remove a cluster whose agent token failed to store");
                }
                return Err(error.into());
            }
        }
    } else {
        None
    };
    let view = view(&state, stored.record.clone()).await;
    let setup = view.webhook.as_ref().and_then(|webhook| {
        let credential = stored
            .webhook_token
            .as_ref()
            .or(stored.webhook_secret.as_ref());
        webhook_setup(&state, &stored.record, &webhook.url, credential)
    });
    let mut body = json!({ "connection": view, "report": stored.report });
    if let Some(webhook) = &view.webhook {
        let mut shown = json!({ "url": webhook.url, "header": webhook.header });
        if let Some(setup) = setup {
            shown["setup"] = setup;
        }
        if let Some(token) = &stored.webhook_token {
            shown["token"] = json!(token.expose());
            shown["note"] = match webhook.header {
                Some(header) if is_bearer_header(header) => json!("the token is shown once; paste it as the bearer token in the provider's webhook settings (it is sent as `Authorization: Bearer <token>`)"),
                _ => json!("the token is shown once; paste it as the header's value in the provider's webhook settings"),
            };
        }
        if let Some(secret) = &stored.webhook_secret {
            shown["secret"] = json!(secret.expose());
            shown["note"] = json!("the secret is shown once; paste it as the webhook secret in the provider's webhook settings");
        }
        if descriptor.webhook.map(|webhook| webhook.auth) == Some(WebhookAuth::ProviderSignature) {
            shown["secrets"] = json!(format!("/api/connections/{}/webhook/secrets", view.id));
            shown["note"] = json!(format!(
                "{} issues the signing secret when the webhook subscription is created; add it with POST to `secrets` ({{\"secret\": \"...\"}}), and remove an old one with DELETE to `secrets`/<id> once the provider stops using it",
                descriptor.display_name
            ));
        }
        body["webhook"] = shown;
    }
    #[cfg(feature = "connector-kubernetes")]
    if let Some(agent) = agent {
        body["agent"] = agent;
    }
    Ok((StatusCode::CREATED, Json(body)))
}

#[utoipa::path(
    get,
    path = "/api/connections",
    tag = "connections",
    responses(
        (status = 200, description = "The caller's connections, oldest first", body = ConnectionList),
    ),
)]
pub(crate) async fn list_connections(
    State(state): State<AppState>,
    Principal(tenant): Principal,
) -> Result<impl IntoResponse, ApiError> {
    let records = state.records.list_connections(&tenant).await?;
    let connections =
        futures::future::join_all(records.into_iter().map(|record| view(&state, record))).await;
    Ok(Json(ConnectionList { connections }))
}

async fn load(state: &AppState, tenant: &Tenant, id: &str) -> Result<ConnectionRecord, ApiError> {
    state
        .records
        .get_connection(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))
}

#[utoipa::path(
    get,
    path = "/api/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionEnvelope),
    ),
)]
pub(crate) async fn get_connection(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    Ok(Json(ConnectionEnvelope {
        connection: view(&state, record).await,
    }))
}

/// Issues a new webhook token or signing secret for a connection (shown once);
/// the old one stops working at once.
#[utoipa::path(
    post,
    path = "/api/connections/{id}/webhook/rotate",
    tag = "webhooks",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "The new webhook credential, shown once, with the settings to enter at the provider", body = serde_json::Value),
        (status = 501, description = "The connector receives no webhooks, or its provider issues the signing secrets (add them with `POST /api/connections/{id}/webhook/secrets`)", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn rotate_webhook_credential(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let url = webhook_view(&state, &record).map(|view| view.url);
    let rotated = state
        .connections()
        .rotate_webhook_credential(&tenant, &record, connector.descriptor())
        .await?;
    let credential = match &rotated {
        RotatedCredential::Token { token, .. } => token,
        RotatedCredential::Secret(secret) => secret,
    };
    let setup = url
        .as_deref()
        .and_then(|url| webhook_setup(&state, &record, url, Some(credential)));
    let mut shown = match &rotated {
        RotatedCredential::Token { header, token } => {
            json!({ "url": url, "header": header, "token": token.expose() })
        }
        RotatedCredential::Secret(secret) => json!({ "url": url, "secret": secret.expose() }),
    };
    if let Some(setup) = setup {
        shown["setup"] = setup;
    }
    Ok(Json(json!({ "webhook": shown })))
}

/// The provider-issued webhook signing secrets of a connection: ids and dates only.
#[utoipa::path(
    get,
    path = "/api/connections/{id}/webhook/secrets",
    tag = "webhooks",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "The provider-issued signing secrets in use (ids and dates, never the secret)", body = serde_json::Value),
        (status = 501, description = "The connector's webhooks are not signed with secrets its provider issues", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn list_webhook_secrets(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let secrets = state
        .connections()
        .webhook_secrets(&record, connector.descriptor())
        .await?;
    Ok(Json(json!({ "webhook_secrets": secrets })))
}

/// Adds a provider-issued webhook signing secret; answers its id, never the secret.
#[utoipa::path(
    post,
    path = "/api/connections/{id}/webhook/secrets",
    tag = "webhooks",
    params(("id" = String, Path, description = "The connection id")),
    request_body = serde_json::Value,
    responses(
        (status = 201, description = "Added; deliveries signed with it are accepted", body = serde_json::Value),
        (status = 409, description = "The connection already has this secret", body = ErrorEnvelope<'static>),
        (status = 501, description = "The connector's webhooks are not signed with secrets its provider issues", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn add_webhook_secret(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // Read by hand so that no parse error can echo the secret.
    let body: serde_json::Map<String, serde_json::Value> = parse_body(&body)?;
    let secret = match (body.get("secret"), body.len()) {
        (Some(serde_json::Value::String(secret)), 1) => {
            patchbay_core::SecretString::new(secret.clone())
        }
        _ => {
            return Err(Error::invalid_input(
                "secret",
                "send {\"secret\": \"<signing secret>\"} and nothing else",
            )
            .into())
        }
    };
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let added = state
        .connections()
        .add_webhook_secret(&record, connector.descriptor(), secret)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "webhook_secret": added })),
    ))
}

/// Removes a provider-issued webhook signing secret by id.
#[utoipa::path(
    delete,
    path = "/api/connections/{id}/webhook/secrets/{secret_id}",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The connection id"),
        ("secret_id" = String, Path, description = "The secret's id"),
    ),
    responses(
        (status = 200, description = "Removed", body = serde_json::Value),
        (status = 501, description = "The connector's webhooks are not signed with secrets its provider issues", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn remove_webhook_secret(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path((id, secret_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    state
        .connections()
        .remove_webhook_secret(&record, connector.descriptor(), &secret_id)
        .await?;
    Ok(Json(json!({ "deleted": { "webhook_secret": secret_id } })))
}

#[utoipa::path(
    post,
    path = "/api/connections/{id}/validate",
    tag = "connections",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "The new validation report, one line per check", body = serde_json::Value),
    ),
)]
pub(crate) async fn revalidate(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let report = state
        .connections()
        .revalidate(&tenant, &record, connector.as_ref())
        .await?;
    Ok(Json(
        json!({ "report": report, "status": status_of(&report) }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/connections/{id}/query/{operation}",
    tag = "queries",
    params(
        ("id" = String, Path, description = "The connection id"),
        ("operation" = String, Path, description = "The operation, one of the connector's (`GET /api/connectors`)"),
    ),
    request_body(content = serde_json::Value, description = "The operation's parameters; each operation's schema is in `components.schemas` as `<connector>.<operation>`"),
    responses(
        (status = 200, description = "The operation's JSON: `data`, and `truncated`/`next_cursor` when cut short", body = serde_json::Value),
        (status = 403, description = "A write on a connection that does not allow writes, or the provider refused a permission", body = ErrorEnvelope<'static>),
        (status = 422, description = "The provider rejected the stored credentials; reconnect", body = ErrorEnvelope<'static>),
        (status = 429, description = "The provider rate limited the call; `Retry-After` says when to retry", body = ErrorEnvelope<'static>),
        (status = 503, description = "The provider or the agent is unavailable", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn query(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path((id, operation)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let params: serde_json::Value = parse_body(&body)?;
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let output = state
        .connections()
        .query(&record, connector.as_ref(), &operation, params)
        .await?;
    Ok(Json(output))
}

#[utoipa::path(
    delete,
    path = "/api/connections/{id}",
    tag = "connections",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "Removed: the secret, the record, what the provider revoke did, and for clusters the agent revocation", body = serde_json::Value),
    ),
)]
pub(crate) async fn disconnect(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    // An agent's token is revoked and its socket closed before the record goes, so
    // the agent is told "Token revoked" and stops.
    #[cfg(feature = "connector-kubernetes")]
    let agent = if record.connector == crate::kubectl_agent::CONNECTOR {
        Some(crate::kubectl_agent::revoke(&state, &record.id).await?)
    } else {
        None
    };
    let revoke = state.connections().disconnect(&tenant, &record).await?;
    let mut body = json!({
        "deleted": { "connection": record.id, "secret": true, "record": true },
        "revoke": revoke,
    });
    #[cfg(feature = "connector-kubernetes")]
    if let Some(agent) = agent {
        body["agent"] = json!(agent);
    }
    Ok(Json(body))
}

/// Revokes a cluster's agent token and closes its live socket at once, keeping
/// the connection; 404 for connections without an agent.
#[utoipa::path(
    post,
    path = "/api/connections/{id}/agent-token/revoke",
    tag = "kubernetes",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 200, description = "Tokens revoked and agent sockets closed, with the helm uninstall command", body = serde_json::Value),
    ),
)]
pub(crate) async fn revoke_agent_token(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    #[cfg(feature = "connector-kubernetes")]
    if record.connector == crate::kubectl_agent::CONNECTOR {
        let agent = crate::kubectl_agent::revoke(&state, &record.id).await?;
        return Ok(Json(json!({ "agent": agent })));
    }
    Err(no_agent_token(&record))
}

/// 404 for an agent-token call on a connection that is not a cluster.
fn no_agent_token(record: &ConnectionRecord) -> ApiError {
    Error::not_found(format!(
        "connection `{}` ({}) has no agent token",
        record.id, record.connector
    ))
    .with_hint("only Kubernetes clusters have agent tokens")
    .into()
}

/// Gives a cluster a new agent token: the old ones are revoked and their sockets
/// closed, and the answer shows the new token and `values.yaml` once, with the
/// `helm upgrade` command that installs them.
#[utoipa::path(
    post,
    path = "/api/connections/{id}/agent-token/rotate",
    tag = "kubernetes",
    params(("id" = String, Path, description = "The connection id")),
    responses(
        (status = 201, description = "A new agent token and values.yaml, shown once, with the helm upgrade command; the old token is revoked", body = serde_json::Value),
    ),
)]
pub(crate) async fn rotate_agent_token(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    #[cfg(feature = "connector-kubernetes")]
    if record.connector == crate::kubectl_agent::CONNECTOR {
        let revoked = crate::kubectl_agent::revoke(&state, &record.id).await?;
        let issued = crate::kubectl_agent::issue_token(state.records.as_ref(), &record).await?;
        let mut agent = crate::kubectl_agent::install_answer(&state.public_url, &issued);
        agent["helm_upgrade"] = json!(patchbay_connector_kubernetes::install::HELM_UPGRADE);
        agent["note"] = json!("the new token and values.yaml are shown once; run the helm upgrade command with them in the cluster (the old token no longer connects)");
        agent["revoked"] = json!(revoked);
        return Ok((StatusCode::CREATED, Json(json!({ "agent": agent }))));
    }
    Err(no_agent_token(&record))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertsQuery {
    /// Only alerts after this cursor (a page's `next_cursor`).
    after: Option<i64>,
    /// At most this many, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/alerts",
    tag = "alerts",
    params(AlertsQuery),
    responses(
        (status = 200, description = "One page of the caller's alerts in cursor order", body = AlertPage),
    ),
)]
pub(crate) async fn list_alerts(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    query: Result<Query<AlertsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::from(
            Error::invalid_input("query", rejection.body_text())
                .with_hint("use ?after=<cursor>&limit=<1..1000>"),
        )
    })?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::invalid_input("limit", "limit must be between 1 and 1000").into());
    }
    let page = state
        .records
        .list_alerts(&tenant, query.after, limit)
        .await?;
    Ok(Json(page))
}

#[cfg(test)]
mod tests {
    use super::encode_segment;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("user-1_a.b~"), "user-1_a.b~");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
