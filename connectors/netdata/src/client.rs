//! Requests to the Netdata Cloud API and the mapping of its answers to errors.
//!
//! Every request carries `Authorization: Bearer <token>` and
//! `Accept: application/json`, as Netdata's own Terraform provider sends them. A
//! space URL other than Netdata Cloud's own is marked as a tenant URL on every
//! request, so the address actually connected to passes the SSRF policy.

use patchbay_core::secret::REDACTED;
use patchbay_core::{Error, ErrorKind, Result, SecretString};
use patchbay_http::{HttpClient, Method, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::auth::NetdataSecrets;
use crate::config::{NetdataConfig, SPACE_URL_FIELD};
use crate::CONNECTOR_ID;

/// What to do about a rejected token.
pub const TOKEN_HINT: &str = "the API token was rejected: create a new token in Netdata Cloud \
     (Space settings > API tokens, scope `scope:all`) and reconnect Netdata";

/// What to do about a refused permission.
pub const SCOPE_HINT: &str = "the token works but may not read this: use a token with \
     `scope:all` from a member of the space who can see its rooms, nodes and alerts";

/// Longest piece of Netdata's own error text kept in a message.
const MESSAGE_LIMIT: usize = 500;
/// Longest piece kept from a server at a tenant-supplied URL.
const TENANT_MESSAGE_LIMIT: usize = 200;

/// A Netdata space, as `GET /api/v3/spaces` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Space {
    /// Netdata's id of the space.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub name: String,
    /// Its URL slug, when reported.
    #[serde(default)]
    pub slug: Option<String>,
    /// Its description, when reported.
    #[serde(default)]
    pub description: Option<String>,
}

/// A room of a space, as `GET /api/v2/spaces/{spaceID}/rooms` lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Room {
    /// Netdata's id of the room.
    pub id: String,
    /// Its display name.
    #[serde(default)]
    pub name: String,
    /// Its URL slug, when reported.
    #[serde(default)]
    pub slug: Option<String>,
    /// Its description, when reported.
    #[serde(default)]
    pub description: Option<String>,
}

/// Talks to one Netdata Cloud base URL with one API token.
#[derive(Debug)]
pub struct NetdataClient<'a> {
    http: &'a HttpClient,
    base_url: &'a str,
    token: &'a SecretString,
    /// Whether `base_url` is a tenant's own rather than Netdata Cloud's.
    tenant_url: bool,
    /// The connection's space id, once validation found it.
    space_id: Option<&'a str>,
}

impl<'a> NetdataClient<'a> {
    /// A client for the connection's base URL and token.
    pub fn new(
        http: &'a HttpClient,
        config: &'a NetdataConfig,
        secrets: &'a NetdataSecrets,
    ) -> Self {
        Self {
            http,
            base_url: config.base_url.trim_end_matches('/'),
            token: &secrets.api_token,
            tenant_url: config.is_tenant_url(),
            space_id: config.space_id.as_deref(),
        }
    }

    /// The space an operation reads when its caller names none: the connection's.
    pub fn space_or_default(&self, given: Option<String>) -> Result<String> {
        given
            .map(|given| given.trim().to_owned())
            .filter(|given| !given.is_empty())
            .or_else(|| self.space_id.map(str::to_owned))
            .ok_or_else(|| {
                Error::invalid_input(
                    "space_id",
                    "this connection has no space; give `space_id` (see list_spaces)",
                )
                .with_connector(CONNECTOR_ID)
            })
    }

    /// The spaces the token can see: `GET /api/v3/spaces`.
    pub async fn spaces(&self, operation: &'static str) -> Result<Vec<Space>> {
        self.send(Method::GET, operation, &["api", "v3", "spaces"], None)
            .await
    }

    /// The rooms of a space: `GET /api/v2/spaces/{spaceID}/rooms`.
    pub async fn rooms(&self, operation: &'static str, space_id: &str) -> Result<Vec<Room>> {
        self.send(
            Method::GET,
            operation,
            &["api", "v2", "spaces", space_id, "rooms"],
            None,
        )
        .await
    }

    /// The nodes of a room: `POST /api/v3/spaces/{spaceID}/rooms/{roomID}/nodes`
    /// with an empty node scope, as Netdata's Terraform provider asks for them.
    pub async fn room_nodes(&self, space_id: &str, room_id: &str) -> Result<Value> {
        let body = serde_json::json!({"scope": {"nodes": []}});
        self.send(
            Method::POST,
            "list_nodes",
            &["api", "v3", "spaces", space_id, "rooms", room_id, "nodes"],
            Some(&body),
        )
        .await
    }

