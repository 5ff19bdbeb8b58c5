//! The API description, served at `GET /api/openapi.json` (OpenAPI 3.1).
//!
//! The fixed routes are described by `#[utoipa::path]` on their handlers. What
//! depends on the registry is added when the router is built: one webhook path
//! and one OAuth callback per connector that has them, and each operation's
//! parameter schema (from its descriptor) under `components.schemas` as
//! `<connector>.<operation>`, linked from the query route's request body.

use std::sync::Arc;

use axum::http::header;
use axum::routing::get;
use axum::Router;
use patchbay_core::{Registry, WebhookMethod};
use serde_json::{json, Map, Value};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::state::AppState;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Patchbay",
        description = "Connections to a team's clouds and tools: connect and validate them, run their read operations, and receive their alerts."
    ),
    paths(
        crate::api::healthz,
        crate::api::readyz,
        crate::api::list_connectors,
        crate::api::connectors_status,
        crate::api::onboarding,
        crate::api::connect,
        crate::api::list_connections,
        crate::api::get_connection,
        crate::api::disconnect,
        crate::api::revalidate,
        crate::api::rotate_webhook_credential,
        crate::api::list_webhook_secrets,
        crate::api::add_webhook_secret,
        crate::api::remove_webhook_secret,
        crate::api::query,
        crate::api::revoke_agent_token,
        crate::api::rotate_agent_token,
        crate::api::list_alerts,
        crate::alert_stream::stream,
        crate::oauth::start,
        crate::oauth::begin,
        crate::session::current,
        crate::session::sign_in,
        crate::session::sign_out,
        crate::session::open_link,
        crate::web::index,
        crate::web::asset,
    ),
    components(schemas(
        crate::error::ErrorEnvelope<'static>,
        crate::error::ErrorBody<'static>,
        crate::api::ConnectionView,
        crate::api::ConnectionList,
        crate::api::ConnectionEnvelope,
        crate::api::WebhookView,
        patchbay_store::AlertPage,
        patchbay_store::StoredAlert,
        patchbay_core::ValidationReport,
    )),
    modifiers(&Authentication),
    tags(
        (name = "service", description = "Liveness, readiness, metrics and this document"),
        (name = "connectors", description = "What can be connected"),
        (name = "connections", description = "Connect, list, validate and disconnect"),
        (name = "queries", description = "Run a connection's operations"),
        (name = "alerts", description = "Normalised alerts from every connection's webhooks"),
        (name = "webhooks", description = "Provider deliveries and their credentials"),
        (name = "oauth", description = "OAuth connection flows"),
        (name = "kubernetes", description = "In-cluster kubectl agents"),
        (name = "mcp", description = "The Model Context Protocol server for agents"),
        (name = "session", description = "Browser sessions of the Connectors page: API-key sign-in and one-time connect links"),
        (name = "page", description = "The Connectors page"),
    )
)]
struct ApiDoc;

/// The two ways a caller authenticates.
struct Authentication;

impl Modify for Authentication {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key from `patchbay api-keys create`, as `Authorization: Bearer <key>`",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "internal_headers",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Internal-Secret",
                "With INTERNAL_API_SECRET set: the shared secret, with the caller in X-User-ID and X-Org-ID",
            ))),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::session::SESSION_COOKIE,
                "The Connectors page's session (POST /api/session or a connect link); requests that change something also send X-Requested-With: patchbay",
            ))),
        );
    }
}

