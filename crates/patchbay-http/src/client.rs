//! The shared client, its request builder and the retry loop.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, Method, StatusCode};
use patchbay_core::metrics as metric_names;
use patchbay_core::secret::REDACTED;
use patchbay_core::{ConnectorEnv, Error, OAuthClientCredentials, Result, SecretString};
use rand::Rng as _;
use tracing::Instrument as _;
use url::{Host, Url};

use crate::config::{HttpConfig, TIMEOUT_VAR};
use crate::overrides::OVERRIDES_VAR;
use crate::policy::{check_address, CheckedResolver, Refusal, RefusalKind};
use crate::response::{parse_retry_after, Response};

/// The outbound HTTP client every connector shares; cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    client: reqwest::Client,
    /// For tenant URLs over https: resolves through the address policy.
    tenant_https: reqwest::Client,
    /// For tenant URLs over plain http: admits allowlisted addresses only.
    tenant_http: reqwest::Client,
    config: HttpConfig,
}

impl HttpClient {
    /// Builds a client with redirects off and the configured timeouts and user agent.
    pub fn new(config: HttpConfig) -> Result<Self> {
        let policy = Arc::new(config.address_policy.clone());
        let client = build_client(&config, None)?;
        let tenant_https = build_client(
            &config,
            Some(CheckedResolver {
                policy: policy.clone(),
                plain_http: false,
            }),
        )?;
        let tenant_http = build_client(
            &config,
            Some(CheckedResolver {
                policy,
                plain_http: true,
            }),
        )?;
        Ok(Self {
            shared: Arc::new(Shared {
                client,
                tenant_https,
                tenant_http,
                config,
            }),
        })
    }

    /// Builds a client from [`HttpConfig::from_env`].
    pub fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Self::new(HttpConfig::from_env(env)?)
    }

    /// The settings this client was built with.
    pub fn config(&self) -> &HttpConfig {
        &self.shared.config
    }

    /// Checks a base URL a tenant submits (`field` names the form field): http or
    /// https with a host and no user info; an IP-literal host must pass the address
    /// policy, and plain http needs an allowlisted address. Host names are checked
    /// after resolution, on every request marked [`RequestBuilder::tenant_url`].
    ///
    /// A refusal is an `InvalidConfig` error naming `field`, the host and the rule.
    pub fn check_tenant_url(&self, field: &str, url: &str) -> Result<Url> {
        let hint = "give the server's https address, such as https://server.example.com";
        let parsed = Url::parse(url.trim()).map_err(|error| {
            // The text is not echoed: a pasted value may hold a credential.
            Error::invalid_config(field, format!("`{field}` is not a valid URL: {error}"))
                .with_hint(hint)
        })?;
        let shown = shown_url(&parsed);
        if !parsed.username().is_empty() || parsed.password().is_some() {
            // Refused rather than sent: reqwest would send it as Basic credentials.
            return Err(Error::invalid_config(
                field,
                format!("refused {shown}: the URL must not carry a user name or password"),
            )
            .with_hint(hint));
        }
        let plain_http = match parsed.scheme() {
            "https" => false,
            "http" => true,
            scheme => {
                return Err(Error::invalid_config(
                    field,
                    format!("refused {shown}: the URL must use https, not `{scheme}`"),
                )
                .with_hint(hint))
            }
        };
        let policy = &self.shared.config.address_policy;
        let refusal = match parsed.host() {
            Some(Host::Ipv4(address)) => {
                check_address(policy, IpAddr::V4(address), plain_http, None).err()
            }
            Some(Host::Ipv6(address)) => {
                check_address(policy, IpAddr::V6(address), plain_http, None).err()
            }
            // Only allowlisted addresses take plain http; with none, no name can.
            Some(Host::Domain(_)) if plain_http && policy.networks().is_empty() => Some(Refusal {
                resolved_from: None,
                kind: RefusalKind::PlainHttp(None),
            }),
            Some(Host::Domain(_)) => None,
            None => {
                return Err(Error::invalid_config(
                    field,
                    format!("refused {shown}: the URL has no host"),
                )
                .with_hint(hint))
            }
        };
        match refusal {
            Some(refusal) => Err(refusal.into_error(field, &shown)),
            None => Ok(parsed),
        }
    }

    /// Starts a GET request.
    pub fn get(&self, url: &str) -> RequestBuilder {
        self.request(Method::GET, url)
    }

    /// Starts a POST request (not retried on 5xx unless marked idempotent).
    pub fn post(&self, url: &str) -> RequestBuilder {
        self.request(Method::POST, url)
    }

    /// Starts a PUT request.
    pub fn put(&self, url: &str) -> RequestBuilder {
        self.request(Method::PUT, url)
    }

    /// Starts a DELETE request.
    pub fn delete(&self, url: &str) -> RequestBuilder {
        self.request(Method::DELETE, url)
    }

    /// Starts a request with any method.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        let (url, error) = match Url::parse(url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
                (Some(url), None)
            }
            Ok(url) => (
                None,
                Some(Error::internal(format!(
                    "request URL must be http or https with a host, got scheme `{}`",
                    url.scheme()
                ))),
            ),
            // The URL text is not echoed: its query string may hold a secret.
            Err(error) => (
                None,
                Some(Error::internal(format!("invalid request URL: {error}"))),
            ),
        };
        RequestBuilder {
            client: self.clone(),
            method,
            url,
            error,
            headers: HeaderMap::new(),
            body: None,
            connector: None,
            operation: None,
            idempotent: None,
            timeout: None,
            sensitive_path: false,
            sent_secrets: Vec::new(),
            tenant_field: None,
            client_credentials: None,
        }
    }
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.shared.config)
            .finish()
    }
}

