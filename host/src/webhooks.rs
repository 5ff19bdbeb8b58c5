//! Inbound provider webhooks on each connector's declared path.
//!
//! Authenticate on the raw body first (fail closed), then normalise, store
//! durably, and only then acknowledge with 202.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use patchbay_core::connector::ConnectorContext;
use patchbay_core::{
    Error, ErrorKind, InboundWebhook, WebhookAuth, WebhookOutcome, WebhookReply, WebhookRoute,
};
use patchbay_store::{ConnectionRecord, NewAlert};
use serde_json::json;

use crate::api::connector_for;
use crate::auth::token_matches_hash;
use crate::config::WEBHOOK_BODY_LIMIT;
use crate::error::ApiError;
use crate::state::AppState;

/// One route per connector that declares a webhook.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for descriptor in state.registry.descriptors() {
        let Some(webhook) = descriptor.webhook else {
            continue;
        };
        let connector = descriptor.id;
        let handler = match webhook.auth {
            WebhookAuth::App => post(
                move |state: State<AppState>,
                      headers: HeaderMap,
                      body: Result<Bytes, BytesRejection>| async move {
                    receive_app(state, connector, headers, body).await
                },
            ),
            WebhookAuth::Token { .. } | WebhookAuth::Signature => post(
                move |state: State<AppState>,
                      Path(user_id): Path<String>,
                      headers: HeaderMap,
                      body: Result<Bytes, BytesRejection>| async move {
                    receive(state, connector, user_id, headers, body).await
                },
            ),
        };
        router = router.route(webhook.path, handler);
    }
    router.layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
}

fn unauthorized(header: Option<&str>) -> ApiError {
    let hint = match header {
        Some(header) => {
            format!("send the {header} header with the token shown when the connection was made")
        }
        None => "check the webhook secret configured at the provider".to_owned(),
    };
    ApiError::unauthenticated("webhook authentication failed", hint)
}

fn presented_token<'a>(headers: &'a HeaderMap, header: &str) -> Option<&'a str> {
    let value = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    value(header)
        .or_else(|| value("authorization").and_then(|auth| auth.strip_prefix("Bearer ")))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

fn body_or_rejection(
    connector_id: &'static str,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        ApiError::new(
            rejection.status(),
            Error::invalid_input("body", rejection.body_text()).with_connector(connector_id),
        )
    })
}

/// One endpoint for a whole app: the connector verifies the delivery and names
/// the connection by its routing key.
async fn receive_app(
    State(state): State<AppState>,
    connector_id: &'static str,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_rejection(connector_id, body)?;
    // A connector whose feature flag is off answers with its disabled message.
    let connector = connector_for(&state, connector_id)?;
    let request = InboundWebhook { headers, body };
    let routing_key = match connector.route_webhook(&request).await {
        Ok(WebhookRoute::Reply(reply)) => return Ok(reply_response(reply)),
        Ok(WebhookRoute::Connection(routing_key)) => routing_key,
        Err(error) if error.kind() == ErrorKind::AuthFailed => {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, error))
        }
        Err(error) => return Err(error.into()),
    };
    let Some(record) = state
        .records
        .routed_connection(connector_id, &routing_key)
        .await?
    else {
        // Acknowledge, so the provider does not retry a delivery no connection wants.
        tracing::info!(
            connector = connector_id,
            "app webhook for no connection; ignored"
        );
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": 0, "duplicates": 0, "ignored": true })),
        )
            .into_response());
    };
    let outcome = connector
        .webhook(&context(&record), &record.metadata, None, &request)
        .await?;
    store_and_acknowledge(&state, &record, outcome).await
}

async fn receive(
    State(state): State<AppState>,
    connector_id: &'static str,
    user_id: String,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_rejection(connector_id, body)?;
    // A connector whose feature flag is off answers with its disabled message.
    let connector = connector_for(&state, connector_id)?;
    let auth = connector
        .descriptor()
        .webhook
        .map(|webhook| webhook.auth)
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let request = InboundWebhook { headers, body };
    let candidates = state
        .records
        .webhook_connections(connector_id, &user_id)
        .await?;

    let (record, outcome) = match auth {
        WebhookAuth::Token { header } => {
            let token = presented_token(&request.headers, header);
            let record = token
                .and_then(|token| {
                    candidates.into_iter().find(|record| {
                        record
                            .webhook_token_hash
                            .as_deref()
                            .is_some_and(|hash| token_matches_hash(token, hash))
                    })
                })
                .ok_or_else(|| unauthorized(Some(header)))?;
            let outcome = connector
                .webhook(&context(&record), &record.metadata, None, &request)
                .await?;
            (record, outcome)
        }
        WebhookAuth::Signature => verify_signed(&state, candidates, &request).await?,
        WebhookAuth::App => return Err(ApiError::not_found("webhook")),
    };

    store_and_acknowledge(&state, &record, outcome).await
}

fn context(record: &ConnectionRecord) -> ConnectorContext {
    ConnectorContext {
        connection_id: Some(record.id.clone()),
        tenant: Some(record.tenant.clone()),
    }
}

/// Tries each candidate connection's secrets until one verifies the signature.
async fn verify_signed(
    state: &AppState,
    candidates: Vec<ConnectionRecord>,
    request: &InboundWebhook,
) -> Result<(ConnectionRecord, WebhookOutcome), ApiError> {
    for record in candidates {
        let connector = match state.registry.get(&record.connector) {
            Some(connector) => connector.clone(),
            None => continue,
        };
        let secrets = state.secrets.get(&record.secret_ref).await?;
        match connector
            .webhook(&context(&record), &record.metadata, Some(&secrets), request)
            .await
        {
            Ok(outcome) => return Ok((record, outcome)),
            Err(error) if error.kind() == ErrorKind::AuthFailed => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(unauthorized(None))
}

async fn store_and_acknowledge(
    state: &AppState,
    record: &ConnectionRecord,
    outcome: WebhookOutcome,
) -> Result<Response, ApiError> {
    let results = ingest_all(state, record, outcome.events).await;
    let mut accepted = 0usize;
    let mut duplicates = 0usize;
    for result in results {
        if result? {
            accepted += 1;
        } else {
            duplicates += 1;
        }
    }
    if let Some(reply) = outcome.reply {
        return Ok(reply_response(reply));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": accepted, "duplicates": duplicates })),
    )
        .into_response())
}

fn reply_response(reply: WebhookReply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    (
        status,
        [(axum::http::header::CONTENT_TYPE, reply.content_type)],
        reply.body,
    )
        .into_response()
}

/// Hands every event to the group-commit writer at once, so one delivery's events share a transaction.
async fn ingest_all(
    state: &AppState,
    record: &ConnectionRecord,
    events: Vec<patchbay_core::NormalizedAlert>,
) -> Vec<patchbay_core::Result<bool>> {
    let pending: Vec<_> = events
        .into_iter()
        .map(|alert| {
            let ingestor = state.ingestor.clone();
            let new_alert = NewAlert {
                connection_id: record.id.clone(),
                tenant: record.tenant.clone(),
                alert,
            };
            tokio::spawn(async move { ingestor.ingest(new_alert).await })
        })
        .collect();
    let mut results = Vec::with_capacity(pending.len());
    for handle in pending {
        results.push(handle.await.unwrap_or_else(|join_error| {
            Err(Error::internal(format!(
                "alert ingestion task failed: {join_error}"
            )))
        }));
    }
    results
}