/// The whole document for a host serving `registry`'s connectors; `metrics_here`
/// when `/metrics` is on the same listener.
pub fn document(registry: &Registry, metrics_here: bool) -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    let mut paths = document["paths"].as_object().cloned().unwrap_or_default();
    let plain = |tag: &str, summary: &str, description: &str| {
        json!({
            "tags": [tag],
            "summary": summary,
            "responses": { "200": { "description": description } }
        })
    };
    paths.insert(
        DOCUMENT_PATH.to_owned(),
        json!({ "get": plain("service", "This document", "OpenAPI 3.1, as JSON") }),
    );
    if metrics_here {
        paths.insert(
            "/metrics".to_owned(),
            json!({ "get": plain("service", "Prometheus metrics", "The text exposition format; no API key") }),
        );
    }
    // The transport's own refusals are plain text, not the API's error envelope.
    let mcp = |summary: &str, answers: &[(&str, &str)]| {
        let mut responses = Map::new();
        for (status, description) in answers {
            responses.insert((*status).to_owned(), json!({ "description": description }));
        }
        json!({
            "tags": ["mcp"],
            "summary": summary,
            "description": "The MCP Streamable HTTP transport (JSON-RPC): every operation of the caller's connections as a tool, their validation reports and alerts as resources.",
            "responses": responses,
        })
    };
    let refusals = [
        ("400", "Not a request the transport takes: no or a malformed session id, or a body that is no JSON-RPC message"),
        ("403", "A Host or Origin header the transport does not accept"),
        ("404", "No such session (ended or unknown), or no such JSON-RPC method"),
        ("405", "A method the transport does not offer here"),
        ("406", "An Accept header without the media types the transport answers with"),
    ];
    let with = |answers: &[(&'static str, &'static str)]| {
        answers.iter().chain(&refusals).copied().collect::<Vec<_>>()
    };
    paths.insert(
        crate::mcp::MCP_PATH.to_owned(),
        json!({
            "post": mcp("Send MCP messages", &with(&[
                ("200", "JSON-RPC answers, as JSON or an event stream"),
                ("202", "Notifications and responses accepted; nothing to answer"),
                ("415", "A body that is not application/json"),
            ])),
            "get": mcp("Follow the session's server messages", &with(&[
                ("200", "The session's server messages, as an event stream"),
            ])),
            "delete": mcp("End the session", &with(&[("200", "The session ended")])),
        }),
    );
    #[cfg(feature = "connector-kubernetes")]
    paths.insert(
        patchbay_kubectl_protocol::AGENT_PATH.to_owned(),
        json!({ "get": {
            "tags": ["kubernetes"],
            "summary": "The kubectl agent's WebSocket",
            "description": "Upgraded to a WebSocket for an agent presenting its cluster token as `Authorization: Bearer pbk8s_…`; refused tokens are closed with their reason.",
            "responses": {
                "101": { "description": "Switching to the agent protocol; a refused token gets its reason in the close frame" },
                "400": { "description": "Not a WebSocket upgrade request" },
                "426": { "description": "The connection cannot be upgraded" },
                "503": { "description": "The agent tokens cannot be checked", "content": envelope() }
            }
        }}),
    );
    let mut operation_refs = Vec::new();
    let mut schemas = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for descriptor in registry.descriptors() {
        if let Some(webhook) = descriptor.webhook {
            let mut item = Map::new();
            for method in webhook.methods {
                let method = match method {
                    WebhookMethod::Post => "post",
                    WebhookMethod::Put => "put",
                };
                item.insert(
                    method.to_owned(),
                    webhook_operation(
                        descriptor.display_name,
                        webhook.path,
                        descriptor.feature_flag.is_some(),
                    ),
                );
            }
            paths.insert(webhook.path.to_owned(), Value::Object(item));
        }
        if let Some(oauth) = descriptor.oauth {
            paths.insert(
                oauth.callback_path.to_owned(),
                json!({ "get": {
                    "tags": ["oauth"],
                    "summary": format!("{} OAuth callback", descriptor.display_name),
                    "description": "Where the provider sends the browser back; finishes the flow begun in the same browser and shows (or redirects to) the result.",
                    "responses": {
                        "200": { "description": "The result page", "content": { "text/html": {} } },
                        "303": { "description": "To PATCHBAY_OAUTH_RETURN_URL with the result" },
                        "400": { "description": "The result page: no, an unknown, a used or an expired flow, a browser that did not begin it, or the provider's refusal", "content": { "text/html": {} } },
                        "403": { "description": "The result page: the connector or its OAuth flow is turned off", "content": { "text/html": {} } },
                        "422": { "description": "The result page: the granted credentials failed validation", "content": { "text/html": {} } },
                        "503": { "description": "The result page: the provider or a store is unavailable", "content": { "text/html": {} } }
                    }
                }}),
            );
        }
        for operation in (descriptor.operations)() {
            let name = format!("{}.{}", descriptor.id, operation.name);
            let mut schema = serde_json::to_value(&operation.params_schema).unwrap_or_default();
            if let Some(object) = schema.as_object_mut() {
                // Its own `$id`, so the schema's `#/$defs/...` references resolve
                // inside it rather than against this document.
                object.insert(
                    "$id".into(),
                    json!(format!("urn:patchbay:operation:{name}")),
                );
                object.insert("description".into(), json!(operation.description));
                object.insert("x-patchbay-read-only".into(), json!(operation.read_only));
            }
            schemas.insert(name.clone(), schema);
            operation_refs.push(json!({ "$ref": format!("#/components/schemas/{name}") }));
        }
    }
    let query_path = "/api/connections/{id}/query/{operation}";
    if let Some(body) = paths
        .get_mut(query_path)
        .and_then(|item| item.get_mut("post"))
        .and_then(|post| post.get_mut("requestBody"))
    {
        body["content"]["application/json"]["schema"] = json!({ "oneOf": operation_refs });
    }
    if let Some(events) = paths
        .get_mut(crate::alert_stream::STREAM_PATH)
        .and_then(|item| item.pointer_mut("/get/responses/200/content/text~1event-stream"))
    {
        events["schema"] = crate::alert_stream::event_schema();
    }
    add_caller_answers(&mut paths);
    document["paths"] = Value::Object(paths);
    document["components"]["schemas"] = Value::Object(schemas);
    document
}