/// A request being described; it is kept as plain data so it can be re-sent on retry.
///
/// Problems found while building (a bad URL, an invalid header value) are reported
/// by [`RequestBuilder::send`].
pub struct RequestBuilder {
    client: HttpClient,
    method: Method,
    url: Option<Url>,
    error: Option<Error>,
    headers: HeaderMap,
    body: Option<Bytes>,
    connector: Option<&'static str>,
    operation: Option<&'static str>,
    idempotent: Option<bool>,
    timeout: Option<Duration>,
    sensitive_path: bool,
    sent_secrets: Vec<SecretString>,
    tenant_field: Option<&'static str>,
    client_credentials: Option<OAuthClientCredentials>,
}

impl RequestBuilder {
    /// Names the connector in errors and spans.
    pub fn connector(mut self, id: &'static str) -> Self {
        self.connector = Some(id);
        self
    }

    /// Names the operation in spans (e.g. "validate", "search_logs").
    pub fn operation(mut self, name: &'static str) -> Self {
        self.operation = Some(name);
        self
    }

    /// Sets a header whose value is not secret.
    pub fn header(self, name: &'static str, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(value) => self.set_header(name, value),
            Err(_) => self.fail(Error::internal(format!(
                "header `{name}` value contains characters not allowed in HTTP headers"
            ))),
        }
    }

    /// Sets a header whose name is only known at run time (a signing SDK's
    /// headers); the value is marked sensitive so it is never printed.
    pub fn raw_header(mut self, name: HeaderName, mut value: HeaderValue) -> Self {
        value.set_sensitive(true);
        self.headers.append(name, value);
        self
    }

    /// Sets a header carrying a secret: marked sensitive, never printed, and
    /// redacted from provider error text.
    pub fn secret_header(self, name: &'static str, value: &SecretString) -> Self {
        self.set_secret_header(name, value, value.clone())
    }

    /// Sets `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: &SecretString) -> Self {
        let header = SecretString::new(format!("Bearer {}", token.expose()));
        self.set_secret_header(AUTHORIZATION.as_str(), &header, token.clone())
    }

    /// Sets `Authorization: Basic <base64(user:password)>`.
    pub fn basic_auth(self, user: &str, password: &SecretString) -> Self {
        let credentials = SecretString::new(
            base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose())),
        );
        let header = SecretString::new(format!("Basic {}", credentials.expose()));
        let this = self.set_secret_header(AUTHORIZATION.as_str(), &header, password.clone());
        this.remember_secret(credentials)
    }

    /// Sets `Authorization: Basic <base64(client_id:client_secret)>` with an OAuth
    /// client's credentials, and pins the request to the provider's own origins
    /// (see [`RequestBuilder::carries_client_credentials`]).
    pub fn client_basic_auth(self, credentials: &OAuthClientCredentials) -> Self {
        let Some(url) = self.url.clone() else {
            return self;
        };
        match credentials.secret_for(&url) {
            Ok(secret) => {
                let secret = secret.clone();
                self.basic_auth(&credentials.client_id, &secret)
                    .carries_client_credentials(credentials)
            }
            Err(error) => self.fail(error),
        }
    }

    /// Marks the request as carrying an OAuth client's credentials (in the body or
    /// a header): [`RequestBuilder::send`] refuses, sending nothing, unless the
    /// request URL's origin is one of the provider's own. The URL is checked as
    /// given, before `PATCHBAY_UPSTREAM_OVERRIDES` (operator configuration) applies.
    pub fn carries_client_credentials(mut self, credentials: &OAuthClientCredentials) -> Self {
        self.client_credentials = Some(credentials.clone());
        self
    }

    /// Marks the URL as supplied by a tenant, from the form field `field`: the
    /// address actually connected to (after any upstream override) must pass the
    /// address policy, host names are resolved and checked before connecting, and
    /// provider error text is cut to a short extracted message.
    pub fn tenant_url(mut self, field: &'static str) -> Self {
        self.tenant_field = Some(field);
        self
    }

    /// Appends `query`'s fields to the URL's query string.
    pub fn query<T: serde::Serialize + ?Sized>(mut self, query: &T) -> Self {
        let Some(url) = self.url.as_mut() else {
            return self;
        };
        let outcome = query
            .serialize(serde_urlencoded::Serializer::new(
                &mut url.query_pairs_mut(),
            ))
            .map(|_| ());
        if url.query() == Some("") {
            url.set_query(None);
        }
        match outcome {
            Ok(()) => self,
            Err(error) => self.fail(Error::internal(format!(
                "could not encode the query string: {error}"
            ))),
        }
    }

    /// Sends `body` as JSON.
    pub fn json<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => self.body("application/json", bytes.into()),
            Err(error) => self.fail(Error::internal(format!(
                "could not encode the JSON body: {error}"
            ))),
        }
    }

    /// Sends `body` as `application/x-www-form-urlencoded`.
    pub fn form<T: serde::Serialize + ?Sized>(self, body: &T) -> Self {
        match serde_urlencoded::to_string(body) {
            Ok(text) => self.body("application/x-www-form-urlencoded", text.into()),
            Err(error) => self.fail(Error::internal(format!(
                "could not encode the form body: {error}"
            ))),
        }
    }

    /// Sends `bytes` with the given `Content-Type`.
    pub fn body(mut self, content_type: &str, bytes: Bytes) -> Self {
        self.body = Some(bytes);
        self.header(CONTENT_TYPE.as_str(), content_type)
    }

    /// Whether the request may be repeated safely: retried on 502/503/504, timeouts
    /// and connection failures. Defaults to true for GET, HEAD, PUT, DELETE and
    /// OPTIONS; read-only POST searches set it to true.
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = Some(yes);
        self
    }

    /// Overrides the per-attempt total timeout.
    pub fn timeout(mut self, total: Duration) -> Self {
        self.timeout = Some(total);
        self
    }

    /// Marks the URL path as secret (webhook URLs with a token in the path):
    /// spans and `Debug` print it as `[redacted]`.
    pub fn sensitive_path(mut self) -> Self {
        self.sensitive_path = true;
        self
    }

    /// Sends the request, retrying as the configuration allows.
    ///
    /// Any HTTP status comes back as `Ok`; call [`Response::error_for_status`] to
    /// map failures. Errors are for transport problems, size and build mistakes.
    pub async fn send(self) -> Result<Response> {
        let connector = self.connector;
        let name_connector = |error: Error| match connector {
            Some(id) if error.connector().is_none() => error.with_connector(id),
            _ => error,
        };
        let url = match (self.error, self.url) {
            (None, Some(url)) => url,
            (Some(error), _) => return Err(name_connector(error)),
            (None, None) => return Err(name_connector(Error::internal("request URL is missing"))),
        };
        if let Some(credentials) = &self.client_credentials {
            credentials
                .check_destination(&url)
                .map_err(name_connector)?;
        }
        let span = tracing::info_span!(
            "http.request",
            connector = connector.unwrap_or("unnamed"),
            operation = self.operation.unwrap_or("unnamed"),
            method = %self.method,
            host = url.host_str().unwrap_or_default(),
            path = if self.sensitive_path { REDACTED } else { url.path() },
            status = tracing::field::Empty,
            attempts = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let idempotent = self
            .idempotent
            .unwrap_or_else(|| default_idempotent(&self.method));
        let attempt = Attempt {
            shared: &self.client.shared,
            method: self.method,
            url,
            headers: self.headers,
            body: self.body,
            connector,
            operation: self.operation,
            idempotent,
            timeout: self
                .timeout
                .unwrap_or(self.client.shared.config.total_timeout),
            sent_secrets: self.sent_secrets.into(),
            tenant_field: self.tenant_field,
        };
        attempt.run().instrument(span).await.map_err(name_connector)
    }

    fn set_header(mut self, name: &'static str, value: HeaderValue) -> Self {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(name) => {
                self.headers.insert(name, value);
                self
            }
            Err(_) => self.fail(Error::internal(format!(
                "`{name}` is not a valid HTTP header name"
            ))),
        }
    }

    fn set_secret_header(
        self,
        name: &'static str,
        header: &SecretString,
        secret: SecretString,
    ) -> Self {
        let this = self.remember_secret(secret);
        match HeaderValue::from_str(header.expose()) {
            Ok(mut value) => {
                value.set_sensitive(true);
                this.set_header(name, value)
            }
            // The value is never echoed: it is a secret.
            Err(_) => this.fail(
                Error::invalid_config(
                    name,
                    format!(
                        "the credential sent as header `{name}` contains a line break or \
                         another character not allowed in HTTP headers"
                    ),
                )
                .with_hint("copy the credential again without surrounding spaces or line breaks"),
            ),
        }
    }

    fn remember_secret(mut self, secret: SecretString) -> Self {
        if !secret.is_empty() {
            self.sent_secrets.push(secret);
        }
        self
    }

    fn fail(mut self, error: Error) -> Self {
        self.error.get_or_insert(error);
        self
    }
}

