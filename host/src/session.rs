//! Browser sessions for the Connectors page.
//!
//! A person signs in with an API key, which is kept in an `HttpOnly`,
//! `SameSite=Strict` cookie that page scripts cannot read; or opens a one-time
//! connect link, which starts a one-hour session that acts for the link's user and
//! may only connect the link's connector. Header authentication (`Authorization`,
//! gateway headers) always wins over the cookie, and every request the cookie
//! authenticates with a method that changes something must carry
//! `X-Requested-With: patchbay`, which another site's page cannot send.

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use cookie::{Cookie, SameSite};
use patchbay_core::{Error, ErrorKind, SecretString, Tenant};
use patchbay_store::{ConnectLinkRecord, OpenedLink, RecordStore, CONNECT_LINK_SESSION};
use serde::Deserialize;
use serde_json::json;

use crate::api::parse_body;
use crate::auth::{generate_token, hash_token, API_KEY_PREFIX};
use crate::error::ApiError;
use crate::oauth::cookie_value;
use crate::state::AppState;

/// The cookie that carries a browser's session.
pub const SESSION_COOKIE: &str = "patchbay_session";

/// The header a cookie-authenticated request that changes something must carry,
/// with the value [`CSRF_HEADER_VALUE`].
pub const CSRF_HEADER: &str = "x-requested-with";

/// The value of [`CSRF_HEADER`].
pub const CSRF_HEADER_VALUE: &str = "patchbay";

/// The prefix of connect link tokens (the last segment of `/connect/<token>`).
pub const CONNECT_LINK_PREFIX: &str = "pbl_";

/// The prefix of the session tokens a connect link's cookie carries.
pub const LINK_SESSION_PREFIX: &str = "pbs_";

/// How long an API-key sign-in lasts in the browser.
const SIGN_IN_MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::hours(12);

/// Largest body read to check which connector a link session connects.
const LINK_CONNECT_BODY_LIMIT: usize = 64 * 1024;

/// `/api/session` and the connect link route `/connect/{token}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/session", get(current).post(sign_in).delete(sign_out))
        .route("/connect/{token}", get(open_link))
}

/// A request authenticated by a connect link's session: who it acts for and the
/// one connector it may connect. Put in the request's extensions by [`resolve`].
#[derive(Debug, Clone)]
pub struct LinkSession(pub ConnectLinkRecord);

/// Creates a connect link for `tenant` and `connector`, valid for `valid_for`, and
/// returns its token (shown once; only its hash is stored).
pub async fn create_connect_link(
    records: &dyn RecordStore,
    tenant: Tenant,
    connector: &str,
    valid_for: chrono::TimeDelta,
) -> patchbay_core::Result<SecretString> {
    let token = generate_token(CONNECT_LINK_PREFIX);
    let created_at = Utc::now();
    records
        .insert_connect_link(&ConnectLinkRecord {
            id: uuid::Uuid::new_v4().to_string(),
            token_hash: hash_token(token.expose()),
            tenant,
            connector: connector.to_owned(),
            created_at,
            expires_at: created_at + valid_for,
            opened_at: None,
            session_expires_at: None,
        })
        .await?;
    Ok(token)
}

/// The URL a person opens for a connect link token.
pub fn connect_link_url(public_url: &str, token: &SecretString) -> String {
    format!(
        "{}/connect/{}",
        public_url.trim_end_matches('/'),
        token.expose()
    )
}

fn forbidden(message: &str, hint: &str) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        Error::new(ErrorKind::PermissionDenied, message).with_hint(hint),
    )
    .into_response()
}

fn changes_something(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn carries_csrf_header(headers: &HeaderMap) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case(CSRF_HEADER_VALUE))
}

fn csrf_refused() -> Response {
    forbidden(
        "a request authenticated by the session cookie must carry X-Requested-With: patchbay",
        "send the header from the page's scripts, or authenticate with Authorization: Bearer <key>",
    )
}

