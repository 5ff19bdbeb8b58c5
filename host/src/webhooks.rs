//! Inbound provider webhooks on each connector's declared path.
//!
//! Every delivery is first verified on the raw request (fail closed): the
//! connector's `verify` yields the `VerifiedDelivery` that `normalize` requires,
//! so nothing unverified is normalised or stored. Events are stored durably
//! before the 202 acknowledgement.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter};
use axum::{Json, Router};
use patchbay_core::connector::ConnectorContext;
use patchbay_core::{
    Error, ErrorKind, InboundWebhook, WebhookAuth, WebhookKey, WebhookMethod, WebhookOutcome,
    WebhookReply, WebhookRoute,
};
use patchbay_store::{ConnectionRecord, NewAlert};
use serde_json::json;

use crate::api::connector_for;
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
        let mut handler = MethodRouter::new();
        for method in webhook.methods {
            let filter = match method {
                WebhookMethod::Post => MethodFilter::POST,
                WebhookMethod::Put => MethodFilter::PUT,
            };
            handler = match webhook.auth {
                WebhookAuth::App => handler.on(
                    filter,
                    move |state: State<AppState>,
                          headers: HeaderMap,
                          body: Result<Bytes, BytesRejection>| async move {
                        let arrived = Instant::now();
                        let answer = receive_app(state, connector, headers, body).await;
                        record_delivery(connector, arrived, &answer);
                        answer
                    },
                ),
                WebhookAuth::Token { .. }
                | WebhookAuth::Signature
                | WebhookAuth::ProviderSignature => handler.on(
                    filter,
                    move |state: State<AppState>,
                          Path(user_id): Path<String>,
                          headers: HeaderMap,
                          body: Result<Bytes, BytesRejection>| async move {
                        let arrived = Instant::now();
                        let answer = receive(state, connector, user_id, headers, body).await;
                        record_delivery(connector, arrived, &answer);
                        answer
                    },
                ),
            };
        }
        router = router.route(webhook.path, handler);
    }
    router.layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT))
}

/// The one answer to every refused delivery on a route: it does not say whether the
/// user, the token, the signature or the timestamp was at fault.
fn unauthorized(auth: WebhookAuth) -> ApiError {
    let hint = match auth {
        WebhookAuth::Token { header } => {
            format!("send the {header} header with the token shown when the connection was made")
        }
        WebhookAuth::Signature => "check the webhook secret configured at the provider".to_owned(),
        WebhookAuth::App => "check the app's signing secret and this host's clock".to_owned(),
        WebhookAuth::ProviderSignature => {
            "add the provider's signing secret to the connection (POST /api/connections/{id}/webhook/secrets)".to_owned()
        }
    };
    ApiError::unauthenticated("webhook authentication failed", hint)
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

/// One endpoint for a whole app: the connector verifies the delivery with the
/// app's secret, then names the connection by a routing key read from it.
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
    let delivery = match connector
        .verify(&ConnectorContext::default(), WebhookKey::App, &request)
        .await
    {
        Ok(delivery) => delivery,
        Err(error) if error.kind() == ErrorKind::AuthFailed => {
            tracing::info!(connector = connector_id, reason = %error, "app webhook refused");
            return Err(unauthorized(WebhookAuth::App));
        }
        Err(error) => return Err(error.into()),
    };
    let routing_key = match connector.route_webhook(&delivery).await? {
        WebhookRoute::Reply(reply) => {
            return Ok(with_outcome(
                reply_response(reply),
                DeliveryOutcome::Replied,
            ))
        }
        WebhookRoute::Connection(routing_key) => routing_key,
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
        return Ok(with_outcome(
            (
                StatusCode::ACCEPTED,
                Json(json!({ "accepted": 0, "duplicates": 0, "ignored": true })),
            )
                .into_response(),
            DeliveryOutcome::Ignored,
        ));
    };
    let outcome = connector
        .normalize(&context(&record), &record.metadata, &delivery)
        .await?;
    store_and_acknowledge(&state, &record, outcome).await
}

