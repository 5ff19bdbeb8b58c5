//! A front for an AWS emulator (moto) on `127.0.0.1`, behind the `fake` feature, for
//! this crate's tests and for hosts that test with this connector.
//!
//! Moto answers almost everything, but it does not enforce a trust policy's
//! `sts:ExternalId` condition, has no CloudTrail `LookupEvents` and no Logs
//! `StopQuery`. The front sits between the connector and moto and:
//! - enforces trust on `AssumeRole`: a role is assumable only when registered with
//!   [`AwsFront::trust_role`] (which requires its ExternalId) or
//!   [`AwsFront::trust_role_without_external_id`] (a careless trust policy);
//!   anything else is `AccessDenied`, as AWS answers;
//! - answers `LookupEvents` from events added with [`AwsFront::add_cloudtrail_event`],
//!   and `StopQuery`, recording the stopped query;
//! - refuses actions denied with [`AwsFront::deny`] and answers injected errors
//!   ([`AwsFront::fail_next`]) in each service's own protocol (STS and EC2 XML,
//!   CloudWatch RPC v2 CBOR, Logs and CloudTrail JSON 1.1, EKS REST JSON);
//! - forwards everything else to moto unchanged.
//!
//! Moto keeps one state per account, and an assumed role's credentials act in the
//! role's account, so tests isolate themselves by using an account of their own.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use patchbay_core::ConnectorEnv;
use patchbay_http::{HttpClient, HttpConfig};
use patchbay_testkit::fake_server::FakeServer;
use serde_json::{json, Value};

use crate::AwsConnector;

/// The platform's access key id the front's connectors use (moto accepts any).
pub const PLATFORM_ACCESS_KEY_ID: &str = "AKIAPATCHBAYPLATFORM";
/// The account moto reports for the platform's identity.
pub const PLATFORM_ACCOUNT_ID: &str = "123456789012";

/// One `AssumeRole` the front received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeCall {
    /// The role asked for.
    pub role_arn: String,
    /// Whether an ExternalId was sent.
    pub with_external_id: bool,
    /// Whether the front let it through.
    pub allowed: bool,
}

/// One request the front received: the IAM action and the caller's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontRequest {
    /// `service:Action`, e.g. `ec2:DescribeInstances`.
    pub action: String,
    /// The caller's account (`platform` for the platform's own identity).
    pub account: String,
    /// The caller's access key id.
    pub access_key_id: String,
}

/// The trust a registered role places in the platform.
#[derive(Debug, Clone)]
enum Trust {
    ExternalId(String),
    Anyone,
}

#[derive(Default)]
struct State_ {
    roles: HashMap<String, Trust>,
    keys: HashMap<String, (String, String)>,
    denied: HashSet<(String, String)>,
    failures: HashMap<String, Vec<(u16, String)>>,
    events: HashMap<String, Vec<Value>>,
    assumes: Vec<AssumeCall>,
    requests: Vec<FrontRequest>,
    stopped: Vec<String>,
    hold_queries: bool,
    refuse_unconditional_with: Option<(u16, String)>,
    session_lifetime: Option<Duration>,
    issued: Vec<String>,
}

struct Shared {
    moto: String,
    http: reqwest::Client,
    state: Mutex<State_>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The running front; stops when dropped.
pub struct AwsFront {
    shared: Arc<Shared>,
    server: FakeServer,
}

impl std::fmt::Debug for AwsFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.server.debug_as("AwsFront", f)
    }
}