impl fmt::Debug for RequestBuilder {
    // Prints header names only and the URL without its query string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.url.as_ref().map(|url| {
            let path = if self.sensitive_path {
                REDACTED
            } else {
                url.path()
            };
            format!("{}{path}", url_origin(url))
        });
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .field("connector", &self.connector)
            .field("operation", &self.operation)
            .field("idempotent", &self.idempotent)
            .finish()
    }
}

fn default_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// One request's plain description plus what the retry loop needs.
struct Attempt<'a> {
    shared: &'a Shared,
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    connector: Option<&'static str>,
    operation: Option<&'static str>,
    idempotent: bool,
    timeout: Duration,
    sent_secrets: Arc<[SecretString]>,
    tenant_field: Option<&'static str>,
}

/// Why one attempt did not produce a response.
enum AttemptFailure {
    Transport(reqwest::Error),
    TooLarge,
    /// The resolver refused every address of a tenant URL's host (named field).
    Refused(&'static str, Refusal),
}

impl Attempt<'_> {
    async fn run(self) -> Result<Response> {
        let started = Instant::now();
        let span = tracing::Span::current();
        let config = &self.shared.config;
        let target = config
            .overrides
            .rewrite(&self.url)
            .unwrap_or_else(|| self.url.clone());
        let client = match self.tenant_field {
            Some(field) => {
                self.check_literal_target(&target)
                    .map_err(|refusal| self.refusal_error(field, refusal, &target))?;
                if target.scheme() == "http" {
                    &self.shared.tenant_http
                } else {
                    &self.shared.tenant_https
                }
            }
            None => &self.shared.client,
        };
        let mut attempts = 0;
        let outcome = loop {
            attempts += 1;
            let retries_left = attempts <= config.max_retries;
            let failure = match client.execute(self.build(&target)).await {
                Ok(response) => {
                    let status = response.status();
                    let wait = if retries_left && self.retryable_status(status) {
                        match parse_retry_after(response.headers(), SystemTime::now()) {
                            Some(wait) if wait <= config.max_retry_after => Some(wait),
                            Some(_) => None,
                            None => Some(self.backoff(attempts)),
                        }
                    } else {
                        None
                    };
                    if let Some(wait) = wait {
                        let reason = if status == StatusCode::TOO_MANY_REQUESTS
                            || response.headers().contains_key(RETRY_AFTER)
                        {
                            "rate_limited"
                        } else {
                            "server_error"
                        };
                        self.record_retry(reason, wait);
                        tracing::debug!(
                            status = status.as_u16(),
                            attempt = attempts,
                            wait_ms = wait.as_millis() as u64,
                            "retrying after a retryable status"
                        );
                        drop(response);
                        config.pause.wait(wait).await;
                        continue;
                    }
                    match read_capped(response, config.max_response_bytes).await {
                        Ok(response) => break Ok(response),
                        Err(failure) => failure,
                    }
                }
                Err(error) => match (self.tenant_field, find_refusal(&error)) {
                    (Some(field), Some(refusal)) => AttemptFailure::Refused(field, refusal),
                    _ => AttemptFailure::Transport(error),
                },
            };
            match failure {
                AttemptFailure::Transport(error)
                    if retries_left && self.idempotent && retryable_transport(&error) =>
                {
                    let wait = self.backoff(attempts);
                    self.record_retry("transport", wait);
                    tracing::debug!(
                        attempt = attempts,
                        timed_out = error.is_timeout(),
                        wait_ms = wait.as_millis() as u64,
                        "retrying after a transport failure"
                    );
                    config.pause.wait(wait).await;
                }
                failure => break Err(failure),
            }
        };
        span.record("attempts", attempts);
        span.record("elapsed_ms", started.elapsed().as_millis() as u64);
        let status_class = match &outcome {
            Ok((status, _, _)) => metric_names::status_class(status.as_u16()),
            Err(_) => "transport_error",
        };
        let connector = self.connector.unwrap_or("unnamed");
        let operation = self.operation.unwrap_or("unnamed");
        metrics::counter!(
            metric_names::PROVIDER_REQUESTS,
            "connector" => connector,
            "operation" => operation,
            "status_class" => status_class,
        )
        .increment(1);
        metrics::histogram!(
            metric_names::PROVIDER_REQUEST_SECONDS,
            "connector" => connector,
            "operation" => operation,
        )
        .record(started.elapsed().as_secs_f64());
        match outcome {
            Ok((status, headers, body)) => {
                span.record("status", status.as_u16());
                Ok(Response::received(
                    status,
                    headers,
                    body,
                    attempts,
                    self.connector,
                    self.sent_secrets,
                    self.tenant_field.is_some(),
                ))
            }
            Err(failure) => Err(self.failure_error(failure, &target, attempts)),
        }
    }

