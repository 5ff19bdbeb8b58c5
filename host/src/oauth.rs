//! OAuth routes: starting a flow, its one-time begin URL, and each OAuth
//! connector's callback page.
//!
//! Starting returns a begin URL on Patchbay's own origin; opening it sets a
//! short-lived `HttpOnly` cookie bound to the flow and redirects to the provider, and
//! the callback refuses a browser without that cookie, so a flow started by one
//! person cannot be finished in another person's browser. The callback takes the
//! tenant only from the stored state, validates the new credentials with the
//! connector, stores them exactly as `POST /api/connections` does, and answers a
//! person with a small page (or a redirect) that never carries a secret. Failed
//! callbacks store nothing.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cookie::{Cookie, SameSite};
use patchbay_core::{AuthRequest, ConnectorDescriptor, Error, ErrorKind};
use patchbay_oauth::state::binding_cookie_name;
use patchbay_oauth::{CallbackParams, StartRequest, BEGIN_PATH};
use serde::Deserialize;
use serde_json::json;

use crate::api::{connector_for, parse_body};
use crate::auth::Principal;
use crate::error::{status_for, ApiError, ErrorEnvelope};
use crate::lifecycle::{ConnectFailure, ConnectRequest};
use crate::state::AppState;

/// The start and begin routes, and one callback route per connector with an OAuth spec.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new()
        .route("/api/connections/oauth/{connector}/start", post(start))
        .route(&format!("{BEGIN_PATH}/{{state}}"), get(begin));
    for descriptor in state.registry.descriptors() {
        let Some(spec) = descriptor.oauth else {
            continue;
        };
        let connector = descriptor.id;
        router =
            router.route(
                spec.callback_path,
                get(
                    move |state: State<AppState>,
                          headers: HeaderMap,
                          params: Query<CallbackParams>| async move {
                        callback(state, connector, &headers, params.0).await
                    },
                ),
            );
    }
    router
}

/// `POST /api/connections/oauth/{connector}/start`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartBody {
    /// A name for the connection.
    #[serde(default)]
    label: Option<String>,
    /// Whether write operations may run on it.
    #[serde(default)]
    allow_writes: bool,
    /// The connector's OAuth options (a region, a site).
    #[serde(default)]
    #[schema(value_type = Object)]
    options: serde_json::Map<String, serde_json::Value>,
}

/// The descriptor of a connector whose OAuth flow is open: it has one, and the
/// flow's own feature flag (if any) is on.
fn oauth_descriptor(
    state: &AppState,
    descriptor: &'static ConnectorDescriptor,
) -> Result<&'static ConnectorDescriptor, ApiError> {
    let Some(spec) = &descriptor.oauth else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            Error::unsupported(format!(
                "{} does not connect through OAuth",
                descriptor.display_name
            ))
            .with_connector(descriptor.id)
            .with_hint("connect it with POST /api/connections instead"),
        ));
    };
    if !spec.is_enabled(&state.env) {
        let message = spec
            .disabled_message
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} OAuth is not enabled", descriptor.display_name));
        let mut error = Error::new(ErrorKind::Unsupported, message).with_connector(descriptor.id);
        if let Some(flag) = spec.feature_flag {
            error = error.with_hint(format!("set {flag}=true and restart Patchbay"));
        }
        return Err(ApiError::new(StatusCode::FORBIDDEN, error));
    }
    Ok(descriptor)
}