/// Every route under `/api/` but this document and signing in, and `/mcp`, needs a
/// caller: each gets the security schemes and the error answers every such route can give
/// (and, under a connection, the one for a connection the caller cannot see).
fn add_caller_answers(paths: &mut Map<String, Value>) {
    let envelope = envelope();
    for (path, item) in paths.iter_mut() {
        let authenticated =
            (path.starts_with("/api/") && path != DOCUMENT_PATH) || path == crate::mcp::MCP_PATH;
        if !authenticated {
            continue;
        }
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            // Routes that need no caller (signing in) say so themselves.
            if operation.get("security").is_some() {
                continue;
            }
            operation["security"] =
                json!([{ "api_key": [] }, { "internal_headers": [] }, { "session_cookie": [] }]);
            let mut answers = vec![
                ("400", "Bad input: the error names the field and the fix"),
                ("401", "No or unknown API key"),
            ];
            if path.starts_with("/api/connections/{id}") {
                answers.push(("404", "No such connection for this caller"));
            }
            for (status, description) in answers {
                if operation["responses"].get(status).is_none() {
                    operation["responses"][status] =
                        json!({ "description": description, "content": envelope.clone() });
                }
            }
        }
    }
}

/// The API's error envelope as a response's content.
fn envelope() -> Value {
    json!({ "application/json": { "schema": { "$ref": "#/components/schemas/ErrorEnvelope" } } })
}

/// A provider delivery route; `flagged` when a feature flag can turn the connector off.
fn webhook_operation(provider: &str, path: &str, flagged: bool) -> Value {
    let user = path.contains("{user_id}");
    let mut operation = json!({
        "tags": ["webhooks"],
        "summary": format!("{provider} deliveries"),
        "description": "Authenticated by the connection's webhook token or the provider's signature; acknowledged only once the alert is stored.",
        "requestBody": { "required": true, "content": { "application/json": { "schema": {} } } },
        "responses": {
            "200": { "description": "A provider handshake answered" },
            "202": { "description": "Stored (or a duplicate of a stored delivery)" },
            "400": { "description": "Not a delivery this connector understands", "content": envelope() },
            "401": { "description": "Refused: no such connection, or a wrong token or signature", "content": envelope() },
            "413": { "description": "A body over 1 MiB", "content": envelope() },
            "503": { "description": "Not stored; the provider should retry", "content": envelope() }
        }
    });
    if flagged {
        operation["responses"]["403"] = json!({ "description": "The connector is turned off by its feature flag", "content": envelope() });
    }
    if user {
        operation["parameters"] = json!([{
            "name": "user_id", "in": "path", "required": true,
            "description": "The user whose connection receives the delivery",
            "schema": { "type": "string" }
        }]);
    }
    operation
}

/// `GET /api/openapi.json`, no API key needed.
pub fn router(document: Value) -> Router<AppState> {
    let document = Arc::new(document.to_string());
    Router::new().route(
        DOCUMENT_PATH,
        get(move || {
            let document = Arc::clone(&document);
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    document.as_str().to_owned(),
                )
            }
        }),
    )
}