    /// Checks a target whose host is an IP literal, which no resolver sees.
    fn check_literal_target(&self, target: &Url) -> std::result::Result<(), Refusal> {
        let address = match target.host() {
            Some(Host::Ipv4(address)) => IpAddr::V4(address),
            Some(Host::Ipv6(address)) => IpAddr::V6(address),
            _ => return Ok(()),
        };
        check_address(
            &self.shared.config.address_policy,
            address,
            target.scheme() == "http",
            None,
        )
    }

    /// The refusal as an error naming the URL asked for and, when an override
    /// sent it elsewhere, the URL really contacted.
    fn refusal_error(&self, field: &str, refusal: Refusal, target: &Url) -> Error {
        let asked = shown_url(&self.url);
        let shown = if target.origin() == self.url.origin() {
            asked
        } else {
            format!(
                "{asked} (sent to {} by {OVERRIDES_VAR})",
                url_origin(target)
            )
        };
        refusal.into_error(field, &shown)
    }

    fn build(&self, target: &Url) -> reqwest::Request {
        let mut request = reqwest::Request::new(self.method.clone(), target.clone());
        *request.headers_mut() = self.headers.clone();
        if let Some(body) = &self.body {
            *request.body_mut() = Some(body.clone().into());
        }
        *request.timeout_mut() = Some(self.timeout);
        request
    }