/// A per-user endpoint: the delivery is verified against each of the user's
/// connections of this connector (its token hash, or its signing secret) and
/// normalised for the first one that verifies it.
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
    for record in candidates {
        let ctx = context(&record);
        let verified = match auth {
            WebhookAuth::Token { .. } => {
                let Some(hash) = record.webhook_token_hash.as_deref() else {
                    continue;
                };
                connector
                    .verify(&ctx, WebhookKey::TokenHash(hash), &request)
                    .await
            }
            WebhookAuth::Signature | WebhookAuth::ProviderSignature => {
                let secrets = state.secrets.get(&record.secret_ref).await?;
                let key = WebhookKey::Connection {
                    config: &record.metadata,
                    secrets: &secrets,
                };
                connector.verify(&ctx, key, &request).await
            }
            WebhookAuth::App => return Err(ApiError::not_found("webhook")),
        };
        match verified {
            Ok(delivery) => {
                let outcome = connector
                    .normalize(&ctx, &record.metadata, &delivery)
                    .await?;
                return store_and_acknowledge(&state, &record, outcome).await;
            }
            Err(error) if error.kind() == ErrorKind::AuthFailed => {
                tracing::debug!(connector = connector_id, connection = %record.id, reason = %error, "webhook not verified by this connection");
            }
            Err(error) => return Err(error.into()),
        }
    }
    tracing::info!(
        connector = connector_id,
        "webhook refused: no connection of this user verifies it"
    );
    Err(unauthorized(auth))
}

fn context(record: &ConnectionRecord) -> ConnectorContext {
    ConnectorContext {
        connection_id: Some(record.id.clone()),
        tenant: Some(record.tenant.clone()),
    }
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
    let stored = if accepted > 0 || duplicates == 0 {
        DeliveryOutcome::Accepted
    } else {
        DeliveryOutcome::Duplicate
    };
    if let Some(reply) = outcome.reply {
        return Ok(with_outcome(reply_response(reply), stored));
    }
    Ok(with_outcome(
        (
            StatusCode::ACCEPTED,
            Json(json!({ "accepted": accepted, "duplicates": duplicates })),
        )
            .into_response(),
        stored,
    ))
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

/// What became of a delivery that was answered with success, for the metrics.
#[derive(Debug, Clone, Copy)]
enum DeliveryOutcome {
    /// At least one event was new and is stored.
    Accepted,
    /// Every event was already stored.
    Duplicate,
    /// Answered with the connector's own reply (a URL-verification challenge).
    Replied,
    /// Verified, but no connection wants it.
    Ignored,
}

impl DeliveryOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Replied => "replied",
            Self::Ignored => "ignored",
        }
    }
}

fn with_outcome(mut response: Response, outcome: DeliveryOutcome) -> Response {
    response.extensions_mut().insert(outcome);
    response
}

/// Counts a delivery by its outcome and, when it was stored, times it from arrival
/// to acknowledgement.
fn record_delivery(connector: &'static str, arrived: Instant, answer: &Result<Response, ApiError>) {
    let outcome = match answer {
        Ok(response) => response
            .extensions()
            .get::<DeliveryOutcome>()
            .map_or("replied", |outcome| outcome.label()),
        Err(error) if error.error().kind() == ErrorKind::Unsupported => "rejected_disabled",
        Err(error) => match error.status() {
            StatusCode::UNAUTHORIZED => "rejected_auth",
            StatusCode::NOT_FOUND => "rejected_unknown",
            status if status.is_client_error() => "rejected_input",
            _ => "failed",
        },
    };
    metrics::counter!(
        patchbay_core::metrics::WEBHOOK_DELIVERIES,
        "connector" => connector,
        "outcome" => outcome,
    )
    .increment(1);
    if matches!(outcome, "accepted" | "duplicate") {
        metrics::histogram!(
            patchbay_core::metrics::WEBHOOK_INGEST_SECONDS,
            "connector" => connector,
        )
        .record(arrived.elapsed().as_secs_f64());
    }
}
