//! Requests to one region's OVHcloud API, with an OAuth bearer token or signed with
//! an application key, and the mapping of OVHcloud's error answers.
//!
//! Signed requests carry `X-Ovh-Application`, `X-Ovh-Consumer`, `X-Ovh-Timestamp`
//! (OVHcloud's clock: the local clock corrected by the delta to `GET /auth/time`,
//! read once per client) and `X-Ovh-Signature`, `"$1$"` and the SHA-1 hex of
//! `AS+CK+METHOD+URL+BODY+TIMESTAMP` joined by `+`, over the full URL as sent.
//! `/auth/time` itself is sent unsigned, as OVHcloud's own clients do.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patchbay_core::{Credentials, Error, ErrorKind, Result, SecretString};
use patchbay_http::{parse_retry_after, HttpClient, Response};
use serde_json::Value;
use sha1::{Digest, Sha1};
use tokio::sync::OnceCell;
use url::Url;

use crate::auth::OvhSecrets;
use crate::config::{ApiBases, AuthMethod, OvhConfig};
use crate::CONNECTOR_ID;

/// The `X-Ovh-Signature` of a request: `"$1$"` and the lowercase SHA-1 hex of
/// `application_secret+consumer_key+METHOD+url+body+timestamp`.
pub fn signature(
    application_secret: &str,
    consumer_key: &str,
    method: &str,
    url: &str,
    body: &str,
    timestamp: i64,
) -> String {
    let mut hasher = Sha1::new();
    hasher.update(
        format!("{application_secret}+{consumer_key}+{method}+{url}+{body}+{timestamp}").as_bytes(),
    );
    format!("$1${}", hex::encode(hasher.finalize()))
}

/// The local clock in seconds since the epoch.
fn local_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// How a request proves who it is.
#[derive(Debug)]
enum Authorization {
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// Signed with the application secret.
    Signed {
        application_key: SecretString,
        application_secret: SecretString,
        consumer_key: SecretString,
    },
}

/// Talks to one region's OVHcloud API with one credential.
#[derive(Debug)]
pub struct OvhClient<'a> {
    http: &'a HttpClient,
    base: Url,
    replaced_base: bool,
    authorization: Authorization,
    /// OVHcloud's clock minus ours, in seconds, read once from `/auth/time`.
    time_delta: OnceCell<i64>,
    /// Whether a rejected credential means "reconnect" (nothing to refresh) rather
    /// than "refresh the OAuth token and retry".
    reauth_on_401: bool,
}

impl<'a> OvhClient<'a> {
    /// A client for the connection's region and credential.
    pub fn new(
        http: &'a HttpClient,
        bases: &ApiBases,
        credentials: &Credentials<OvhConfig, OvhSecrets>,
    ) -> Result<Self> {
        let authorization = match credentials.config.auth_method {
            AuthMethod::Oauth => {
                let token = credentials
                    .access_token(CONNECTOR_ID)
                    .map_err(|_| not_authenticated())?;
                Authorization::Bearer(token.clone())
            }
            AuthMethod::ApplicationKey => {
                let secrets = &credentials.secrets;
                match (
                    &secrets.application_key,
                    &secrets.application_secret,
                    &secrets.consumer_key,
                ) {
                    (Some(application_key), Some(application_secret), Some(consumer_key)) => {
                        Authorization::Signed {
                            application_key: application_key.clone(),
                            application_secret: application_secret.clone(),
                            consumer_key: consumer_key.clone(),
                        }
                    }
                    _ => return Err(not_authenticated()),
                }
            }
        };
        let (base, replaced_base) = bases.base(credentials.config.region);
        Ok(Self {
            http,
            base: base.clone(),
            replaced_base,
            authorization,
            time_delta: OnceCell::new(),
            reauth_on_401: false,
        })
    }

    /// The same client, for queries: a rejected application key asks the user to reconnect.
    pub fn for_queries(mut self) -> Self {
        self.reauth_on_401 = matches!(self.authorization, Authorization::Signed { .. });
        self
    }

    /// `<base>/<segments>`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::internal("the OVHcloud API base cannot take a path"))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    /// OVHcloud's clock minus the local one, in seconds (`GET /auth/time`, unsigned).
    pub async fn time_delta(&self) -> Result<i64> {
        self.time_delta
            .get_or_try_init(|| async {
                let url = self.url(&["auth", "time"])?;
                let response = self.request(url.as_str(), "server_time").send().await?;
                let response = map_status(response, "/auth/time", false)?;
                let server: i64 = response.json()?;
                Ok(server - local_now())
            })
            .await
            .copied()
    }

    fn request(&self, url: &str, operation: &'static str) -> patchbay_http::RequestBuilder {
        let mut request = self
            .http
            .get(url)
            .connector(CONNECTOR_ID)
            .operation(operation)
            .idempotent(true)
            .header("Accept", "application/json");
        if self.replaced_base {
            request = request.tenant_url("OVH API base");
        }
        request
    }