#[utoipa::path(
    post,
    path = "/api/connections/oauth/{connector}/start",
    tag = "oauth",
    params(("connector" = String, Path, description = "The connector id")),
    request_body = StartBody,
    responses(
        (status = 200, description = "The begin URL to open in the browser that finishes the flow (works once)", body = serde_json::Value),
        (status = 403, description = "The connector or its OAuth flow is turned off by its feature flag", body = ErrorEnvelope<'static>),
        (status = 404, description = "Unknown connector", body = ErrorEnvelope<'static>),
        (status = 503, description = "The flow cannot be recorded now (the records store is unavailable)", body = ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn start(
    State(state): State<AppState>,
    Principal(tenant): Principal,
    Path(connector): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: StartBody = parse_body(&body)?;
    let connector = connector_for(&state, &connector)?;
    let descriptor = oauth_descriptor(&state, connector.descriptor())?;
    let started = state
        .oauth
        .start(
            &tenant,
            descriptor,
            StartRequest {
                label: body.label,
                options: body.options,
                allow_writes: body.allow_writes,
            },
        )
        .await?;
    crate::metrics::record_oauth_flow(descriptor.id, "started");
    Ok(Json(json!({
        "begin_url": started.begin_url,
        "expires_at": started.expires_at,
        "note": "open begin_url in the browser that will finish the flow; it works once",
    })))
}

/// Opens a flow's begin URL: binds it to this browser with a cookie, then sends the
/// browser to the provider.
#[utoipa::path(
    get,
    path = "/oauth/begin/{state}",
    tag = "oauth",
    params(("state" = String, Path, description = "The flow state from the begin URL")),
    responses(
        (status = 303, description = "To the provider's authorization page, with the binding cookie set"),
        (status = 400, description = "Unknown, used or expired flow"),
    ),
)]
pub(crate) async fn begin(
    State(state): State<AppState>,
    Path(flow_state): Path<String>,
) -> Response {
    let begun = match state
        .oauth
        .begin(&flow_state, |id| state.registry.descriptor(id))
        .await
    {
        Ok(begun) => begun,
        Err(error) => {
            tracing::info!(kind = %error.kind(), message = %error.message(), "OAuth begin refused");
            let status = match error.kind() {
                ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
                kind => status_for(kind),
            };
            return page(
                &state,
                "patchbay",
                "Patchbay",
                Outcome::Failed {
                    status,
                    error: copy_error(&error),
                },
            );
        }
    };
    let open = connector_for(&state, begun.connector.id)
        .and_then(|connector| oauth_descriptor(&state, connector.descriptor()));
    if let Err(error) = open {
        let error = copy_error(error.error());
        return page(
            &state,
            begun.connector.id,
            begun.connector.display_name,
            Outcome::Failed {
                status: StatusCode::FORBIDDEN,
                error,
            },
        );
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    match HeaderValue::from_str(&begun.authorize_url) {
        Ok(location) => {
            headers.insert(header::LOCATION, location);
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    let max_age = (begun.cookie.expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    if let Some(cookie) = binding_cookie(
        &state,
        &begun.cookie.name,
        begun.cookie.value.expose(),
        begun.cookie.path,
        max_age,
    ) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The `Set-Cookie` value of a flow's binding cookie: `HttpOnly`, `SameSite=Lax`,
/// sent back only on `path`, `Secure` when the public URL is https. An empty value
/// with a `max_age` of 0 removes it.
fn binding_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> Option<HeaderValue> {
    let cookie = Cookie::build((name, value))
        .path(path)
        .max_age(cookie::time::Duration::seconds(max_age))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.public_url.starts_with("https://"))
        .build();
    let mut header = HeaderValue::from_str(&cookie.to_string()).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// The value of the cookie named `name`, from every `Cookie` header of the request.
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_owned())
}

/// What the callback tells the person (and the UI).
enum Outcome {
    Connected { connection_id: String },
    Failed { status: StatusCode, error: Error },
}

async fn callback(
    state: State<AppState>,
    connector: &'static str,
    headers: &HeaderMap,
    params: CallbackParams,
) -> Response {
    let State(state) = state;
    let display_name = state
        .registry
        .descriptor(connector)
        .map_or(connector, |descriptor| descriptor.display_name);
    let cookie_name = params.state.as_deref().map(binding_cookie_name);
    let binding = cookie_name
        .as_deref()
        .and_then(|name| cookie_value(headers, name));
    let outcome = match finish(&state, connector, params, binding.as_deref()).await {
        Ok(connection_id) => Outcome::Connected { connection_id },
        Err(error) => Outcome::Failed {
            status: error.status(),
            error: copy_error(error.error()),
        },
    };
    match &outcome {
        Outcome::Connected { .. } => crate::metrics::record_oauth_flow(connector, "completed"),
        Outcome::Failed { error, .. } => {
            crate::metrics::record_oauth_flow(connector, "failed");
            tracing::info!(connector, kind = %error.kind(), message = %error.message(), "OAuth callback failed");
        }
    }
    let mut response = respond(&state, connector, display_name, outcome);
    // The binding cookie has done its work, whatever the outcome.
    if let Some(name) = cookie_name {
        let path = state
            .registry
            .descriptor(connector)
            .and_then(|descriptor| descriptor.oauth)
            .map_or("/", |spec| spec.callback_path);
        if let Some(removal) = binding_cookie(&state, &name, "", path, 0) {
            response.headers_mut().append(header::SET_COOKIE, removal);
        }
    }
    response
}

fn copy_error(error: &Error) -> Error {
    let mut copy = Error::new(error.kind(), error.message());
    if let Some(hint) = error.hint() {
        copy = copy.with_hint(hint);
    }
    if let Some(field) = error.field() {
        copy = copy.with_field(field);
    }
    copy
}

async fn finish(
    state: &AppState,
    connector: &'static str,
    params: CallbackParams,
    binding: Option<&str>,
) -> Result<String, ApiError> {
    let instance = connector_for(state, connector)?;
    let descriptor = oauth_descriptor(state, instance.descriptor())?;
    let completed = state
        .oauth
        .complete(descriptor, params, binding)
        .await
        .map_err(|error| {
            let status = match error.kind() {
                ErrorKind::InvalidInput | ErrorKind::PermissionDenied | ErrorKind::AuthFailed => {
                    StatusCode::BAD_REQUEST
                }
                kind => status_for(kind),
            };
            ApiError::new(status, error)
        })?;
    let request = ConnectRequest {
        auth: AuthRequest::OAuth(completed.grant),
        label: completed.label,
        allow_writes: completed.allow_writes,
    };
    let stored = match state
        .connections()
        .connect(completed.tenant, instance.as_ref(), request)
        .await
    {
        Ok(stored) => stored,
        Err(ConnectFailure::Failed(error)) => return Err(error.into()),
        Err(ConnectFailure::Rejected(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                Error::new(
                    ErrorKind::AuthFailed,
                    format!(
                        "{} accepted the authorization but the new credentials failed validation; nothing was stored",
                        descriptor.display_name
                    ),
                )
                .with_hint("check the scopes granted to the app, then connect again"),
            ))
        }
    };
    tracing::info!(connection = %stored.record.id, connector = descriptor.id, "connected through OAuth");
    Ok(stored.record.id)
}

/// JSON safe to embed in a `<script>`: no `<`, `>` or `&` can close the element.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn error_code(error: &Error) -> String {
    error.kind().as_str().to_owned()
}

fn respond(state: &AppState, connector: &str, display_name: &str, outcome: Outcome) -> Response {
    if let Some(return_url) = &state.oauth_return_url {
        let mut url = match url::Url::parse(return_url) {
            Ok(url) => url,
            Err(_) => return page(state, connector, display_name, outcome),
        };
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("connector", connector);
            match &outcome {
                Outcome::Connected { connection_id } => {
                    query.append_pair("status", "connected");
                    query.append_pair("connection_id", connection_id);
                }
                Outcome::Failed { error, .. } => {
                    query.append_pair("status", "error");
                    query.append_pair("error", &error_code(error));
                }
            }
        }
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(location) = HeaderValue::from_str(url.as_str()) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return response;
    }
    page(state, connector, display_name, outcome)
}

fn page(state: &AppState, connector: &str, display_name: &str, outcome: Outcome) -> Response {
    let (status, title, detail, message) = match &outcome {
        Outcome::Connected { connection_id } => (
            StatusCode::OK,
            format!("{display_name} connected"),
            "You can close this window and return to Patchbay.".to_owned(),
            json!({ "source": "patchbay", "connector": connector, "status": "connected", "connection_id": connection_id }),
        ),
        Outcome::Failed { status, error } => {
            let mut detail = error.message().to_owned();
            if let Some(hint) = error.hint() {
                detail = format!("{detail}. {hint}");
            }
            (
                *status,
                format!("Could not connect {display_name}"),
                detail,
                json!({ "source": "patchbay", "connector": connector, "status": "error", "error": error_code(error) }),
            )
        }
    };
    let script = match &state.ui_origin {
        Some(origin) => format!(
            "<script>if (window.opener) {{ window.opener.postMessage({}, {}); window.close(); }}</script>",
            script_json(&message),
            script_json(&json!(origin.as_ref()))
        ),
        // The Connectors page on this origin opened the popup: tell it and close.
        // Any other opener (reading its origin throws) keeps this page open.
        None => format!(
            "<script>try {{ if (window.opener && window.opener.location.origin === location.origin) \
             {{ window.opener.postMessage({}, location.origin); window.close(); }} }} catch (_) {{}}</script>",
            script_json(&message),
        ),
    };
    crate::web::html_page(status, &title, &detail, &script)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::escape_html;

    #[test]
    fn html_and_script_content_is_escaped() {
        assert_eq!(
            escape_html("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        let embedded = script_json(&json!({ "error": "</script><script>alert(1)" }));
        assert!(!embedded.contains('<'), "{embedded}");
    }
}