/// Middleware on every route: turns the session cookie of an `/api/` request into
/// the caller's identity. An API-key cookie becomes the `Authorization` header (so
/// the configured extractor checks it); a link session is looked up, held to the
/// routes a link may use, and attached as a [`LinkSession`].
pub async fn resolve(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let header_authenticated =
        headers.contains_key(header::AUTHORIZATION) || headers.contains_key("x-user-id");
    if header_authenticated || !request.uri().path().starts_with("/api/") {
        return next.run(request).await;
    }
    let Some(value) = cookie_value(headers, SESSION_COOKIE) else {
        return next.run(request).await;
    };
    if changes_something(request.method()) && !carries_csrf_header(request.headers()) {
        return csrf_refused();
    }
    if value.starts_with(API_KEY_PREFIX) {
        if let Ok(mut authorization) = HeaderValue::from_str(&format!("Bearer {value}")) {
            authorization.set_sensitive(true);
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, authorization);
        }
        return next.run(request).await;
    }
    if !value.starts_with(LINK_SESSION_PREFIX) {
        return ApiError::unauthenticated(
            "the session cookie is not one this service issued",
            "sign in again",
        )
        .into_response();
    }
    let link = match state
        .records
        .find_connect_link_session(&hash_token(&value), Utc::now())
        .await
    {
        Ok(Some(link)) => link,
        Ok(None) => {
            return ApiError::unauthenticated(
                "this connect link's session has ended",
                "ask whoever sent the link for a new one",
            )
            .into_response()
        }
        Err(error) => return ApiError::from(error).into_response(),
    };
    let request = match allowed_for_link(request, &link.connector).await {
        Ok(request) => request,
        Err(refused) => return refused,
    };
    let mut request = request;
    request.extensions_mut().insert(LinkSession(link));
    next.run(request).await
}

/// What a link session may do: read the catalogue and the user's connections,
/// connect, validate, and start OAuth, all for the link's connector only.
async fn allowed_for_link(request: Request, connector: &str) -> Result<Request, Response> {
    let refuse = || {
        forbidden(
            &format!("a connect link session can only connect {connector}"),
            "sign in with an API key for everything else",
        )
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let segments: Vec<String> = request.uri().path().split('/').map(str::to_owned).collect();
    let method = request.method().clone();
    let allowed = match (method.as_str(), route.as_deref()) {
        ("GET" | "DELETE", Some("/api/session"))
        | ("GET", Some("/api/connectors"))
        | ("GET", Some("/api/connectors/status"))
        | ("GET", Some("/api/connections"))
        | ("GET", Some("/api/connections/{id}"))
        | ("POST", Some("/api/connections/{id}/validate")) => true,
        ("GET", Some("/api/connectors/{id}/onboarding")) => {
            segments.get(3).map(String::as_str) == Some(connector)
        }
        ("POST", Some("/api/connections/oauth/{connector}/start")) => {
            segments.get(5).map(String::as_str) == Some(connector)
        }
        ("POST", Some("/api/connections")) => {
            let (parts, body) = request.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, LINK_CONNECT_BODY_LIMIT).await else {
                return Err(refuse());
            };
            let named = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|body| body["connector"].as_str().map(str::to_owned));
            if named.as_deref() != Some(connector) {
                return Err(refuse());
            }
            return Ok(Request::from_parts(parts, Body::from(bytes)));
        }
        _ => false,
    };
    if allowed {
        Ok(request)
    } else {
        Err(refuse())
    }
}

/// The `Set-Cookie` value of the session cookie: `HttpOnly`, `SameSite=Strict`,
/// `Secure` when the public URL is https. An empty value with `max_age` 0 removes it.
fn session_cookie(state: &AppState, value: &str, max_age: chrono::TimeDelta) -> HeaderValue {
    let cookie = Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age.num_seconds()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.public_url.starts_with("https://"))
        .build();
    let mut header = HeaderValue::from_str(&cookie.to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("patchbay_session=; Max-Age=0; Path=/"));
    header.set_sensitive(true);
    header
}

/// Who the session is, as `GET /api/session` and sign-in answer it.
fn describe(
    tenant: &Tenant,
    via: &str,
    connector: Option<&str>,
    expires_at: Option<DateTime<Utc>>,
) -> serde_json::Value {
    json!({
        "user_id": tenant.user_id,
        "org_id": tenant.org_id,
        "via": via,
        "connector": connector,
        "expires_at": expires_at,
    })
}

fn via_of(headers: &HeaderMap) -> &'static str {
    if headers.contains_key(header::AUTHORIZATION) {
        "api_key"
    } else if headers.contains_key("x-user-id") {
        "gateway"
    } else {
        "embedder"
    }
}

/// Who the caller is: the user and organisation, how they authenticated, and for a
/// connect link its connector and when its session ends.
#[utoipa::path(
    get,
    path = "/api/session",
    tag = "session",
    responses(
        (status = 200, description = "The caller: user_id, org_id, via (api_key, gateway, connect_link), and for a connect link its connector and expires_at", body = serde_json::Value),
    ),
)]
pub(crate) async fn current(
    State(state): State<AppState>,
    link: Option<axum::Extension<LinkSession>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(axum::Extension(LinkSession(link))) = link {
        return Ok(Json(describe(
            &link.tenant,
            "connect_link",
            Some(&link.connector),
            link.session_expires_at,
        )));
    }
    let tenant = state.principals.principal(&headers).await?;
    Ok(Json(describe(&tenant, via_of(&headers), None, None)))
}

