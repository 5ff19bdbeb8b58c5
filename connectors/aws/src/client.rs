//! The AWS side: the platform's own identity from the standard AWS credential chain,
//! role assumption with a per-connection session cache, the official SDK clients, and
//! the mapping of AWS errors to Patchbay's. Every SDK request goes out through
//! `patchbay-http` (timeouts, bounded retries, no redirects, size cap).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials as AwsCredentials;
use aws_sdk_sts::error::ProvideErrorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient as SmithyHttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings,
    SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::RetryConfig;
use aws_types::region::Region;
use aws_types::sdk_config::SdkConfig;
use hmac::{Hmac, Mac};
use patchbay_core::{ConnectorEnv, Error, ErrorKind, Result, SecretString};
use patchbay_http::HttpClient;
use sha2::{Digest, Sha256};

use crate::CONNECTOR_ID;

/// The region used when neither the form nor the environment names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// How long a query session lasts (the role default maximum).
pub const SESSION_SECONDS: i32 = 3600;
/// How long the validation sessions last (the STS minimum).
pub const PROBE_SESSION_SECONDS: i32 = 900;
/// A cached session is re-assumed this long before its `Expiration`.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// The session name Patchbay uses, so CloudTrail shows who acted.
pub const SESSION_NAME: &str = "patchbay";

/// The variable holding the key the per-tenant ExternalIds are derived with.
pub const EXTERNAL_ID_KEY_VAR: &str = "PATCHBAY_AWS_EXTERNAL_ID_KEY";

/// The guide's message when the platform has no AWS identity.
pub const NO_PLATFORM_ACCOUNT: &str = "Unable to determine Patchbay's AWS account ID";
/// The guide's message when the customer's role cannot be assumed.
pub const CANNOT_ASSUME: &str = "Patchbay cannot assume this role";
/// The guide's message when the role lacks a permission.
pub const ACCESS_DENIED: &str = "Access denied";

/// The services the connector calls, with the suffix of their
/// `AWS_ENDPOINT_URL_<SERVICE>` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// AWS Security Token Service.
    Sts,
    /// Amazon CloudWatch (alarms, metrics).
    CloudWatch,
    /// Amazon CloudWatch Logs.
    Logs,
    /// AWS CloudTrail.
    CloudTrail,
    /// Amazon EC2.
    Ec2,
    /// Amazon EKS.
    Eks,
}

impl Service {
    /// Every service, in the order the endpoint variables are listed.
    pub const ALL: [Service; 6] = [
        Service::Sts,
        Service::CloudWatch,
        Service::Logs,
        Service::CloudTrail,
        Service::Ec2,
        Service::Eks,
    ];

    /// The service's `AWS_ENDPOINT_URL_<SERVICE>` variable, as the SDKs name it.
    pub fn endpoint_var(self) -> &'static str {
        match self {
            Service::Sts => "AWS_ENDPOINT_URL_STS",
            Service::CloudWatch => "AWS_ENDPOINT_URL_CLOUDWATCH",
            Service::Logs => "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
            Service::CloudTrail => "AWS_ENDPOINT_URL_CLOUDTRAIL",
            Service::Ec2 => "AWS_ENDPOINT_URL_EC2",
            Service::Eks => "AWS_ENDPOINT_URL_EKS",
        }
    }
}

/// The SDK's HTTP client: each request goes through `patchbay-http`.
#[derive(Debug, Clone)]
pub struct PatchbayHttp {
    http: HttpClient,
}

