//! Requests to the PagerDuty REST API and the mapping of its answers to errors.
//!
//! Every call sends `Accept: application/vnd.pagerduty+json;version=2` and the
//! credential: `Authorization: Token token=<key>` for API keys, `Bearer` for OAuth.
//! The shared HTTP client retries 429 and 5xx answers of these reads, honouring
//! `Retry-After`; what is left after its retries is mapped here with the messages
//! users know from the setup guide's reference system.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patchbay_core::{Credentials, Error, ErrorKind, Result, SecretString};
use patchbay_http::{parse_retry_after, HttpClient, Response};
use serde_json::Value;
use url::Url;

use crate::auth::PagerdutySecrets;
use crate::config::{AuthType, PagerdutyConfig};
use crate::CONNECTOR_ID;

/// The media type (and API version) every request asks for.
pub const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// How a request proves who it is.
#[derive(Debug, Clone)]
enum Authorization {
    /// `Token token=<key>`.
    ApiToken(SecretString),
    /// `Bearer <token>`.
    Bearer(SecretString),
}

/// Talks to one PagerDuty region with one credential.
#[derive(Debug)]
pub struct PagerdutyClient<'a> {
    http: &'a HttpClient,
    api_base: &'static str,
    authorization: Authorization,
    /// Whether a 401 means "reconnect" (an API key cannot be refreshed) rather than
    /// "refresh the OAuth token and try again".
    reauth_on_401: bool,
}

impl<'a> PagerdutyClient<'a> {
    /// A client for the connection's region and credential.
    pub fn new(
        http: &'a HttpClient,
        credentials: &Credentials<PagerdutyConfig, PagerdutySecrets>,
    ) -> Result<Self> {
        let authorization = match (credentials.config.auth_type, &credentials.secrets.api_token) {
            (AuthType::ApiToken, Some(key)) => {
                Authorization::ApiToken(SecretString::new(format!("Token token={}", key.expose())))
            }
            (AuthType::ApiToken, None) => {
                return Err(Error::new(
                    ErrorKind::NeedsReauth,
                    "the connection has no stored API token",
                )
                .with_connector(CONNECTOR_ID)
                .with_hint("disconnect PagerDuty and connect it again"))
            }
            (AuthType::Oauth, _) => {
                Authorization::Bearer(credentials.access_token(CONNECTOR_ID)?.clone())
            }
        };
        Ok(Self {
            http,
            api_base: credentials.config.api_region.api_base(),
            authorization,
            reauth_on_401: false,
        })
    }

    /// The same client, for queries: a rejected API key asks the user to reconnect.
    pub fn for_queries(mut self) -> Self {
        self.reauth_on_401 = matches!(self.authorization, Authorization::ApiToken(_));
        self
    }

    /// `GET <api base>/<segments>?query`, each segment percent-encoded; `template`
    /// names the endpoint in errors (`/incidents/{id}`).
    pub async fn get(
        &self,
        operation: &'static str,
        template: &str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value> {
        let url = api_url(self.api_base, segments)?;
        let mut request = self
            .http
            .get(url.as_str())
            .connector(CONNECTOR_ID)
            .operation(operation)
            .idempotent(true)
            .header("Accept", ACCEPT)
            .header("Content-Type", "application/json");
        request = match &self.authorization {
            Authorization::ApiToken(header) => request.secret_header("Authorization", header),
            Authorization::Bearer(token) => request.bearer_auth(token),
        };
        if !query.is_empty() {
            request = request.query(query);
        }
        let response = request.send().await?;
        let response = map_status(response, template, self.reauth_on_401)?;
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        response.json()
    }
}

/// `base` followed by percent-encoded `segments`.
fn api_url(base: &str, segments: &[&str]) -> Result<Url> {
    let mut url = Url::parse(base)
        .map_err(|error| Error::internal(format!("bad PagerDuty API base: {error}")))?;
    url.path_segments_mut()
        .map_err(|()| Error::internal("the PagerDuty API base cannot take a path"))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Maps a PagerDuty answer: 401 "Invalid or expired API token", 403 "Token lacks
/// required permissions", 429 "Rate limited by PagerDuty" (with the wait), 5xx
/// "PagerDuty API request failed"; PagerDuty's own error text follows each.
pub(crate) fn map_status(
    response: Response,
    template: &str,
    reauth_on_401: bool,
) -> Result<Response> {
    let status = response.status.as_u16();
    let wait = rate_limit_wait(&response);
    let original = match response.with_connector(CONNECTOR_ID).error_for_status() {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let detail = original.message().to_owned();
    let error = match status {
        401 => Error::new(
            if reauth_on_401 {
                ErrorKind::NeedsReauth
            } else {
                ErrorKind::AuthFailed
            },
            format!("Invalid or expired API token ({detail})"),
        )
        .with_hint(
            "check the API key (Integrations > API Access Keys) and the region (us or eu), \
             or reconnect PagerDuty if the key or OAuth grant was revoked",
        ),
        403 => Error::new(
            ErrorKind::PermissionDenied,
            format!("Token lacks required permissions for {template} ({detail})"),
        )
        .with_hint(
            "use a key or OAuth grant that can read this resource; OAuth needs the scope named \
             in the check or operation (e.g. incidents.read), and some endpoints need a plan feature",
        ),
        429 => {
            let error = Error::new(
                ErrorKind::RateLimited,
                format!("Rate limited by PagerDuty ({detail})"),
            )
            .with_hint("wait until the limit resets and try again; /oncalls has its own, lower limit");
            match wait {
                Some(wait) => error.with_retry_after(wait),
                None => error,
            }
        }
        404 => Error::not_found(format!("PagerDuty has no {template} matching the request ({detail})"))
            .with_hint("check the id; list the collection first to find it"),
        500..=599 => Error::new(
            ErrorKind::Unavailable,
            format!("PagerDuty API request failed ({detail})"),
        )
        .with_hint("PagerDuty is having trouble; try again later (status.pagerduty.com)"),
        _ => return Err(original),
    };
    Err(error
        .with_connector(CONNECTOR_ID)
        .with_provider_status(status))
}

/// How long a 429 asks to wait: `Retry-After`, else the `ratelimit-reset` seconds.
fn rate_limit_wait(response: &Response) -> Option<Duration> {
    parse_retry_after(&response.headers, SystemTime::now()).or_else(|| {
        let reset: u64 = response.header("ratelimit-reset")?.trim().parse().ok()?;
        // Small values are seconds to wait; large ones an epoch time.
        if reset > 1_000_000_000 {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
            Some(Duration::from_secs(reset.saturating_sub(now)))
        } else {
            Some(Duration::from_secs(reset))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_encoded_under_the_base() {
        let url = api_url(
            "https://api.eu.pagerduty.com",
            &["incidents", "P1/../x", "notes"],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://api.eu.pagerduty.com/incidents/P1%2F..%2Fx/notes"
        );
    }
}