/// `POST /api/session`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignInBody {
    /// An API key (`patchbay api-keys create`).
    #[schema(value_type = String)]
    api_key: SecretString,
}

/// Signs a browser in with an API key: the key is checked, then kept in an
/// `HttpOnly` cookie for 12 hours. Needs `X-Requested-With: patchbay`.
#[utoipa::path(
    post,
    path = "/api/session",
    tag = "session",
    request_body = SignInBody,
    security(()),
    responses(
        (status = 200, description = "Signed in: the session cookie is set; the body is GET /api/session's", body = serde_json::Value),
        (status = 401, description = "Unknown or revoked API key", body = crate::error::ErrorEnvelope<'static>),
        (status = 403, description = "X-Requested-With: patchbay is missing", body = crate::error::ErrorEnvelope<'static>),
    ),
)]
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if !carries_csrf_header(&headers) {
        return Ok(csrf_refused());
    }
    let body: SignInBody = parse_body(&body)?;
    let key = body.api_key.expose().trim().to_owned();
    let field_error = |message: &str| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            Error::new(ErrorKind::AuthFailed, message)
                .with_field("api_key")
                .with_hint("paste a key from `patchbay api-keys create --user <id>`"),
        )
    };
    if !key.starts_with(API_KEY_PREFIX) {
        return Err(field_error("an API key starts with pbk_"));
    }
    let mut check = HeaderMap::new();
    let mut authorization = HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| field_error("the API key has characters no key has"))?;
    authorization.set_sensitive(true);
    check.insert(header::AUTHORIZATION, authorization);
    let tenant = state
        .principals
        .principal(&check)
        .await
        .map_err(|refused| field_error(refused.error().message()))?;
    let mut response = Json(describe(&tenant, "api_key", None, None)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, &key, SIGN_IN_MAX_AGE),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Signs the browser out: the session cookie is removed.
#[utoipa::path(
    delete,
    path = "/api/session",
    tag = "session",
    security(()),
    responses((status = 204, description = "Signed out; the session cookie is removed")),
)]
pub(crate) async fn sign_out(State(state): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(&state, "", chrono::TimeDelta::zero()),
    );
    response
}

/// Opens a one-time connect link: starts the browser's one-hour session for the
/// link's user and connector, and sends it to that connector's form.
#[utoipa::path(
    get,
    path = "/connect/{token}",
    tag = "session",
    security(()),
    params(("token" = String, Path, description = "The connect link's token")),
    responses(
        (status = 303, description = "To the Connectors page at the link's connector, with the session cookie set"),
        (status = 404, description = "Not a link this service issued"),
        (status = 410, description = "The link was used before or has expired"),
    ),
)]
pub(crate) async fn open_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let session = generate_token(LINK_SESSION_PREFIX);
    let now = Utc::now();
    let opened = state
        .records
        .open_connect_link(
            &hash_token(&token),
            &hash_token(session.expose()),
            now,
            now + CONNECT_LINK_SESSION,
        )
        .await;
    let (status, title, detail) = match opened {
        Ok(OpenedLink::Opened(link)) => {
            tracing::info!(link = %link.id, connector = %link.connector, "connect link opened");
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            let location = format!("/#/connect/{}", link.connector);
            if let Ok(location) = HeaderValue::from_str(&location) {
                headers.insert(header::LOCATION, location);
            }
            headers.insert(
                header::SET_COOKIE,
                session_cookie(&state, session.expose(), CONNECT_LINK_SESSION),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            return response;
        }
        Ok(OpenedLink::AlreadyUsed) => (
            StatusCode::GONE,
            "This connect link was already used",
            "A connect link works once. Ask whoever sent it for a new one.",
        ),
        Ok(OpenedLink::Expired) => (
            StatusCode::GONE,
            "This connect link has expired",
            "Ask whoever sent it for a new one.",
        ),
        Ok(OpenedLink::Unknown) => (
            StatusCode::NOT_FOUND,
            "This is not a valid connect link",
            "Check that the whole link was copied, or ask for a new one.",
        ),
        Err(error) => {
            tracing::warn!(kind = %error.kind(), message = %error.message(), "could not open a connect link");
            (
                crate::error::status_for(error.kind()),
                "The connect link could not be opened",
                "Try again in a moment.",
            )
        }
    };
    crate::web::html_page(status, title, detail, "")
}