    /// `GET <base>/<segments>?query`, authenticated; `template` names the endpoint in errors.
    pub async fn get(
        &self,
        operation: &'static str,
        template: &str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value> {
        let mut url = self.url(segments)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let mut request = self.request(url.as_str(), operation);
        request = match &self.authorization {
            Authorization::Bearer(token) => request.bearer_auth(token),
            Authorization::Signed {
                application_key,
                application_secret,
                consumer_key,
            } => {
                let timestamp = local_now() + self.time_delta().await?;
                let signed = signature(
                    application_secret.expose(),
                    consumer_key.expose(),
                    "GET",
                    url.as_str(),
                    "",
                    timestamp,
                );
                request
                    .secret_header("X-Ovh-Application", application_key)
                    .secret_header("X-Ovh-Consumer", consumer_key)
                    .header("X-Ovh-Timestamp", &timestamp.to_string())
                    .secret_header("X-Ovh-Signature", &SecretString::new(signed))
            }
        };
        let response = request.send().await?;
        let response = map_status(response, template, self.reauth_on_401)?;
        if response.body.is_empty() {
            return Ok(Value::Null);
        }
        response.json()
    }
}

/// The connection has no usable credential stored.
fn not_authenticated() -> Error {
    Error::new(ErrorKind::NeedsReauth, "Not authenticated with OVH")
        .with_connector(CONNECTOR_ID)
        .with_hint("disconnect OVHcloud and connect it again")
}

/// OVHcloud's `errorCode`s for credentials it does not know (answered with 400 or 403).
const CREDENTIAL_ERRORS: &[&str] = &[
    "INVALID_CREDENTIAL",
    "INVALID_KEY",
    "INVALID_SIGNATURE",
    "NOT_CREDENTIAL",
];

/// Maps an OVHcloud answer: 401 (and 400/403 whose `errorCode` rejects the
/// credential itself) "OVH authentication expired. Please reconnect your account.",
/// 403 "IAM permissions required", 404, 429 with its wait, 5xx "OVH API request
/// failed"; OVHcloud's own `message` follows each.
pub(crate) fn map_status(
    response: Response,
    template: &str,
    reauth_on_401: bool,
) -> Result<Response> {
    let status = response.status.as_u16();
    let wait = parse_retry_after(&response.headers, SystemTime::now());
    let error_code = serde_json::from_slice::<Value>(&response.body)
        .ok()
        .and_then(|body| {
            body.get("errorCode")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
    let original = match response.with_connector(CONNECTOR_ID).error_for_status() {
        Ok(response) => return Ok(response),
        Err(error) => error,
    };
    let detail = original.message().to_owned();
    let credential_refused = status == 401
        || (matches!(status, 400 | 403)
            && error_code
                .as_deref()
                .is_some_and(|code| CREDENTIAL_ERRORS.contains(&code)));
    let error = if credential_refused {
        Error::new(
            if reauth_on_401 {
                ErrorKind::NeedsReauth
            } else {
                ErrorKind::AuthFailed
            },
            format!("OVH authentication expired. Please reconnect your account. ({detail})"),
        )
        .with_hint(
            "reconnect OVHcloud: an application key needs a valid consumer key for the same region, \
             an OAuth connection a grant that was not revoked",
        )
    } else {
        match status {
            403 => Error::new(
                ErrorKind::PermissionDenied,
                format!("IAM permissions required for {template} ({detail})"),
            )
            .with_hint(
                "grant the account (or the consumer key's rules) GET access to this path in OVHcloud IAM",
            ),
            404 => Error::not_found(format!("OVHcloud has no {template} matching the request ({detail})"))
                .with_hint("check the id; list the collection first to find it"),
            429 => {
                let error = Error::new(
                    ErrorKind::RateLimited,
                    format!("Rate limited by OVHcloud ({detail})"),
                )
                .with_hint("wait and try again");
                match wait {
                    Some(wait) => error.with_retry_after(wait.min(Duration::from_secs(3600))),
                    None => error,
                }
            }
            500..=599 => Error::new(
                ErrorKind::Unavailable,
                format!("OVH API request failed ({detail})"),
            )
            .with_hint("OVHcloud is having trouble; try again later (https://status.ovhcloud.com)"),
            _ => return Err(original),
        }
    };
    Err(error
        .with_connector(CONNECTOR_ID)
        .with_provider_status(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_signs_as_published() {
        assert_eq!(
            signature(
                "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk",
                "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY",
                "GET",
                "https://eu.api.ovh.com/1.0/auth",
                "",
                1_457_018_875
            ),
            "$1$e9556054b6309771395efa467c22e627407461ad"
        );
    }
}