    /// The alerts of a room with their instances:
    /// `POST /api/v2/spaces/{spaceID}/rooms/{roomID}/alerts`.
    pub async fn room_alerts(&self, space_id: &str, room_id: &str) -> Result<Value> {
        let body = serde_json::json!({"options": ["instances", "values", "summary"]});
        self.send(
            Method::POST,
            "list_alerts",
            &["api", "v2", "spaces", space_id, "rooms", room_id, "alerts"],
            Some(&body),
        )
        .await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        operation: &'static str,
        segments: &[&str],
        body: Option<&Value>,
    ) -> Result<T> {
        let url = url_with(self.base_url, segments)?;
        let mut request = self
            .http
            .request(method, url.as_str())
            .connector(CONNECTOR_ID)
            .operation(operation)
            .header("Accept", "application/json")
            // Every call here reads, including the POSTs that carry a query body.
            .idempotent(true)
            .bearer_auth(self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if self.tenant_url {
            request = request.tenant_url(SPACE_URL_FIELD);
        }
        let response = request.send().await?;
        let response = map_status(response, self.token, self.tenant_url)?;
        if response.body.is_empty() {
            return serde_json::from_value(Value::Null).map_err(|_| {
                Error::internal("Netdata returned an empty answer").with_connector(CONNECTOR_ID)
            });
        }
        response.json()
    }
}

/// `base` followed by percent-encoded `segments`.
pub(crate) fn url_with(base: &str, segments: &[&str]) -> Result<Url> {
    let stored_invalid = |detail: String| {
        Error::invalid_config(SPACE_URL_FIELD, detail)
            .with_connector(CONNECTOR_ID)
            .with_hint("reconnect Netdata with a valid space_url")
    };
    let mut url = Url::parse(base)
        .map_err(|error| stored_invalid(format!("stored Netdata URL is invalid: {error}")))?;
    url.path_segments_mut()
        .map_err(|()| stored_invalid("stored Netdata URL cannot take a path".to_owned()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Maps a Netdata answer: the kind, hint, status and `Retry-After` come from the
/// shared client's mapping; the message carries Netdata's own `errorMessage`
/// (and `errorMsgKey`) with the token removed, when the body has them.
pub(crate) fn map_status(
    response: Response,
    token: &SecretString,
    tenant_url: bool,
) -> Result<Response> {
    if response.status.is_success() {
        return Ok(response);
    }
    let status = response.status.as_u16();
    let text = netdata_text(&response, token, tenant_url);
    let shared = match response.with_connector(CONNECTOR_ID).error_for_status() {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let mut error = match text {
        Some(text) => {
            let mut rebuilt = Error::new(
                shared.kind(),
                format!("Netdata returned {}: {text}", status_text(status)),
            )
            .with_provider_status(status);
            if let Some(wait) = shared.retry_after() {
                rebuilt = rebuilt.with_retry_after(wait);
            }
            if let Some(hint) = shared.hint() {
                rebuilt = rebuilt.with_hint(hint);
            }
            rebuilt
        }
        None => shared,
    };
    error = match error.kind() {
        ErrorKind::AuthFailed => error.with_hint(TOKEN_HINT),
        ErrorKind::PermissionDenied => error.with_hint(SCOPE_HINT),
        ErrorKind::NotFound => error.with_hint(
            "check the space and room ids: list_spaces and list_rooms give the ones this token can see",
        ),
        _ => error,
    };
    Err(error.with_connector(CONNECTOR_ID))
}

fn status_text(status: u16) -> String {
    match http_reason(status) {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

fn http_reason(status: u16) -> Option<&'static str> {
    patchbay_http::StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
}

/// Netdata's error text (`{"errorMsgKey": "ErrUnauthenticated", "errorMessage": "…"}`),
/// without the token, cut short; `None` when the body has neither field.
fn netdata_text(response: &Response, token: &SecretString, tenant_url: bool) -> Option<String> {
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let text = match (field("errorMessage"), field("errorMsgKey")) {
        (Some(message), Some(key)) => format!("{message} ({key})"),
        (Some(message), None) => message.to_owned(),
        (None, Some(key)) => key.to_owned(),
        (None, None) => return None,
    };
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let secret = token.expose();
    if !secret.is_empty() {
        text = text.replace(secret.as_str(), REDACTED);
    }
    let limit = if tenant_url {
        TENANT_MESSAGE_LIMIT
    } else {
        MESSAGE_LIMIT
    };
    Some(match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_http::{HeaderMap, StatusCode};

    #[test]
    fn segments_are_encoded_under_the_base_path() {
        let url = url_with(
            "https://netdata.example.com/cloud",
            &["api", "v2", "spaces", "a/b c", "rooms"],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://netdata.example.com/cloud/api/v2/spaces/a%2Fb%20c/rooms"
        );
    }

    #[test]
    fn netdata_error_text_is_kept_without_the_token() {
        let token = SecretString::new("tok-canary-1".to_owned());
        let body = r#"{"errorCode":"x","errorMsgKey":"ErrForbidden","errorMessage":"token tok-canary-1 may not read this"}"#;
        let response = Response::new(StatusCode::FORBIDDEN, HeaderMap::new(), body);
        let error = map_status(response, &token, false).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
        assert_eq!(error.provider_status(), Some(403));
        assert_eq!(
            error.message(),
            "Netdata returned 403 Forbidden: token [redacted] may not read this (ErrForbidden)"
        );
        assert_eq!(error.hint(), Some(SCOPE_HINT));
    }
}