    /// 429 means the server did not process the request, so any method may repeat it.
    fn retryable_status(&self, status: StatusCode) -> bool {
        status == StatusCode::TOO_MANY_REQUESTS
            || (self.idempotent
                && matches!(
                    status,
                    StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT
                ))
    }

    /// Counts a retry and the wait before it.
    fn record_retry(&self, reason: &'static str, wait: Duration) {
        let connector = self.connector.unwrap_or("unnamed");
        metrics::counter!(metric_names::PROVIDER_RETRIES, "connector" => connector, "reason" => reason)
            .increment(1);
        metrics::histogram!(
            metric_names::PROVIDER_RETRY_WAIT_SECONDS,
            "connector" => connector,
            "reason" => reason,
        )
        .record(wait.as_secs_f64());
    }

    /// Exponential backoff with full jitter before retry number `retry` (1-based).
    fn backoff(&self, retry: u32) -> Duration {
        let config = &self.shared.config;
        full_jitter(config.base_backoff, config.max_backoff, retry - 1)
    }

    fn failure_error(&self, failure: AttemptFailure, target: &Url, attempts: u32) -> Error {
        let host = authority(target);
        let via = if target.host_str() == self.url.host_str() {
            String::new()
        } else {
            format!(" (override for {})", authority(&self.url))
        };
        let tries = if attempts == 1 {
            "1 attempt".to_owned()
        } else {
            format!("{attempts} attempts")
        };
        match failure {
            AttemptFailure::Refused(field, refusal) => self.refusal_error(field, refusal, target),
            AttemptFailure::TooLarge => Error::internal(format!(
                "response too large: {host}{via} sent more than {} bytes",
                self.shared.config.max_response_bytes
            )),
            AttemptFailure::Transport(error) if error.is_timeout() => Error::unavailable(format!(
                "could not reach {host}{via}: timed out after {tries} ({:?} per attempt)",
                self.timeout
            ))
            .with_hint(format!(
                "the provider did not answer in time; try again later or raise {TIMEOUT_VAR}"
            )),
            AttemptFailure::Transport(error) => {
                let reason = root_cause(&error);
                Error::unavailable(format!(
                    "could not reach {host}{via}: {reason} (after {tries})"
                ))
                .with_hint("check the provider address and that this host has network access to it")
                .with_source(error.without_url())
            }
        }
    }
}