impl PatchbayHttp {
    /// An SDK HTTP client sending through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl SmithyHttpClient for PatchbayHttp {
    fn http_connector(
        &self,
        _settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

impl HttpConnector for PatchbayHttp {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let http = self.http.clone();
        HttpConnectorFuture::new(async move { send(&http, request).await })
    }
}

/// Which AWS API action a request calls: the `X-Amz-Target` suffix, the query
/// protocol's `Action`, or the RPC v2 path's last segment.
fn action_of(request: &http::Request<SdkBody>) -> String {
    if let Some(target) = request
        .headers()
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_owned();
    }
    if let Some(body) = request.body().bytes() {
        if let Some(action) = form_urlencoded_value(body, "Action") {
            return action;
        }
    }
    request
        .uri()
        .path()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// One value of an `application/x-www-form-urlencoded` body.
fn form_urlencoded_value(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

async fn send(
    http: &HttpClient,
    request: HttpRequest,
) -> std::result::Result<HttpResponse, ConnectorError> {
    let request = request
        .try_into_http1x()
        .map_err(|error| ConnectorError::user(Box::new(error)))?;
    let action = action_of(&request);
    let method = request.method().clone();
    let url = request.uri().to_string();
    let mut builder = http
        .request(method, &url)
        .connector(CONNECTOR_ID)
        // Every call the connector makes reads, except starting a Logs Insights query.
        .idempotent(action != "StartQuery");
    let mut content_type = None;
    for (name, value) in request.headers() {
        match name.as_str() {
            "content-type" => content_type = value.to_str().ok().map(str::to_owned),
            "content-length" | "host" => {}
            "authorization" | "x-amz-security-token" => {
                let secret = SecretString::new(value.to_str().unwrap_or_default().to_owned());
                let name = if name.as_str() == "authorization" {
                    "authorization"
                } else {
                    "x-amz-security-token"
                };
                builder = builder.secret_header(name, &secret);
            }
            _ => builder = builder.raw_header(name.clone(), value.clone()),
        }
    }
    let body = request.body().bytes().unwrap_or_default().to_vec();
    if !body.is_empty() || content_type.is_some() {
        builder = builder.body(
            content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
            body.into(),
        );
    }
    let response = builder
        .send()
        .await
        .map_err(|error| ConnectorError::io(Box::new(error)))?;
    let mut answer = http::Response::builder().status(response.status.as_u16());
    for (name, value) in &response.headers {
        answer = answer.header(name, value);
    }
    let answer = answer
        .body(SdkBody::from(response.body.to_vec()))
        .map_err(|error| ConnectorError::other(Box::new(error), None))?;
    HttpResponse::try_from(answer).map_err(|error| ConnectorError::other(Box::new(error), None))
}

/// Temporary credentials from `AssumeRole`, with their expiry.
#[derive(Clone)]
pub struct Session {
    /// The credentials, whose `Debug` redacts the secret parts.
    pub credentials: AwsCredentials,
    /// When AWS says they stop working.
    pub expiration: SystemTime,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("credentials", &"[redacted]")
            .field("expiration", &self.expiration)
            .finish()
    }
}

impl Session {
    /// The secret values of the session, for redaction from provider text.
    pub fn secret_values(&self) -> Vec<String> {
        let mut values = vec![
            self.credentials.access_key_id().to_owned(),
            self.credentials.secret_access_key().to_owned(),
        ];
        if let Some(token) = self.credentials.session_token() {
            values.push(token.to_owned());
        }
        values
    }
}

/// A source of the current time, replaceable in tests of the session cache.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// Sessions per (role, ExternalId), each slot locked while it is refreshed so
/// concurrent callers wait for one `AssumeRole` (single flight).
#[derive(Default)]
struct SessionCache {
    slots: Mutex<HashMap<String, Slot>>,
}

impl SessionCache {
    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key.to_owned()).or_default().clone()
    }
}

/// The platform side of the connector: its own AWS identity, the endpoint settings,
/// the HTTP client, the ExternalId key and the session cache. Holds no customer
/// secret beyond cached sessions in memory.
#[derive(Clone)]
pub struct Platform {
    http: SharedHttpClient,
    region: Region,
    credentials: Option<SharedCredentialsProvider>,
    endpoint_url: Option<String>,
    service_endpoints: HashMap<Service, String>,
    external_id_key: Option<SecretString>,
    cache: Arc<SessionCache>,
    clock: Clock,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform")
            .field("region", &self.region)
            .field("credentials", &self.credentials.is_some())
            .field("endpoint_url", &self.endpoint_url)
            .finish_non_exhaustive()
    }
}

/// Where the platform's own AWS identity comes from.
pub enum PlatformCredentials {
    /// `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`) from
    /// the connector's environment, or else the standard AWS chain (profile, web
    /// identity, container, instance role).
    Standard,
    /// None at all: onboarding and connecting fail with the guide's message.
    None,
}

