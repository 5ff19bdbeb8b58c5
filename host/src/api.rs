//! The JSON API: connectors, connections, queries and alerts.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use patchbay_core::connector::{ConnectorContext, FormFields};
use patchbay_core::{
    AuthRequest, ConnectorDescriptor, DynConnector, DynCredentials, Error, ErrorKind, RevealedJson,
    Tenant, ValidationReport, ValidationStatus, WebhookAuth,
};
use patchbay_store::{modify, ConnectionRecord, ConnectionStatus, SecretLocation, SecretRef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{generate_token, hash_token, Principal};
use crate::error::ApiError;
use crate::state::AppState;

/// The prefix of webhook tokens.
pub const WEBHOOK_TOKEN_PREFIX: &str = "pbw_";
/// The prefix of webhook signing secrets.
pub const WEBHOOK_SECRET_PREFIX: &str = "pbs_";

/// The JSON API routes (state is supplied by the caller).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/connectors", get(list_connectors))
        .route("/api/connectors/status", get(connectors_status))
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
        .route("/api/connections/{id}/query/{operation}", post(query))
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

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let (records, secrets) = tokio::join!(state.records.health(), state.secrets.health());
    let describe = |result: &patchbay_core::Result<()>| match result {
        Ok(()) => json!({ "status": "ok" }),
        Err(error) => json!({ "status": "unavailable", "message": error.message() }),
    };
    let ready = records.is_ok() && secrets.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if ready { "ok" } else { "unavailable" },
        "records": describe(&records),
        "secrets": describe(&secrets),
        "secrets_backend": state.secrets.backend(),
    });
    (status, Json(body))
}

fn connector_summary(state: &AppState, descriptor: &ConnectorDescriptor) -> serde_json::Value {
    let mut document = serde_json::to_value(descriptor.document()).unwrap_or_default();
    document["enabled"] = json!(descriptor.is_enabled(&state.env));
    document["configured"] =
        json!(descriptor.is_enabled(&state.env) && descriptor.is_configured(&state.env));
    document
}

async fn list_connectors(
    State(state): State<AppState>,
    Principal(_): Principal,
) -> impl IntoResponse {
    let connectors: Vec<_> = state
        .registry
        .descriptors()
        .map(|descriptor| connector_summary(&state, descriptor))
        .collect();
    Json(json!({ "connectors": connectors }))
}

/// A connection as the API shows it: no secret, no secret reference.
#[derive(Debug, Serialize)]
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
}

/// Where the provider should send webhooks for a connection.
#[derive(Debug, Serialize)]
pub struct WebhookView {
    url: String,
    header: Option<&'static str>,
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
    Some(WebhookView {
        url: format!("{}{path}", state.public_url),
        header: match webhook.auth {
            WebhookAuth::Token { header } => Some(header),
            WebhookAuth::Signature | WebhookAuth::App => None,
        },
    })
}

fn view(state: &AppState, record: ConnectionRecord) -> ConnectionView {
    let webhook = webhook_view(state, &record);
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
    }
}