type ReadResponse = (StatusCode, http::HeaderMap, Bytes);

/// Reads the body chunk by chunk, stopping as soon as it passes `max` bytes.
async fn read_capped(
    mut response: reqwest::Response,
    max: usize,
) -> std::result::Result<ReadResponse, AttemptFailure> {
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(AttemptFailure::TooLarge);
    }
    let status = response.status();
    let headers = std::mem::take(response.headers_mut());
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(AttemptFailure::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(AttemptFailure::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, headers, body.freeze()))
}

/// The address-policy refusal behind a transport error, when the resolver refused.
fn find_refusal(error: &reqwest::Error) -> Option<Refusal> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return Some(refusal.clone());
        }
        cause = current.source();
    }
    None
}

fn build_client(config: &HttpConfig, resolver: Option<CheckedResolver>) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .read_timeout(config.read_timeout)
        .timeout(config.total_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(config.user_agent.as_str());
    if let Some(resolver) = resolver {
        // A proxy would resolve the tenant's host itself, past the checked resolver.
        builder = builder.no_proxy().dns_resolver(Arc::new(resolver));
    }
    builder.build().map_err(|error| {
        Error::internal(format!(
            "could not build the HTTP client: {}",
            root_cause(&error)
        ))
    })
}

fn retryable_transport(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

pub(crate) fn full_jitter(base: Duration, max: Duration, exponent: u32) -> Duration {
    let ceiling = base.saturating_mul(2u32.saturating_pow(exponent)).min(max);
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(rand::thread_rng().gen_range(0..=nanos))
}

/// The innermost cause's text: specific ("Connection refused") and free of the URL.
fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if std::ptr::addr_eq(cause, error) {
        "request failed".to_owned()
    } else {
        cause.to_string()
    }
}

fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

fn url_origin(url: &Url) -> String {
    format!("{}://{}", url.scheme(), authority(url))
}

/// The URL as shown in refusals: origin and path, without user info or query.
fn shown_url(url: &Url) -> String {
    format!("{}{}", url_origin(url), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_jitter_stays_within_the_exponential_ceiling() {
        let base = Duration::from_millis(100);
        let max = Duration::from_millis(700);
        for _ in 0..200 {
            assert!(full_jitter(base, max, 0) <= base);
            assert!(full_jitter(base, max, 2) <= Duration::from_millis(400));
            assert!(full_jitter(base, max, 10) <= max);
            assert!(full_jitter(base, max, 40) <= max);
        }
    }

    #[test]
    fn default_idempotency_follows_the_method() {
        assert!(default_idempotent(&Method::GET));
        assert!(default_idempotent(&Method::PUT));
        assert!(default_idempotent(&Method::DELETE));
        assert!(!default_idempotent(&Method::POST));
        assert!(!default_idempotent(&Method::PATCH));
    }
}