impl Platform {
    /// The platform configured from the connector's environment.
    pub async fn from_env(
        env: &ConnectorEnv,
        http: HttpClient,
        credentials: PlatformCredentials,
    ) -> Self {
        let region = env
            .get("AWS_REGION")
            .or_else(|| env.get("AWS_DEFAULT_REGION"))
            .unwrap_or(DEFAULT_REGION)
            .trim()
            .to_owned();
        let ignore_endpoints = env
            .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"));
        let endpoint_url = (!ignore_endpoints)
            .then(|| env.get("AWS_ENDPOINT_URL").map(|url| url.trim().to_owned()))
            .flatten();
        let service_endpoints = if ignore_endpoints {
            HashMap::new()
        } else {
            Service::ALL
                .iter()
                .filter_map(|service| {
                    env.get(service.endpoint_var())
                        .map(|url| (*service, url.trim().to_owned()))
                })
                .collect()
        };
        let http = SharedHttpClient::new(PatchbayHttp::new(http));
        let credentials = match credentials {
            PlatformCredentials::None => None,
            PlatformCredentials::Standard => {
                match (
                    env.get("AWS_ACCESS_KEY_ID"),
                    env.get("AWS_SECRET_ACCESS_KEY"),
                ) {
                    (Some(key), Some(secret)) => {
                        Some(SharedCredentialsProvider::new(AwsCredentials::new(
                            key.trim(),
                            secret.trim(),
                            env.get("AWS_SESSION_TOKEN").map(|t| t.trim().to_owned()),
                            None,
                            "patchbay-environment",
                        )))
                    }
                    _ => {
                        let chain = aws_config::default_provider::credentials::Builder::default()
                            .configure(
                                aws_config::provider_config::ProviderConfig::default()
                                    .with_http_client(http.clone())
                                    .with_region(Some(Region::new(region.clone()))),
                            )
                            .build()
                            .await;
                        Some(SharedCredentialsProvider::new(chain))
                    }
                }
            }
        };
        Self {
            http,
            region: Region::new(region),
            credentials,
            endpoint_url,
            service_endpoints,
            external_id_key: env
                .get(EXTERNAL_ID_KEY_VAR)
                .map(|key| SecretString::new(key.trim().to_owned())),
            cache: Arc::default(),
            clock: Arc::new(SystemTime::now),
        }
    }

    /// The same platform reading the time from `clock` (for the session cache).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The platform's default region.
    pub fn region(&self) -> &str {
        self.region.as_ref()
    }

    /// The endpoint a service is reached at, when the operator set one.
    fn endpoint(&self, service: Service) -> Option<&str> {
        self.service_endpoints
            .get(&service)
            .or(self.endpoint_url.as_ref())
            .map(String::as_str)
    }

