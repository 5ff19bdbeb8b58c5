//! The Connectors page: a small page for people, built on the JSON API alone and
//! embedded in the binary (no Node build needed to run it), served at `/`.
//!
//! Its strict Content-Security-Policy allows scripts, styles and requests from
//! this origin only, and no inline script, so data shown on the page cannot run.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::state::AppState;

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const APP_CSS: &str = include_str!("../web/app.css");

/// The page's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
     base-uri 'none'; form-action 'self'";

/// `/` and `/assets/{file}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
}

fn embedded(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Assets change with the binary: browsers revalidate instead of keeping old ones.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// A small server-rendered page (an OAuth popup's result, a connect link's error):
/// `title` and `detail` are escaped, `script` is trusted markup appended to the body.
/// Never cached, and sends no referrer.
pub fn html_page(status: StatusCode, title: &str, detail: &str, script: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title></head><body><h1>{title}</h1><p>{detail}</p>{script}</body></html>",
        title = escape_html(title),
        detail = escape_html(detail),
    );
    let mut response = (status, html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

// Five characters cover HTML text and attribute escaping; no dependency needed.
pub(crate) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// The Connectors page.
#[utoipa::path(
    get,
    path = "/",
    tag = "page",
    security(()),
    responses((status = 200, description = "The Connectors page (HTML)", content_type = "text/html")),
)]
pub(crate) async fn index() -> Response {
    embedded("text/html; charset=utf-8", INDEX_HTML)
}

/// The page's script and stylesheet.
#[utoipa::path(
    get,
    path = "/assets/{file}",
    tag = "page",
    security(()),
    params(("file" = String, Path, description = "app.js or app.css")),
    responses(
        (status = 200, description = "The asset"),
        (status = 404, description = "No such asset"),
    ),
)]
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => embedded("text/javascript; charset=utf-8", APP_JS),
        "app.css" => embedded("text/css; charset=utf-8", APP_CSS),
        _ => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