async fn connectors_status(
    State(state): State<AppState>,
    Principal(tenant): Principal,
) -> Result<impl IntoResponse, ApiError> {
    let records = state.records.list_connections(&tenant).await?;
    let mut connectors = BTreeMap::new();
    for descriptor in state.registry.descriptors() {
        let connections: Vec<_> = records
            .iter()
            .filter(|record| record.connector == descriptor.id)
            .map(|record| {
                json!({
                    "id": record.id,
                    "label": record.label,
                    "status": record.status,
                    "validated_at": record.validated_at,
                })
            })
            .collect();
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConnectBody {
    connector: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    allow_writes: bool,
    #[serde(default)]
    fields: serde_json::Map<String, serde_json::Value>,
}

pub(crate) fn status_of(report: &ValidationReport) -> ConnectionStatus {
    match report.overall {
        ValidationStatus::Ok => ConnectionStatus::Active,
        ValidationStatus::Degraded => ConnectionStatus::Degraded,
        ValidationStatus::Failed => ConnectionStatus::Failed,
    }
}

async fn connect(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: ConnectBody = parse_body(&body)?;
    let connector = connector_for(&state, &body.connector)?;
    let descriptor = connector.descriptor();
    let ctx = ConnectorContext {
        connection_id: None,
        tenant: Some(tenant.clone()),
    };
    let mut credentials = connector
        .authenticate(AuthRequest::Form(FormFields(body.fields)))
        .await
        .map_err(|error| error.with_connector(descriptor.id))?;
    let report = connector.validate(&ctx, &mut credentials).await?;
    if !report.passed() {
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

    let stored = store_connection(
        &state,
        connector.as_ref(),
        tenant,
        body.label,
        body.allow_writes,
        credentials,
        report.clone(),
    )
    .await?;
    let record = stored.record;
    let webhook_token = stored.webhook_token;
    let webhook_secret = stored.webhook_secret;
    tracing::info!(connection = %record.id, connector = descriptor.id, "connected");

    let view = view(&state, record);
    let mut body = json!({ "connection": view, "report": report });
    if let Some(webhook) = &view.webhook {
        let mut shown = json!({ "url": webhook.url, "header": webhook.header });
        if let Some(token) = &webhook_token {
            shown["token"] = json!(token.expose());
            shown["note"] = json!("the token is shown once; paste it as the header's value in the provider's webhook settings");
        }
        if let Some(secret) = &webhook_secret {
            shown["secret"] = json!(secret.expose());
            shown["note"] = json!("the secret is shown once; paste it as the webhook secret in the provider's webhook settings");
        }
        body["webhook"] = shown;
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// A connection just stored, with the webhook credentials shown once.
pub struct StoredConnection {
    /// The saved record.
    pub record: ConnectionRecord,
    /// The webhook token, for token-authenticated webhooks.
    pub webhook_token: Option<patchbay_core::SecretString>,
    /// The webhook signing secret, for signature-verified webhooks.
    pub webhook_secret: Option<patchbay_core::SecretString>,
}

/// Stores validated credentials as a new connection: webhook token or secret
/// generation, the secret write, the record write, and clean-up when the record fails.
/// Shared by `POST /api/connections` and the OAuth callbacks.
pub async fn store_connection(
    state: &AppState,
    connector: &dyn DynConnector,
    tenant: Tenant,
    label: Option<String>,
    allow_writes: bool,
    mut credentials: DynCredentials,
    report: ValidationReport,
) -> Result<StoredConnection, ApiError> {
    let descriptor = connector.descriptor();
    let id = uuid::Uuid::new_v4().to_string();
    let webhook_auth = descriptor.webhook.map(|webhook| webhook.auth);
    let webhook_token = match webhook_auth {
        Some(WebhookAuth::Token { .. }) => Some(generate_token(WEBHOOK_TOKEN_PREFIX)),
        _ => None,
    };
    // Signature webhooks are verified by the connector with a secret kept beside
    // the connection's other secrets.
    let webhook_secret = match webhook_auth {
        Some(WebhookAuth::Signature) => {
            let secret = generate_token(WEBHOOK_SECRET_PREFIX);
            let mut secrets = credentials.secrets.into_exposed();
            if let Some(fields) = secrets.as_object_mut() {
                fields.insert("webhook_secret".into(), json!(secret.expose()));
            }
            credentials.secrets = RevealedJson::new(secrets);
            Some(secret)
        }
        _ => None,
    };
    let location = SecretLocation::new(&tenant, descriptor.id, id.clone());
    let secret_ref = match state.secrets.put(&location, &credentials.secrets).await {
        Ok(secret_ref) => secret_ref,
        Err(error) => {
            // A write that timed out may still land once the store recovers.
            if let Some(reference) = state.secrets.reference_for(&location) {
                remove_in_background(state.secrets.clone(), reference);
            }
            return Err(error.into());
        }
    };
    let now = Utc::now();
    let routing_key = connector.routing_key(&credentials.config);
    let record = ConnectionRecord {
        id,
        tenant,
        connector: descriptor.id.to_owned(),
        label: label
            .filter(|label| !label.trim().is_empty())
            .unwrap_or_else(|| descriptor.display_name.to_owned()),
        metadata: credentials.config,
        secret_ref: secret_ref.clone(),
        status: status_of(&report),
        webhook_token_hash: webhook_token
            .as_ref()
            .map(|token| hash_token(token.expose())),
        routing_key,
        allow_writes,
        last_report: Some(report),
        created_at: now,
        validated_at: Some(now),
    };
    // A reinstall replaces the tenant's connection with the same routing key (a Slack
    // workspace) in the same transaction; another tenant's is a conflict.
    let replaced = match state.records.insert_routed_connection(&record).await {
        Ok(replaced) => replaced,
        Err(error) => {
            if let Err(cleanup) = state.secrets.delete(&secret_ref).await {
                tracing::warn!(connection = %record.id, error = %cleanup, "could not remove the secret of a connection whose record failed to save; retrying in the background");
                remove_in_background(state.secrets.clone(), secret_ref);
            }
            if error.kind() == ErrorKind::Conflict {
                return Err(routing_key_conflict(descriptor, &record).into());
            }
            return Err(error.into());
        }
    };
    if let Some(old) = replaced {
        tracing::info!(connection = %record.id, replaced = %old.id, connector = descriptor.id, "reinstall replaced a connection");
        if let Err(cleanup) = state.secrets.delete(&old.secret_ref).await {
            tracing::warn!(connection = %old.id, error = %cleanup, "could not remove the secret of a replaced connection; retrying in the background");
            remove_in_background(state.secrets.clone(), old.secret_ref);
        }
    }
    Ok(StoredConnection {
        record,
        webhook_token,
        webhook_secret,
    })
}

/// The answer when another account's connection already has this routing key: one
/// workspace sends its events to one connection.
fn routing_key_conflict(descriptor: &ConnectorDescriptor, record: &ConnectionRecord) -> Error {
    let workspace = record
        .metadata
        .get("team_name")
        .and_then(serde_json::Value::as_str)
        .filter(|name| !name.trim().is_empty())
        .or(record.routing_key.as_deref())
        .unwrap_or_default();
    Error::new(
        ErrorKind::Conflict,
        format!(
            "{} workspace {workspace} is already connected to another Patchbay account; \
             disconnect it there first",
            descriptor.display_name
        ),
    )
    .with_connector(descriptor.id)
    .with_hint("ask the account that connected it to disconnect it, then connect again")
}

/// How long a background clean-up keeps trying to remove an orphaned secret.
const CLEANUP_PERSISTENCE: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes a secret that no record points to, retrying until the store answers,
/// and confirming it stays gone (a delayed write may land after a first delete).
fn remove_in_background(
    secrets: std::sync::Arc<dyn patchbay_store::SecretStore>,
    reference: SecretRef,
) {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut confirmations = 0;
        while started.elapsed() < CLEANUP_PERSISTENCE {
            let gone = secrets.delete(&reference).await.is_ok()
                && matches!(secrets.get(&reference).await, Err(error) if error.kind() == ErrorKind::NotFound);
            confirmations = if gone { confirmations + 1 } else { 0 };
            if confirmations >= 2 {
                tracing::info!(%reference, "removed an orphaned secret");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        tracing::error!(%reference, "gave up removing an orphaned secret; delete it by hand");
    });
}

async fn list_connections(
    State(state): State<AppState>,
    Principal(tenant): Principal,
) -> Result<impl IntoResponse, ApiError> {
    let records = state.records.list_connections(&tenant).await?;
    let views: Vec<_> = records
        .into_iter()
        .map(|record| view(&state, record))
        .collect();
    Ok(Json(json!({ "connections": views })))
}

async fn load(state: &AppState, tenant: &Tenant, id: &str) -> Result<ConnectionRecord, ApiError> {
    state
        .records
        .get_connection(tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))
}

async fn credentials_of(
    state: &AppState,
    record: &ConnectionRecord,
) -> Result<DynCredentials, ApiError> {
    let secrets = state
        .secrets
        .get(&record.secret_ref)
        .await
        .map_err(|error| {
            if error.kind() == ErrorKind::NotFound {
                ApiError::from(
                    Error::new(
                        ErrorKind::NeedsReauth,
                        "the stored credentials for this connection are gone",
                    )
                    .with_connector(record.connector.clone())
                    .with_hint("disconnect and connect again"),
                )
            } else {
                ApiError::from(error)
            }
        })?;
    Ok(DynCredentials {
        config: record.metadata.clone(),
        secrets,
    })
}

/// The connection's credentials, with an OAuth access token refreshed first when it
/// is about to expire.
async fn fresh_credentials(
    state: &AppState,
    descriptor: &'static ConnectorDescriptor,
    record: &ConnectionRecord,
) -> Result<DynCredentials, ApiError> {
    let mut credentials = credentials_of(state, record).await?;
    if descriptor.oauth.is_some() {
        credentials.secrets = state
            .refresher
            .fresh_secrets(descriptor, record, credentials.secrets)
            .await?;
    }
    Ok(credentials)
}

/// Revokes an OAuth connection's grant at the provider; reports failures instead of hiding them.
async fn revoke_at_provider(
    state: &AppState,
    tenant: &Tenant,
    record: &ConnectionRecord,
) -> serde_json::Value {
    let Some(connector) = state.registry.get(&record.connector) else {
        return json!("not_offered");
    };
    let descriptor = connector.descriptor();
    if descriptor.oauth.is_none() {
        return json!("not_offered");
    }
    let credentials = match credentials_of(state, record).await {
        Ok(credentials) => credentials,
        Err(error) => return json!({ "failed": error.error().message() }),
    };
    let client = state.oauth.client_credentials(descriptor).ok();
    let ctx = ConnectorContext {
        connection_id: Some(record.id.clone()),
        tenant: Some(tenant.clone()),
    };
    match connector.revoke(&ctx, &credentials, client.as_ref()).await {
        Ok(patchbay_core::RevokeOutcome::Revoked) => json!("revoked"),
        Ok(patchbay_core::RevokeOutcome::NotOffered) => json!("not_offered"),
        Err(error) => {
            tracing::warn!(connection = %record.id, kind = %error.kind(), message = %error.message(), "revoking at the provider failed; deleting locally anyway");
            json!({ "failed": error.message() })
        }
    }
}

async fn get_connection(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    Ok(Json(json!({ "connection": view(&state, record) })))
}

/// Issues a new webhook token or signing secret for a connection (shown once);
/// the old one stops working at once.
async fn rotate_webhook_credential(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let descriptor = connector.descriptor();
    let unsupported = |message: &str| {
        ApiError::from(Error::unsupported(message.to_owned()).with_connector(descriptor.id))
    };
    let auth = descriptor
        .webhook
        .map(|webhook| webhook.auth)
        .ok_or_else(|| unsupported("this connector receives no webhooks"))?;
    let url = webhook_view(&state, &record).map(|view| view.url);
    let shown = match auth {
        WebhookAuth::Token { header } => {
            let token = generate_token(WEBHOOK_TOKEN_PREFIX);
            state
                .records
                .update_webhook_token_hash(&tenant, &record.id, &hash_token(token.expose()))
                .await?;
            json!({ "url": url, "header": header, "token": token.expose() })
        }
        WebhookAuth::Signature => {
            let secret = generate_token(WEBHOOK_SECRET_PREFIX);
            // Only `webhook_secret` changes, merged into the latest secrets under
            // check-and-set: a token refreshed meanwhile is kept.
            modify(state.secrets.as_ref(), &record.secret_ref, |latest| {
                let mut secrets = latest.expose().clone();
                if let Some(fields) = secrets.as_object_mut() {
                    fields.insert("webhook_secret".into(), json!(secret.expose()));
                }
                Ok(RevealedJson::new(secrets))
            })
            .await?;
            json!({ "url": url, "secret": secret.expose() })
        }
        WebhookAuth::App => {
            return Err(unsupported(
                "app-level webhooks are signed with the app's signing secret; there is nothing to rotate per connection",
            ))
        }
    };
    tracing::info!(connection = %record.id, connector = descriptor.id, "rotated webhook credential");
    Ok(Json(json!({ "webhook": shown })))
}

async fn revalidate(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let descriptor = connector.descriptor();
    let mut credentials = fresh_credentials(&state, descriptor, &record).await?;
    let ctx = ConnectorContext {
        connection_id: Some(record.id.clone()),
        tenant: Some(tenant.clone()),
    };
    let report = match connector.validate(&ctx, &mut credentials).await {
        Err(error) if error.kind() == ErrorKind::AuthFailed && descriptor.oauth.is_some() => {
            credentials.secrets = state
                .refresher
                .refresh_after_rejection(descriptor, &record, &credentials.secrets)
                .await?;
            connector.validate(&ctx, &mut credentials).await?
        }
        outcome => outcome?,
    };
    state
        .records
        .update_validation(
            &tenant,
            &record.id,
            status_of(&report),
            &credentials.config,
            &report,
        )
        .await?;
    Ok(Json(
        json!({ "report": report, "status": status_of(&report) }),
    ))
}

async fn query(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path((id, operation)): Path<(String, String)>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let params: serde_json::Value = parse_body(&body)?;
    let record = load(&state, &tenant, &id).await?;
    let connector = connector_for(&state, &record.connector)?;
    let descriptor = connector.descriptor();
    refuse_unallowed_write(descriptor, &record, &operation)?;
    let mut credentials = fresh_credentials(&state, descriptor, &record).await?;
    let ctx = ConnectorContext {
        connection_id: Some(record.id.clone()),
        tenant: Some(tenant),
    };
    let output = match connector
        .query(&ctx, &credentials, &operation, params.clone())
        .await
    {
        // The token may have been revoked or expired early: refresh once and retry.
        Err(error) if error.kind() == ErrorKind::AuthFailed && descriptor.oauth.is_some() => {
            credentials.secrets = state
                .refresher
                .refresh_after_rejection(descriptor, &record, &credentials.secrets)
                .await?;
            connector
                .query(&ctx, &credentials, &operation, params)
                .await
        }
        outcome => outcome,
    }
    .map_err(|error| error.with_connector(record.connector.clone()))?;
    Ok(Json(output))
}

/// Refuses an operation that changes provider state on a connection whose owner
/// did not allow writes when connecting (403, naming the setting).
fn refuse_unallowed_write(
    descriptor: &ConnectorDescriptor,
    record: &ConnectionRecord,
    operation: &str,
) -> Result<(), ApiError> {
    let writes = (descriptor.operations)()
        .iter()
        .any(|declared| declared.name == operation && !declared.read_only);
    if !writes || record.allow_writes {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "`{operation}` changes {} state, and this connection was made without allow_writes",
                descriptor.display_name
            ),
        )
        .with_field("allow_writes")
        .with_connector(descriptor.id)
        .with_hint(
            "reconnect with \"allow_writes\": true (POST /api/connections or the OAuth start body) to let agents run write operations",
        ),
    ))
}

async fn disconnect(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let record = load(&state, &tenant, &id).await?;
    let revoke = revoke_at_provider(&state, &tenant, &record).await;
    let provider = state
        .registry
        .descriptor(&record.connector)
        .map_or(record.connector.as_str(), |descriptor| {
            descriptor.display_name
        });
    if let Err(error) = state.secrets.delete(&record.secret_ref).await {
        return Err(ApiError::from(
            Error::new(
                error.kind(),
                partial_disconnect(provider, &revoke, DisconnectStage::Secret, &error),
            )
            .with_hint("retry the disconnect once the credential store is reachable"),
        ));
    }
    if let Err(error) = state.records.delete_connection(&tenant, &record.id).await {
        return Err(ApiError::from(
            Error::new(
                error.kind(),
                partial_disconnect(provider, &revoke, DisconnectStage::Record, &error),
            )
            .with_hint("retry the disconnect"),
        ));
    }
    tracing::info!(connection = %record.id, connector = %record.connector, "disconnected");
    Ok(Json(json!({
        "deleted": { "connection": record.id, "secret": true, "record": true },
        "revoke": revoke,
    })))
}

/// Which local deletion failed during a disconnect.
#[derive(Debug, Clone, Copy)]
enum DisconnectStage {
    /// Deleting the secret failed: nothing local was deleted.
    Secret,
    /// The secret is gone but the record remains.
    Record,
}

/// Says exactly what a disconnect did before a local deletion failed: whether the
/// grant was revoked at the provider, and what is left here.
fn partial_disconnect(
    provider: &str,
    revoke: &serde_json::Value,
    stage: DisconnectStage,
    error: &Error,
) -> String {
    let at_provider = match revoke {
        serde_json::Value::String(outcome) if outcome == "revoked" => {
            format!("{provider} revoked the grant, so the stored credentials no longer work; ")
        }
        serde_json::Value::Object(failed) => format!(
            "revoking at {provider} failed ({}); ",
            failed
                .get("failed")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("no reason given")
        ),
        _ => String::new(),
    };
    let here = match stage {
        DisconnectStage::Secret => format!(
            "the connection's secret could not be deleted ({}), so the connection is still listed",
            error.message()
        ),
        DisconnectStage::Record => format!(
            "the secret was deleted but the connection record was not ({}); the connection is unusable until the disconnect is retried",
            error.message()
        ),
    };
    format!("{at_provider}{here}")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    after: Option<i64>,
    limit: Option<u32>,
}

async fn list_alerts(
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
    use super::{encode_segment, partial_disconnect, DisconnectStage};
    use patchbay_core::Error;
    use serde_json::json;

    #[test]
    fn a_partial_disconnect_says_what_happened_at_the_provider_and_here() {
        let down = Error::unavailable("credential store unavailable");
        assert_eq!(
            partial_disconnect("GitHub", &json!("revoked"), DisconnectStage::Secret, &down),
            "GitHub revoked the grant, so the stored credentials no longer work; the \
             connection's secret could not be deleted (credential store unavailable), so the \
             connection is still listed"
        );
        assert_eq!(
            partial_disconnect(
                "Slack",
                &json!({ "failed": "Slack answered 500" }),
                DisconnectStage::Record,
                &Error::unavailable("records database unavailable"),
            ),
            "revoking at Slack failed (Slack answered 500); the secret was deleted but the \
             connection record was not (records database unavailable); the connection is \
             unusable until the disconnect is retried"
        );
        assert_eq!(
            partial_disconnect(
                "Datadog",
                &json!("not_offered"),
                DisconnectStage::Secret,
                &down
            ),
            "the connection's secret could not be deleted (credential store unavailable), so \
             the connection is still listed"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("user-1_a.b~"), "user-1_a.b~");
        assert_eq!(encode_segment("a/b c"), "a%2Fb%20c");
    }
}