    /// SDK settings for `region` with `credentials`; the SDK's own retries are off
    /// because `patchbay-http` retries.
    fn sdk_config(&self, region: &str, credentials: SharedCredentialsProvider) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .credentials_provider(credentials)
            .http_client(self.http.clone())
            .retry_config(RetryConfig::disabled())
            .sleep_impl(aws_smithy_async::rt::sleep::default_async_sleep().expect("tokio sleep"))
            .time_source(aws_smithy_async::time::SystemTimeSource::new())
            .build()
    }

    fn platform_credentials(&self) -> Result<SharedCredentialsProvider> {
        self.credentials.clone().ok_or_else(no_platform_account)
    }

    /// An STS client with the platform's own credentials.
    fn platform_sts(&self, region: &str) -> Result<aws_sdk_sts::Client> {
        let config = self.sdk_config(region, self.platform_credentials()?);
        let mut builder = aws_sdk_sts::config::Builder::from(&config);
        if let Some(url) = self.endpoint(Service::Sts) {
            builder = builder.endpoint_url(url);
        }
        Ok(aws_sdk_sts::Client::from_conf(builder.build()))
    }

    /// The platform's AWS account id (`GetCallerIdentity`); the guide's message
    /// when the platform has no usable credentials.
    pub async fn account_id(&self) -> Result<String> {
        let sts = self.platform_sts(self.region())?;
        let identity = sts.get_caller_identity().send().await.map_err(|error| {
            let cause = map_sdk_error("sts:GetCallerIdentity", error, &[]);
            no_platform_account().with_hint(format!(
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or give Patchbay an IAM \
                 role); AWS answered: {}",
                cause.message()
            ))
        })?;
        identity
            .account()
            .map(str::to_owned)
            .ok_or_else(no_platform_account)
    }

    /// The ExternalId of a tenant: an HMAC of its scope under the operator's key,
    /// so it is stable, unique per tenant and never chosen by a user.
    pub fn external_id(&self, scope: &str) -> Result<SecretString> {
        let key = self.external_id_key.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{EXTERNAL_ID_KEY_VAR} is not set, so Patchbay cannot give ExternalIds"),
            )
            .with_connector(CONNECTOR_ID)
            .with_hint(format!(
                "set {EXTERNAL_ID_KEY_VAR} to a long random value and keep it: the \
                 ExternalIds in your customers' trust policies are derived from it"
            ))
        })?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
            .map_err(|_| Error::internal("the ExternalId key is unusable"))?;
        mac.update(b"patchbay aws external id\0");
        mac.update(scope.as_bytes());
        let digest = mac.finalize().into_bytes();
        Ok(SecretString::new(format!(
            "patchbay-{}",
            hex::encode(&digest[..20])
        )))
    }

    /// `AssumeRole` on `role_arn`, with `external_id` when given, for `seconds`.
    pub async fn assume_role(
        &self,
        role_arn: &str,
        region: &str,
        external_id: Option<&SecretString>,
        seconds: i32,
    ) -> Result<Session> {
        let sts = self.platform_sts(region)?;
        let mut request = sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(SESSION_NAME)
            .duration_seconds(seconds);
        if let Some(external_id) = external_id {
            request = request.external_id(external_id.expose());
        }
        let redact: Vec<String> = external_id
            .map(|id| vec![id.expose().to_owned()])
            .unwrap_or_default();
        let output = request.send().await.map_err(|error| {
            let redact: Vec<&str> = redact.iter().map(String::as_str).collect();
            map_sdk_error("sts:AssumeRole", error, &redact)
        })?;
        let credentials = output.credentials().ok_or_else(|| {
            Error::internal("AssumeRole answered without credentials").with_connector(CONNECTOR_ID)
        })?;
        let expiration = SystemTime::try_from(*credentials.expiration())
            .map_err(|_| Error::internal("AssumeRole answered an unreadable Expiration"))?;
        Ok(Session {
            credentials: AwsCredentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                Some(credentials.session_token().to_owned()),
                Some(expiration),
                "patchbay-assume-role",
            ),
            expiration,
        })
    }

    /// A session for the role, from the cache while it has more than
    /// [`REFRESH_MARGIN`] left, otherwise assumed again; one `AssumeRole` at a time
    /// per role and ExternalId.
    pub async fn session(
        &self,
        role_arn: &str,
        region: &str,
        external_id: &SecretString,
    ) -> Result<Session> {
        let mut hasher = Sha256::new();
        hasher.update(role_arn.as_bytes());
        hasher.update([0]);
        hasher.update(region.as_bytes());
        hasher.update([0]);
        hasher.update(external_id.expose().as_bytes());
        let key = hex::encode(hasher.finalize());
        let slot = self.cache.slot(&key);
        let mut cached = slot.lock().await;
        let now = (self.clock)();
        if let Some(session) = cached.as_ref() {
            if session
                .expiration
                .duration_since(now)
                .is_ok_and(|left| left > REFRESH_MARGIN)
            {
                return Ok(session.clone());
            }
        }
        let session = self
            .assume_role(role_arn, region, Some(external_id), SESSION_SECONDS)
            .await?;
        *cached = Some(session.clone());
        Ok(session)
    }

    /// SDK settings for calls made with `session` in `region`.
    pub fn session_config(&self, session: &Session, region: &str) -> SdkConfig {
        self.sdk_config(
            region,
            SharedCredentialsProvider::new(session.credentials.clone()),
        )
    }

    /// The AWS clients for one session.
    pub fn clients(&self, session: &Session, region: &str) -> Clients {
        let config = self.session_config(session, region);
        macro_rules! client {
            ($krate:ident, $service:expr) => {{
                let mut builder = $krate::config::Builder::from(&config);
                if let Some(url) = self.endpoint($service) {
                    builder = builder.endpoint_url(url);
                }
                $krate::Client::from_conf(builder.build())
            }};
        }
        Clients {
            sts: client!(aws_sdk_sts, Service::Sts),
            cloudwatch: client!(aws_sdk_cloudwatch, Service::CloudWatch),
            logs: client!(aws_sdk_cloudwatchlogs, Service::Logs),
            cloudtrail: client!(aws_sdk_cloudtrail, Service::CloudTrail),
            ec2: client!(aws_sdk_ec2, Service::Ec2),
            eks: client!(aws_sdk_eks, Service::Eks),
            secrets: session.secret_values(),
        }
    }
}

/// The SDK clients of one assumed session.
#[derive(Clone)]
pub struct Clients {
    /// AWS STS.
    pub sts: aws_sdk_sts::Client,
    /// CloudWatch.
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    /// CloudWatch Logs.
    pub logs: aws_sdk_cloudwatchlogs::Client,
    /// CloudTrail.
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// EKS.
    pub eks: aws_sdk_eks::Client,
    secrets: Vec<String>,
}