impl AwsFront {
    /// Starts the front on `127.0.0.1:0` in front of the moto server at `moto_url`.
    pub async fn start(moto_url: &str) -> Self {
        let shared = Arc::new(Shared {
            moto: moto_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("the front's client builds"),
            state: Mutex::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("aws", router).await;
        Self { shared, server }
    }

    /// The front's base URL, for `AWS_ENDPOINT_URL`.
    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    /// The environment a connector using the front is built from: platform keys,
    /// the region, `AWS_ENDPOINT_URL` and the ExternalId key.
    pub fn env(&self, secret_access_key: &str, external_id_key: &str) -> ConnectorEnv {
        ConnectorEnv::from_pairs([
            ("AWS_ACCESS_KEY_ID", PLATFORM_ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", secret_access_key.to_owned()),
            ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
            ("AWS_ENDPOINT_URL", self.base_url()),
            (
                crate::client::EXTERNAL_ID_KEY_VAR,
                external_id_key.to_owned(),
            ),
        ])
    }

    /// A connector reaching AWS through the front, with fast retries.
    pub fn connector(&self, secret_access_key: &str, external_id_key: &str) -> AwsConnector {
        AwsConnector::new(self.env(secret_access_key, external_id_key), fast_http())
    }

    /// Lets the platform assume `role_arn` only with `external_id`.
    pub fn trust_role(&self, role_arn: &str, external_id: &str) {
        self.shared.state().roles.insert(
            role_arn.to_owned(),
            Trust::ExternalId(external_id.to_owned()),
        );
    }

    /// Lets the platform assume `role_arn` with or without an ExternalId.
    pub fn trust_role_without_external_id(&self, role_arn: &str) {
        self.shared
            .state()
            .roles
            .insert(role_arn.to_owned(), Trust::Anyone);
    }

    /// Refuses `action` (`service:Action`) to callers in `account` with AccessDenied.
    pub fn deny(&self, account: &str, action: &str) {
        self.shared
            .state()
            .denied
            .insert((account.to_owned(), action.to_owned()));
    }

    /// Answers the next request for `action` with HTTP `status` and AWS error `code`.
    pub fn fail_next(&self, action: &str, status: u16, code: &str) {
        self.shared
            .state()
            .failures
            .entry(action.to_owned())
            .or_default()
            .push((status, code.to_owned()));
    }

    /// Adds a CloudTrail event (in `LookupEvents` shape) to `account`.
    pub fn add_cloudtrail_event(&self, account: &str, event: Value) {
        self.shared
            .state()
            .events
            .entry(account.to_owned())
            .or_default()
            .push(event);
    }

    /// Answers every `AssumeRole` without an ExternalId with HTTP `status` and AWS
    /// error `code` (an outage while the enforcement check runs).
    pub fn fail_assume_without_external_id(&self, status: u16, code: &str) {
        self.shared.state().refuse_unconditional_with = Some((status, code.to_owned()));
    }

    /// Makes the sessions `AssumeRole` gives out expire `lifetime` from now (moto's
    /// own `Expiration` follows `DurationSeconds`); `None` restores moto's.
    pub fn set_session_lifetime(&self, lifetime: Option<Duration>) {
        self.shared.state().session_lifetime = lifetime;
    }

    /// Makes Logs Insights queries report `Running` until stopped.
    pub fn hold_insights_queries(&self) {
        self.shared.state().hold_queries = true;
    }

    /// Every `AssumeRole` received, in order.
    pub fn assume_calls(&self) -> Vec<AssumeCall> {
        self.shared.state().assumes.clone()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<FrontRequest> {
        self.shared.state().requests.clone()
    }

    /// The requests for `action`.
    pub fn requests_for(&self, action: &str) -> Vec<FrontRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.action == action)
            .collect()
    }

    /// Every secret part of the sessions handed out (access key ids, secret keys,
    /// session tokens), for canary scans.
    pub fn issued_session_secrets(&self) -> Vec<String> {
        self.shared.state().issued.clone()
    }

    /// The Logs Insights queries stopped.
    pub fn stopped_queries(&self) -> Vec<String> {
        self.shared.state().stopped.clone()
    }
}

/// An HTTP client whose retries wait milliseconds, for tests of 429 and 5xx.
pub fn fast_http() -> HttpClient {
    HttpClient::new(HttpConfig {
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retries: 2,
        ..HttpConfig::default()
    })
    .expect("the test HTTP client builds")
}

/// The AWS service a request is signed for, and its caller's access key.
fn scope(headers: &HeaderMap) -> (String, String) {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let credential = authorization
        .split("Credential=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default();
    let parts: Vec<&str> = credential.split('/').collect();
    let key = parts.first().copied().unwrap_or_default().to_owned();
    let service = parts.get(3).copied().unwrap_or_default().to_owned();
    (service, key)
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// The IAM action of a request.
fn action(service: &str, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> String {
    let prefix = match service {
        "monitoring" => "cloudwatch",
        other => other,
    };
    let name = if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        target.rsplit('.').next().unwrap_or(target).to_owned()
    } else if let Some(action) = form_value(body, "Action") {
        action
    } else if service == "eks" {
        let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
        match (method.as_str(), segments.as_slice()) {
            ("GET", ["clusters"]) => "ListClusters".to_owned(),
            ("GET", ["clusters", _]) => "DescribeCluster".to_owned(),
            _ => uri.path().to_owned(),
        }
    } else {
        uri.path().rsplit('/').next().unwrap_or_default().to_owned()
    };
    format!("{prefix}:{name}")
}

/// A CBOR text string.
fn cbor_text(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    if len < 24 {
        out.push(0x60 | len as u8);
    } else if len < 256 {
        out.extend([0x78, len as u8]);
    } else {
        out.push(0x79);
        out.extend((len as u16).to_be_bytes());
    }
    out.extend(text.as_bytes());
}

/// An AWS error answer in `service`'s protocol.
fn aws_error(
    service: &str,
    headers: &HeaderMap,
    status: u16,
    code: &str,
    message: &str,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let cbor = headers
        .get("smithy-protocol")
        .is_some_and(|value| value.as_bytes() == b"rpc-v2-cbor");
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    match service {
        "sts" => (
            status,
            [("content-type", "text/xml")],
            format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>front-1</RequestId></ErrorResponse>",
                escape(message)
            ),
        )
            .into_response(),
        "ec2" => (
            status,
            [("content-type", "text/xml")],
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>{code}</Code><Message>{}</Message></Error></Errors><RequestID>front-1</RequestID></Response>",
                escape(message)
            ),
        )
            .into_response(),
        "monitoring" if cbor => {
            let mut body = vec![0xA2];
            cbor_text(&mut body, "__type");
            cbor_text(&mut body, code);
            cbor_text(&mut body, "message");
            cbor_text(&mut body, message);
            (
                status,
                [
                    ("content-type", "application/cbor"),
                    ("smithy-protocol", "rpc-v2-cbor"),
                ],
                body,
            )
                .into_response()
        }
        "monitoring" => (
            status,
            [("content-type", "text/xml")],
            format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{}</Message></Error><RequestId>front-1</RequestId></ErrorResponse>",
                escape(message)
            ),
        )
            .into_response(),
        _ => (
            status,
            [
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amzn-errortype", code),
            ],
            json!({"__type": code, "message": message}).to_string(),
        )
            .into_response(),
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (service, key) = scope(&headers);
    let action = action(&service, &method, &uri, &headers, &body);
    let (account, role) = {
        let state = shared.state();
        state
            .keys
            .get(&key)
            .cloned()
            .unwrap_or_else(|| ("platform".to_owned(), String::new()))
    };
    let caller = if account == "platform" {
        format!("arn:aws:iam::{PLATFORM_ACCOUNT_ID}:user/patchbay")
    } else {
        role.clone()
    };
    {
        let mut state = shared.state();
        state.requests.push(FrontRequest {
            action: action.clone(),
            account: account.clone(),
            access_key_id: key.clone(),
        });
        if let Some((status, code)) = state
            .failures
            .get_mut(&action)
            .and_then(|queue| (!queue.is_empty()).then(|| queue.remove(0)))
        {
            drop(state);
            let mut response = aws_error(
                &service,
                &headers,
                status,
                &code,
                &format!("injected {code} for {action}"),
            );
            if status == 429 || code.starts_with("Throttl") {
                response
                    .headers_mut()
                    .insert("retry-after", "7".parse().expect("a header value"));
            }
            return response;
        }
        if state.denied.contains(&(account.clone(), action.clone())) {
            drop(state);
            return aws_error(
                &service,
                &headers,
                if service == "ec2" { 403 } else { 400 },
                if service == "ec2" {
                    "UnauthorizedOperation"
                } else if service == "sts" || service == "monitoring" {
                    "AccessDenied"
                } else {
                    "AccessDeniedException"
                },
                &format!("User: {caller} is not authorized to perform: {action}"),
            );
        }
    }
    match action.as_str() {
        "sts:AssumeRole" => assume_role(&shared, &service, &headers, &uri, &body, &caller).await,
        "cloudtrail:LookupEvents" => lookup_events(&shared, &account, &body),
        "logs:StopQuery" => {
            let request: Value = serde_json::from_slice(&body).unwrap_or_default();
            let id = request["queryId"].as_str().unwrap_or_default().to_owned();
            shared.state().stopped.push(id);
            (
                StatusCode::OK,
                [("content-type", "application/x-amz-json-1.1")],
                json!({"success": true}).to_string(),
            )
                .into_response()
        }
        "logs:GetQueryResults" if shared.state().hold_queries => (
            StatusCode::OK,
            [("content-type", "application/x-amz-json-1.1")],
            json!({"status": "Running", "results": [], "statistics": {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}}).to_string(),
        )
            .into_response(),
        _ => forward(&shared, method, &uri, &headers, body).await,
    }
}

async fn assume_role(
    shared: &Shared,
    service: &str,
    headers: &HeaderMap,
    uri: &Uri,
    body: &Bytes,
    caller: &str,
) -> Response {
    let role_arn = form_value(body, "RoleArn").unwrap_or_default();
    let external_id = form_value(body, "ExternalId");
    let trust = shared.state().roles.get(&role_arn).cloned();
    let outage = shared.state().refuse_unconditional_with.clone();
    if let (None, Some((status, code))) = (&external_id, outage) {
        return aws_error(service, headers, status, &code, "injected failure");
    }
    let allowed = match (&trust, &external_id) {
        (Some(Trust::Anyone), _) => true,
        (Some(Trust::ExternalId(expected)), Some(given)) => expected == given,
        _ => false,
    };
    shared.state().assumes.push(AssumeCall {
        role_arn: role_arn.clone(),
        with_external_id: external_id.is_some(),
        allowed,
    });
    if !allowed {
        return aws_error(
            service,
            headers,
            403,
            "AccessDenied",
            &format!("User: {caller} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"),
        );
    }
    let response = forward(shared, Method::POST, uri, headers, body.clone()).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    let lifetime = shared.state().session_lifetime;
    if let (Some(lifetime), Some(start), Some(end)) = (
        lifetime,
        text.find("<Expiration>"),
        text.find("</Expiration>"),
    ) {
        let expiration =
            chrono::Utc::now() + chrono::TimeDelta::from_std(lifetime).unwrap_or_default();
        text.replace_range(
            start + "<Expiration>".len()..end,
            &expiration.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    }
    for tag in ["AccessKeyId", "SecretAccessKey", "SessionToken"] {
        if let Some(value) = text
            .split(&format!("<{tag}>"))
            .nth(1)
            .and_then(|rest| rest.split(&format!("</{tag}>")).next())
        {
            shared.state().issued.push(value.to_owned());
        }
    }
    let bytes = Bytes::from(text.clone());
    if let Some(key) = text
        .split("<AccessKeyId>")
        .nth(1)
        .and_then(|rest| rest.split("</AccessKeyId>").next())
    {
        let account = role_arn.split(':').nth(4).unwrap_or_default().to_owned();
        shared
            .state()
            .keys
            .insert(key.to_owned(), (account, role_arn.clone()));
    }
    let mut parts = parts;
    parts.headers.remove("content-length");
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

fn lookup_events(shared: &Shared, account: &str, body: &[u8]) -> Response {
    let request: Value = serde_json::from_slice(body).unwrap_or_default();
    let start = request["StartTime"].as_f64().unwrap_or(f64::MIN);
    let end = request["EndTime"].as_f64().unwrap_or(f64::MAX);
    let max = request["MaxResults"].as_u64().unwrap_or(50).clamp(1, 50) as usize;
    let offset: usize = request["NextToken"]
        .as_str()
        .and_then(|token| token.strip_prefix("page-"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let attribute = request["LookupAttributes"]
        .as_array()
        .and_then(|attributes| attributes.first())
        .map(|a| {
            (
                a["AttributeKey"].as_str().unwrap_or_default().to_owned(),
                a["AttributeValue"].as_str().unwrap_or_default().to_owned(),
            )
        });
    let mut events: Vec<Value> = shared
        .state()
        .events
        .get(account)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|event| {
            let time = event["EventTime"].as_f64().unwrap_or(0.0);
            time >= start && time <= end
        })
        .filter(|event| match &attribute {
            None => true,
            Some((key, value)) if key == "ResourceName" || key == "ResourceType" => {
                let field = if key == "ResourceName" {
                    "ResourceName"
                } else {
                    "ResourceType"
                };
                event["Resources"]
                    .as_array()
                    .is_some_and(|resources| resources.iter().any(|r| r[field] == *value))
            }
            Some((key, value)) => event[key.as_str()] == *value,
        })
        .collect();
    events.sort_by(|a, b| {
        b["EventTime"]
            .as_f64()
            .partial_cmp(&a["EventTime"].as_f64())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let page: Vec<Value> = events.iter().skip(offset).take(max).cloned().collect();
    let mut answer = json!({ "Events": page });
    if offset + max < events.len() {
        answer["NextToken"] = Value::String(format!("page-{}", offset + max));
    }
    (
        StatusCode::OK,
        [("content-type", "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}

async fn forward(
    shared: &Shared,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = shared
        .http
        .request(method, format!("{}{path}", shared.moto))
        .body(body);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut response_headers = HeaderMap::new();
            for (name, value) in answer.headers() {
                if name != "content-length" && name != "transfer-encoding" && name != "connection" {
                    response_headers.append(name, value.clone());
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, response_headers, bytes).into_response()
        }
        Err(error) => (
            StatusCode::BAD_GATEWAY,
            format!("the front could not reach moto: {error}"),
        )
            .into_response(),
    }
}

/// What [`AwsFront::seed`] put into an account.
#[derive(Debug, Clone)]
pub struct Seeded {
    /// The log group holding [`SEEDED_LOG_EVENTS`] events mentioning `ERROR`.
    pub log_group: String,
    /// The alarm in state ALARM.
    pub alarm: String,
    /// The instance ids.
    pub instances: Vec<String>,
    /// The EKS cluster names.
    pub clusters: Vec<String>,
}

/// How many log events [`AwsFront::seed`] writes.
pub const SEEDED_LOG_EVENTS: usize = 3;
/// How many instances [`AwsFront::seed`] starts.
pub const SEEDED_INSTANCES: usize = 6;
/// How many CloudTrail events [`AwsFront::seed`] adds.
pub const SEEDED_CLOUDTRAIL_EVENTS: usize = 3;

impl AwsFront {
    /// Fills the account of `role_arn` (assumed through `connector` with
    /// `external_id`, so the role must be trusted first) with an alarm in ALARM, a
    /// metric, a log group with events, instances, EKS clusters and CloudTrail events.
    pub async fn seed(
        &self,
        connector: &AwsConnector,
        role_arn: &str,
        external_id: &patchbay_core::SecretString,
    ) -> Seeded {
        let platform = connector.platform().await;
        let session = platform
            .assume_role(role_arn, "us-east-1", Some(external_id), 900)
            .await
            .expect("the seeding session");
        let clients = platform.clients(&session, "us-east-1");
        let account = role_arn.split(':').nth(4).unwrap_or_default().to_owned();
        let now = chrono::Utc::now();

        let alarm = "checkout-5xx".to_owned();
        clients
            .cloudwatch
            .put_metric_alarm()
            .alarm_name(&alarm)
            .namespace("AWS/ApplicationELB")
            .metric_name("HTTPCode_Target_5XX_Count")
            .statistic(aws_sdk_cloudwatch::types::Statistic::Sum)
            .period(60)
            .evaluation_periods(1)
            .threshold(10.0)
            .comparison_operator(
                aws_sdk_cloudwatch::types::ComparisonOperator::GreaterThanThreshold,
            )
            .send()
            .await
            .expect("put_metric_alarm");
        clients
            .cloudwatch
            .set_alarm_state()
            .alarm_name(&alarm)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason(
                "Threshold Crossed: 1 datapoint (42.0) was greater than the threshold (10.0)",
            )
            .send()
            .await
            .expect("set_alarm_state");
        clients
            .cloudwatch
            .put_metric_data()
            .namespace("Patchbay/Test")
            .metric_data(
                aws_sdk_cloudwatch::types::MetricDatum::builder()
                    .metric_name("Latency")
                    .timestamp(aws_smithy_types::DateTime::from_secs(now.timestamp() - 120))
                    .value(42.0)
                    .build(),
            )
            .send()
            .await
            .expect("put_metric_data");

        let log_group = "/patchbay/checkout".to_owned();
        clients
            .logs
            .create_log_group()
            .log_group_name(&log_group)
            .send()
            .await
            .expect("create_log_group");
        clients
            .logs
            .create_log_stream()
            .log_group_name(&log_group)
            .log_stream_name("web-1")
            .send()
            .await
            .expect("create_log_stream");
        let mut put = clients
            .logs
            .put_log_events()
            .log_group_name(&log_group)
            .log_stream_name("web-1");
        for index in 0..SEEDED_LOG_EVENTS {
            put = put.log_events(
                aws_sdk_cloudwatchlogs::types::InputLogEvent::builder()
                    .timestamp(now.timestamp_millis() - 60_000 + index as i64)
                    .message(format!("ERROR payment {index} failed"))
                    .build()
                    .expect("a log event"),
            );
        }
        put.send().await.expect("put_log_events");

        let images = clients
            .ec2
            .describe_images()
            .owners("amazon")
            .send()
            .await
            .expect("describe_images");
        let image = images
            .images()
            .first()
            .and_then(|image| image.image_id())
            .expect("moto has an Amazon image")
            .to_owned();
        let run = clients
            .ec2
            .run_instances()
            .image_id(image)
            .instance_type(aws_sdk_ec2::types::InstanceType::T3Micro)
            .min_count(SEEDED_INSTANCES as i32)
            .max_count(SEEDED_INSTANCES as i32)
            .send()
            .await
            .expect("run_instances");
        let instances = run
            .instances()
            .iter()
            .filter_map(|instance| instance.instance_id().map(str::to_owned))
            .collect();

        let mut clusters = Vec::new();
        for name in ["prod-eu", "staging"] {
            clients
                .eks
                .create_cluster()
                .name(name)
                .role_arn(format!("arn:aws:iam::{account}:role/eks"))
                .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().build())
                .send()
                .await
                .expect("create_cluster");
            clusters.push(name.to_owned());
        }

        for (index, name) in [
            "TerminateInstances",
            "AuthorizeSecurityGroupIngress",
            "UpdateService",
        ]
        .iter()
        .enumerate()
        {
            let time = now.timestamp() - 600 * (index as i64 + 1);
            self.add_cloudtrail_event(
                &account,
                json!({
                    "EventId": format!("event-{index}"),
                    "EventName": name,
                    "ReadOnly": "false",
                    "EventTime": time as f64,
                    "EventSource": "ec2.amazonaws.com",
                    "Username": "deploy-bot",
                    "Resources": [{"ResourceType": "AWS::EC2::Instance", "ResourceName": format!("i-{index}")}],
                    "CloudTrailEvent": json!({"sourceIPAddress": "203.0.113.7", "eventName": name}).to_string(),
                }),
            );
        }
        Seeded {
            log_group,
            alarm,
            instances,
            clusters,
        }
    }
}

/// A 12-digit account id no other test of this process or an earlier run used, so
/// a test has moto's state for that account to itself.
pub fn fresh_account() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64);
    let mixed = (nanos / 1000).wrapping_mul(31)
        + NEXT.fetch_add(1, Ordering::SeqCst) * 7_919
        + u64::from(std::process::id());
    format!("{:012}", 200_000_000_000 + mixed % 700_000_000_000)
}

/// A role ARN named `name` in a fresh account.
pub fn fresh_role(name: &str) -> String {
    format!("arn:aws:iam::{}:role/{name}", fresh_account())
}
