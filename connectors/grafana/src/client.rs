//! Requests to the Grafana HTTP API and the mapping of its answers to errors.
//!
//! Every request goes to the connection's own Grafana URL with the service
//! account token as `Authorization: Bearer`, and is marked as a tenant URL so the
//! HTTP client applies the address policy to the address it connects to.

use patchbay_core::{Error, ErrorKind, Result, SecretString};
use patchbay_http::{HttpClient, Method, Response};
use serde_json::Value;
use url::Url;

use crate::CONNECTOR_ID;

/// What to do about a rejected token.
pub const TOKEN_HINT: &str =
    "Failed to validate Grafana credentials: create a new service account \
     token in Grafana (Administration > Service accounts) and reconnect";

/// Talks to one Grafana with one service account token.
pub struct GrafanaClient<'a> {
    http: &'a HttpClient,
    base_url: &'a str,
    token: &'a SecretString,
}

impl<'a> GrafanaClient<'a> {
    /// A client for `base_url` (already checked at connect time) and `token`.
    pub fn new(http: &'a HttpClient, base_url: &'a str, token: &'a SecretString) -> Self {
        Self {
            http,
            base_url: base_url.trim_end_matches('/'),
            token,
        }
    }

    /// `base_url` followed by percent-encoded `segments`.
    pub fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = Url::parse(self.base_url).map_err(|error| {
            Error::invalid_config(
                "base_url",
                format!("stored Grafana URL is invalid: {error}"),
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("reconnect Grafana with a valid base_url")
        })?;
        url.path_segments_mut()
            .map_err(|()| {
                Error::invalid_config("base_url", "stored Grafana URL cannot take a path")
                    .with_connector(CONNECTOR_ID)
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// `GET <base_url>/<segments>?query` as JSON; `permission` is what the call
    /// needs, named in a 403.
    pub async fn get(
        &self,
        operation: &'static str,
        segments: &[&str],
        query: &[(&str, String)],
        permission: Option<&str>,
    ) -> Result<Value> {
        let mut request = self.request(Method::GET, operation, segments)?;
        if !query.is_empty() {
            request = request.query(query);
        }
        parse(map_status(request.send().await?, segments, permission)?)
    }

    /// `POST <base_url>/<segments>` with a JSON body, for reads Grafana serves by
    /// POST (`/api/ds/query`); retried like a GET because it changes nothing.
    pub async fn post_read(
        &self,
        operation: &'static str,
        segments: &[&str],
        body: &Value,
        permission: Option<&str>,
    ) -> Result<Response> {
        let request = self
            .request(Method::POST, operation, segments)?
            .json(body)
            .idempotent(true);
        let response = request.send().await?;
        // `/api/ds/query` answers a failed query with its per-query error in the body.
        if response.status.as_u16() == 400 || response.status.as_u16() == 500 {
            if let Ok(body) = response.json::<Value>() {
                if body.get("results").is_some() {
                    return Ok(response);
                }
            }
        }
        map_status(response, segments, permission)
    }

    fn request(
        &self,
        method: Method,
        operation: &'static str,
        segments: &[&str],
    ) -> Result<patchbay_http::RequestBuilder> {
        let url = self.url(segments)?;
        Ok(self
            .http
            .request(method, url.as_str())
            .connector(CONNECTOR_ID)
            .operation(operation)
            .header("Accept", "application/json")
            .bearer_auth(self.token)
            .tenant_url("base_url"))
    }
}

fn parse(response: Response) -> Result<Value> {
    if response.body.is_empty() {
        Ok(Value::Null)
    } else {
        response.json()
    }
}

fn display_path(segments: &[&str]) -> String {
    format!("/{}", segments.join("/"))
}

/// Maps a Grafana answer: 401 is a rejected token, 403 names the permission the
/// call needs and the role that grants it, 404 names the path; 429 (with
/// `Retry-After`) and 5xx keep the HTTP client's mapping and Grafana's message.
pub fn map_status(
    response: Response,
    segments: &[&str],
    permission: Option<&str>,
) -> Result<Response> {
    if response.status.is_success() {
        return Ok(response);
    }
    let status = response.status.as_u16();
    let path = display_path(segments);
    let mapped = match response.with_connector(CONNECTOR_ID).error_for_status() {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let error = match status {
        401 => Error::new(
            ErrorKind::AuthFailed,
            format!(
                "Grafana rejected the service account token ({})",
                mapped.message()
            ),
        )
        .with_hint(TOKEN_HINT),
        403 => {
            let hint = match permission {
                Some(permission) => format!(
                    "the service account lacks `{permission}`; {}",
                    role_granting(permission)
                ),
                None => "give the service account the Viewer role".to_owned(),
            };
            Error::new(
                ErrorKind::PermissionDenied,
                format!("Grafana refused {path}: {}", mapped.message()),
            )
            .with_hint(hint)
        }
        404 => Error::not_found(format!(
            "Grafana has nothing at {path}: {}",
            mapped.message()
        ))
        .with_hint("check the uid or name, and that the service account can see it"),
        _ => return Err(mapped),
    };
    let mut error = error
        .with_connector(CONNECTOR_ID)
        .with_provider_status(status);
    if let Some(wait) = mapped.retry_after() {
        error = error.with_retry_after(wait);
    }
    Err(error)
}

/// Which role grants a Grafana RBAC permission the operations use.
pub fn role_granting(permission: &str) -> &'static str {
    match permission {
        "datasources:read" => {
            "the Viewer role does not include it: grant the fixed role \
             `fixed:datasources:reader` (Data sources reader) or the Admin role to the service account"
        }
        _ => "the Viewer role grants it: give the service account the Viewer role \
             (Administration > Service accounts)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_http::HttpConfig;

    #[test]
    fn segments_are_encoded_under_the_base_path() {
        let http = HttpClient::new(HttpConfig::default()).unwrap();
        let token = SecretString::from("t");
        let client = GrafanaClient::new(&http, "https://ops.example.com/grafana/", &token);
        let url = client.url(&["api", "dashboards", "uid", "a b/c"]).unwrap();
        assert_eq!(
            url.as_str(),
            "https://ops.example.com/grafana/api/dashboards/uid/a%20b%2Fc"
        );
    }
}