impl Clients {
    /// Maps an SDK error of `action`, removing the session's secrets from its text.
    pub fn error<E, R>(&self, action: &str, error: SdkError<E, R>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + HasStatus,
    {
        let redact: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        map_sdk_error(action, error, &redact)
    }
}

/// The guide's error for a platform without AWS credentials.
pub fn no_platform_account() -> Error {
    Error::new(ErrorKind::Unavailable, NO_PLATFORM_ACCOUNT)
        .with_connector(CONNECTOR_ID)
        .with_hint("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in .env")
}

/// The HTTP status of a raw SDK response.
pub trait HasStatus {
    /// The status code.
    fn status_code(&self) -> u16;
    /// A header's value.
    fn header_value(&self, name: &str) -> Option<&str>;
}

impl HasStatus for HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
    fn header_value(&self, name: &str) -> Option<&str> {
        self.headers().get(name)
    }
}

/// AWS error codes meaning the caller lacks a permission.
const DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnauthorizedException",
    "AuthorizationError",
];
/// AWS error codes meaning the credentials themselves are refused.
const AUTH_CODES: &[&str] = &[
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "AuthFailure",
    "IncompleteSignature",
];
/// AWS error codes meaning "slow down".
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "LimitExceededException",
];

/// Maps an SDK error of `action` (`service:Action`) to Patchbay's kinds, passing
/// AWS's own message through with every value in `redact` removed.
pub fn map_sdk_error<E, R>(action: &str, error: SdkError<E, R>, redact: &[&str]) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + HasStatus,
{
    let clean = |text: &str| {
        let mut text = text.to_owned();
        for secret in redact.iter().filter(|secret| secret.len() >= 4) {
            text = text.replace(secret, "[redacted]");
        }
        text
    };
    match error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status_code();
            let retry_after = context
                .raw()
                .header_value("retry-after")
                .and_then(|value| value.trim().parse::<u64>().ok());
            let code = context.err().code().unwrap_or_default().to_owned();
            let message = clean(context.err().message().unwrap_or_default());
            let text = if message.is_empty() {
                format!("{action} failed with {code} (HTTP {status})")
            } else {
                format!("{action} failed with {code}: {message}")
            };
            let error = if DENIED_CODES.contains(&code.as_str()) {
                Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{ACCESS_DENIED}: the role may not call {action} ({code}: {message})"),
                )
                .with_hint(format!(
                    "Check the IAM role has sufficient permissions: allow {action} (the \
                     ReadOnlyAccess policy does)"
                ))
            } else if AUTH_CODES.contains(&code.as_str()) {
                Error::new(ErrorKind::AuthFailed, text)
                    .with_hint("reconnect the account; the role's session was refused")
            } else if THROTTLE_CODES.contains(&code.as_str()) || status == 429 {
                let error = Error::new(ErrorKind::RateLimited, text)
                    .with_hint("AWS is throttling the account; try again shortly");
                match retry_after {
                    Some(seconds) => error.with_retry_after(Duration::from_secs(seconds)),
                    None => error,
                }
            } else if status >= 500 {
                Error::new(ErrorKind::Unavailable, text)
                    .with_hint("AWS answered with a server error; try again shortly")
            } else if status == 404
                || code.ends_with("NotFoundException")
                || code.ends_with("NotFound")
            {
                Error::not_found(text)
            } else if status == 401 {
                Error::new(ErrorKind::AuthFailed, text)
            } else if status == 403 {
                Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{ACCESS_DENIED}: the role may not call {action} ({code}: {message})"),
                )
                .with_hint("Check the IAM role has sufficient permissions")
            } else {
                Error::new(ErrorKind::InvalidInput, text)
            };
            error
                .with_provider_status(status)
                .with_connector(CONNECTOR_ID)
        }
        SdkError::DispatchFailure(failure) => {
            let connector_error = failure.as_connector_error();
            let cause = connector_error
                .map(|error| format!("({error})"))
                .unwrap_or_default();
            let source = connector_error
                .and_then(|error| std::error::Error::source(error))
                .and_then(|source| source.downcast_ref::<Error>())
                .map(|error| {
                    let copy = Error::new(error.kind(), clean(error.message()));
                    match error.hint() {
                        Some(hint) => copy.with_hint(hint),
                        None => copy,
                    }
                });
            match source {
                Some(error) => error,
                None => Error::unavailable(clean(&format!("{action} could not reach AWS {cause}"))),
            }
            .with_connector(CONNECTOR_ID)
        }
        SdkError::TimeoutError(_) => {
            Error::unavailable(format!("{action} timed out")).with_connector(CONNECTOR_ID)
        }
        SdkError::ResponseError(context) => Error::new(
            ErrorKind::Unavailable,
            format!(
                "{action}: AWS answered HTTP {} with a body Patchbay could not read",
                context.raw().status_code()
            ),
        )
        .with_connector(CONNECTOR_ID),
        other => Error::internal(clean(&format!("{action} failed: {other}")))
            .with_connector(CONNECTOR_ID),
    }
}
