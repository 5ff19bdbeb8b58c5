//! A fake Datadog API following the documented v1 (and the used v2) endpoints.
//!
//! It checks keys the way Datadog does (`DD-API-KEY` everywhere,
//! `DD-APPLICATION-KEY` everywhere but `/api/v1/validate`, 403
//! `{"errors":["Forbidden"]}` otherwise), rejects the deprecated key query
//! parameters, checks required parameters and bodies (400 with Datadog's
//! `{"errors":[...]}`), and answers with the response shapes of the v1 OpenAPI
//! examples. Tests can inject one-shot faults per path and revoke permissions.
//!
//! Fixed data: 120 logs over the last 10 minutes (services `checkout`,
//! `payments`, `web`; the 40 `checkout` errors carry a Java stack trace of about
//! 9 KB, so `status:error` with a `limit` of 40 or more answers with more than
//! 256 KiB), 3 monitors (ids 1001-1003), 4 events over the last hour, 3 hosts, 30
//! incidents and one organisation. Logs page with `page[cursor]`/`meta.page.after`
//! and incidents with `page[offset]`, so both have later pages. `query_metrics`
//! answers one series per group: `by {host}` gives 3, `by {container_id}` gives 150
//! (to exercise series caps), no `by` gives 1.
//!
//! Compiled only with the crate's `fake` feature.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use http::{HeaderValue, Method, StatusCode};
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{
    first_value, redacted_pairs, BoundPort, FakeServer, FakeState, FaultQueue, RequestLog,
};
use serde_json::{json, Value};

/// The value recorded in place of key material found in a query string.
/// The most logs one search may ask for.
const MAX_LOGS_LIMIT: u64 = 1000;
/// The most monitors or hosts one page may ask for.
const MAX_PAGE_SIZE: u64 = 1000;
/// The most incidents one page may ask for.
const MAX_INCIDENTS_PAGE: u64 = 100;

/// A request the fake received, without any key value.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/api/v1/monitor`.
    pub path: String,
    /// Query pairs in order; values of `api_key`/`application_key` are `[redacted]`.
    pub query: Vec<(String, String)>,
    /// Lower-case header names, sorted; values are never kept.
    pub header_names: Vec<String>,
    /// The JSON body, when there was one.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        first_value(&self.query, name)
    }

    /// Whether a header was sent (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        self.header_names.contains(&name)
    }
}

/// A one-shot failure to inject: the faults every HTTP provider can answer with.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// A running fake Datadog API; stops when dropped.
pub struct FakeDatadog {
    shared: Arc<Shared>,
    server: FakeServer,
}

struct Shared {
    api_key: String,
    app_key: String,
    data: Dataset,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
    mutable: FakeState<Mutable>,
}

#[derive(Default)]
struct Mutable {
    revoked: BTreeSet<String>,
}

impl FakeDatadog {
    /// Starts the fake on `127.0.0.1:0` accepting exactly these keys.
    pub async fn start(api_key: &str, app_key: &str) -> FakeDatadog {
        let port = BoundPort::loopback("Datadog").await;
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            app_key: app_key.to_owned(),
            data: Dataset::new(Utc::now()),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
            mutable: FakeState::new(Mutable::default()),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = port.serve(router);
        FakeDatadog { shared, server }
    }

    /// Makes the endpoints needing `permission` (`monitors_read`, `events_read`,
    /// `hosts_read`, `timeseries_query`, `logs_read_data`, `org_management`,
    /// `incident_read`) answer 403 to a valid application key.
    pub fn revoke_app_key_permission(&self, permission: &str) {
        self.shared
            .mutable
            .lock()
            .revoked
            .insert(permission.to_owned());
    }

    /// A custom-template webhook delivery for monitor `alert_id`; see [`sample_webhook`].
    pub fn sample_webhook(&self, alert_id: u64, transition: &str) -> Value {
        sample_webhook(alert_id, transition)
    }
}

patchbay_testkit::provider_fake!(FakeDatadog, hosts: ["api.datadoghq.com"], request: RecordedRequest, keyed by: path, log: shared.requests, fault: Fault, queued in: shared.faults);

/// A realistic delivery (about 2 KB) of the recommended custom payload template
/// for monitor `alert_id` at `transition` (`Triggered`, `Recovered`, `Warn`, ...).
///
/// Deterministic: the same arguments give the same body, so redeliveries share
/// `id`; firing and recovery share `alert_cycle_key`.
pub fn sample_webhook(alert_id: u64, transition: &str) -> Value {
    let recovered = transition.eq_ignore_ascii_case("recovered");
    let (alert_type, title_state) = if recovered {
        ("success", "Recovered")
    } else if transition.to_ascii_lowercase().contains("warn") {
        ("warning", "Warn")
    } else if transition.to_ascii_lowercase().contains("no data") {
        ("warning", "No Data")
    } else {
        ("error", "Triggered")
    };
    let cycle_key = alert_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1;
    let transition_code = transition.bytes().fold(0u64, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(u64::from(byte))
    });
    let event_id =
        (cycle_key ^ transition_code) % 9_000_000_000_000_000_000 + 1_000_000_000_000_000_000;
    let fired_at_ms: i64 =
        1_714_564_800_000 + i64::try_from(alert_id % 100_000).unwrap_or(0) * 60_000;
    let date_ms = if recovered {
        fired_at_ms + 600_000
    } else {
        fired_at_ms
    };
    let host = format!("web-{}", alert_id % 7 + 1);
    let scope = format!("host:{host},service:checkout");
    let title = format!("[{title_state} on {{{scope}}}] High error rate on checkout");
    let status_line = if recovered {
        format!("sum(last_5m):sum:trace.http.request.errors{{service:checkout}} by {{host}} over {scope} was <= 50.0 on average during the last 5m.")
    } else {
        format!("sum(last_5m):sum:trace.http.request.errors{{service:checkout}} by {{host}} over {scope} was > 50.0 on average during the last 5m.")
    };
    let body = format!(
        "%%%\n@webhook-patchbay\n\nThe checkout service on {host} is returning errors above the threshold.\n\n\
         **Runbook:** https://runbooks.example.com/checkout/high-error-rate\n\n\
         1. Check the latest deploy of checkout (`kubectl rollout history deploy/checkout -n shop`).\n\
         2. Look for upstream timeouts to payments in the logs: `service:checkout status:error`.\n\
         3. If the database pool is exhausted, scale the pool or shed load.\n\n\
         {status_line}\n\n\
         - - -\n\n\
         [[Monitor Status](https://app.datadoghq.com/monitors/{alert_id}?from_ts={from}&to_ts={to}&event_id={event_id})] \
         \u{b7} [[Edit Monitor](https://app.datadoghq.com/monitors/{alert_id}/edit)] \
         \u{b7} [[View {host}](https://app.datadoghq.com/infrastructure?filter={host})] \
         \u{b7} [[Show Processes](https://app.datadoghq.com/process?sort=cpu%2CDESC&tags=host%3A{host})]\n%%%",
        from = date_ms - 900_000,
        to = date_ms + 60_000,
    );
    json!({
        "id": event_id.to_string(),
        "alert_id": alert_id.to_string(),
        "alert_cycle_key": cycle_key.to_string(),
        "aggreg_key": format!("{:032x}", u128::from(cycle_key) << 32 | u128::from(alert_id)),
        "alert_transition": transition,
        "alert_type": alert_type,
        "alert_priority": "P2",
        "alert_scope": scope,
        "alert_title": title,
        "alert_metric": "trace.http.request.errors",
        "alert_query": "sum(last_5m):sum:trace.http.request.errors{service:checkout} by {host}.as_count() > 50",
        "alert_status": status_line,
        "title": title,
        "body": body,
        "date": date_ms.to_string(),
        "last_updated": date_ms.to_string(),
        "event_type": "query_alert_monitor",
        "link": format!("https://app.datadoghq.com/event/event?id={event_id}"),
        "hostname": host,
        "tags": "env:prod,service:checkout,team:payments,monitor",
        "org": {"id": "415600", "name": "Patchbay Test Org"},
    })
}

/// A Java stack trace of about 9 KB for the checkout error log number `index`:
/// 120 frames of the timed-out payments call.
fn stack_trace(index: i64) -> String {
    let mut trace = format!(
        "java.util.concurrent.TimeoutException: payments did not answer within 3000ms (request {index})"
    );
    for frame in 0..120 {
        trace.push_str(&format!(
            "\n\tat com.example.checkout.payments.PaymentsClient.charge${frame}(PaymentsClient.java:{})",
            100 + frame
        ));
    }
    trace
}

/// The fixed objects the fake serves.
struct Dataset {
    logs: Vec<Value>,
    monitors: Vec<Value>,
    events: Vec<Value>,
    hosts: Vec<Value>,
    incidents: Vec<Value>,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Dataset {
    fn new(started: DateTime<Utc>) -> Self {
        let services = ["checkout", "payments", "web"];
        let statuses = ["error", "warn", "info"];
        let messages = [
            "POST /api/cart/checkout 502 upstream payments timed out after 3000ms",
            "retrying charge for order after gateway timeout",
            "GET /healthz 200 2ms",
        ];
        let logs = (0..120_i64)
            .map(|index| {
                let slot = usize::try_from(index).unwrap_or_default() % 3;
                let host = format!("web-{}", index % 3 + 1);
                let status_code = [502, 504, 200][slot];
                let mut details = json!({"http": {"status_code": status_code}, "duration": 3_000_000_000_i64 - index});
                if slot == 0 {
                    details["error"] = json!({
                        "kind": "java.util.concurrent.TimeoutException",
                        "message": "payments did not answer within 3000ms",
                        "stack": stack_trace(index),
                    });
                }
                json!({
                    "id": format!("AQAAAZB{index:09}"),
                    "type": "log",
                    "attributes": {
                        "timestamp": rfc3339(started - TimeDelta::seconds(index * 5)),
                        "host": host,
                        "service": services[slot],
                        "status": statuses[slot],
                        "message": messages[slot],
                        "tags": [format!("service:{}", services[slot]), "env:prod".to_owned(), format!("host:{host}")],
                        "attributes": details,
                    },
                })
            })
            .collect();
        let created = "2024-03-01T09:00:00.000000+00:00";
        let monitors = vec![
            json!({
                "id": 1001, "name": "High error rate on checkout", "type": "query alert",
                "query": "sum(last_5m):sum:trace.http.request.errors{service:checkout} by {host}.as_count() > 50",
                "message": "Checkout errors are above threshold. @webhook-patchbay",
                "tags": ["service:checkout", "team:payments", "env:prod"],
                "options": {"notify_no_data": false, "thresholds": {"critical": 50.0, "warning": 25.0}},
                "overall_state": "Alert", "priority": 2, "multi": true,
                "created": created, "modified": created,
                "creator": {"email": "oncall@example.com", "handle": "oncall@example.com", "name": "On-call"},
            }),
            json!({
                "id": 1002, "name": "Payments p99 latency", "type": "metric alert",
                "query": "avg(last_10m):p99:trace.http.request.duration{service:payments} > 2",
                "message": "Payments latency is high. @webhook-patchbay",
                "tags": ["service:payments", "team:payments", "env:prod"],
                "options": {"notify_no_data": true, "no_data_timeframe": 20, "thresholds": {"critical": 2.0}},
                "overall_state": "Warn", "priority": 3, "multi": false,
                "created": created, "modified": created,
                "creator": {"email": "oncall@example.com", "handle": "oncall@example.com", "name": "On-call"},
            }),
            json!({
                "id": 1003, "name": "Host is down", "type": "service check",
                "query": "\"datadog.agent.up\".over(\"*\").by(\"host\").last(2).count_by_status()",
                "message": "A host stopped reporting. @webhook-patchbay",
                "tags": ["team:platform"],
                "options": {"notify_no_data": true, "thresholds": {"critical": 1, "ok": 1, "warning": 1}},
                "overall_state": "OK", "priority": null, "multi": true,
                "created": created, "modified": created,
                "creator": {"email": "platform@example.com", "handle": "platform@example.com", "name": "Platform"},
            }),
        ];
        let event = |id: i64,
                     minutes_ago: i64,
                     title: &str,
                     source: &str,
                     alert_type: &str,
                     tags: &[&str]| {
            json!({
                "id": id, "id_str": id.to_string(),
                "date_happened": (started - TimeDelta::minutes(minutes_ago)).timestamp(),
                "title": title, "text": format!("{title} (fake event)"),
                "alert_type": alert_type, "priority": "normal", "source_type_name": source,
                "host": "web-1", "tags": tags, "url": format!("/event/event?id={id}"),
                "device_name": null, "payload": "{}",
            })
        };
        let events = vec![
            event(
                7001,
                5,
                "[Triggered] High error rate on checkout",
                "monitor",
                "error",
                &["service:checkout", "env:prod"],
            ),
            event(
                7002,
                12,
                "Deployed checkout v2024.05.01-3",
                "github",
                "info",
                &["service:checkout", "env:prod"],
            ),
            event(
                7003,
                25,
                "ConfigMap checkout-config updated",
                "kubernetes",
                "info",
                &["service:checkout", "env:prod"],
            ),
            event(
                7004,
                50,
                "[Recovered] Payments p99 latency",
                "monitor",
                "success",
                &["service:payments", "env:prod"],
            ),
        ];
        let hosts = (1..=3)
            .map(|index| {
                json!({
                    "id": 9000 + index, "name": format!("web-{index}"), "host_name": format!("web-{index}"),
                    "aliases": [format!("ip-10-0-0-{index}")], "apps": ["agent", "docker", "nginx"],
                    "aws_name": format!("web-{index}"), "is_muted": index == 3, "mute_timeout": null,
                    "last_reported_time": started.timestamp() - 30, "sources": ["aws", "agent"], "up": true,
                    "tags_by_source": {"Datadog": ["env:prod", "role:web"]},
                    "meta": {"agent_version": "7.52.0", "platform": "linux"},
                    "metrics": {"cpu": 12.5 * f64::from(index), "iowait": 0.5, "load": 0.8},
                })
            })
            .collect();
        let states = ["active", "stable", "resolved"];
        let incidents = (1..=30_u32)
            .map(|public_id| {
                json!({
                    "type": "incidents",
                    "id": format!("00000000-0000-4000-8000-{public_id:012}"),
                    "attributes": {
                        "public_id": public_id,
                        "title": format!("Checkout degradation #{public_id}"),
                        "severity": format!("SEV-{}", public_id % 4 + 1),
                        "state": states[usize::try_from(public_id).unwrap_or_default() % 3],
                        "customer_impacted": public_id % 2 == 0,
                        "created": rfc3339(started - TimeDelta::hours(i64::from(public_id))),
                        "modified": rfc3339(started - TimeDelta::hours(i64::from(public_id)) + TimeDelta::minutes(30)),
                        "fields": {"services": {"type": "autocomplete", "value": ["checkout"]}},
                    },
                    "relationships": {},
                })
            })
            .collect();
        Self {
            logs,
            monitors,
            events,
            hosts,
            incidents,
        }
    }
}

/// The endpoints the fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Validate,
    Monitors,
    Monitor,
    Events,
    Hosts,
    Query,
    Org,
    LogsSearch,
    Incidents,
}

impl Route {
    fn resolve(method: &Method, path: &str) -> Option<(Route, bool)> {
        let route = match path {
            "/api/v1/validate" => Route::Validate,
            "/api/v1/monitor" => Route::Monitors,
            "/api/v1/events" => Route::Events,
            "/api/v1/hosts" => Route::Hosts,
            "/api/v1/query" => Route::Query,
            "/api/v1/org" => Route::Org,
            "/api/v2/logs/events/search" => Route::LogsSearch,
            "/api/v2/incidents" => Route::Incidents,
            other if other.starts_with("/api/v1/monitor/") && other.matches('/').count() == 4 => {
                Route::Monitor
            }
            _ => return None,
        };
        let expected = if route == Route::LogsSearch {
            Method::POST
        } else {
            Method::GET
        };
        Some((route, *method == expected))
    }

    fn permission(self) -> Option<&'static str> {
        match self {
            Route::Validate => None,
            Route::Monitors | Route::Monitor => Some("monitors_read"),
            Route::Events => Some("events_read"),
            Route::Hosts => Some("hosts_read"),
            Route::Query => Some("timeseries_query"),
            Route::Org => Some("org_management"),
            Route::LogsSearch => Some("logs_read_data"),
            Route::Incidents => Some("incident_read"),
        }
    }
}

fn errors(status: StatusCode, messages: &[&str]) -> Response {
    (status, axum::Json(json!({ "errors": messages }))).into_response()
}

/// A request the fake refuses, answered in Datadog's `{"errors":[...]}` shape.
struct Rejection {
    status: StatusCode,
    message: String,
}

impl Rejection {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        errors(self.status, &[self.message.as_str()])
    }
}

fn bad_request(message: &str) -> Rejection {
    Rejection::new(StatusCode::BAD_REQUEST, message)
}

/// Query parameters of one request.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        first_value(&self.0, name)
    }

    fn integer(&self, name: &str) -> Result<Option<i64>, Rejection> {
        match self.get(name) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|_| {
                bad_request(&format!(
                    "Invalid value for parameter '{name}': expected an integer"
                ))
            }),
        }
    }

    fn required_integer(&self, name: &str) -> Result<i64, Rejection> {
        self.integer(name)?
            .ok_or_else(|| bad_request(&format!("The parameter '{name}' is required")))
    }

    fn boolean(&self, name: &str) -> Result<bool, Rejection> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(bad_request(&format!(
                "Invalid value for parameter '{name}': expected true or false"
            ))),
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();
    let mut header_names: Vec<String> = parts
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();

    let fault = {
        shared.requests.record(RecordedRequest {
            method: parts.method.to_string(),
            path: path.clone(),
            query: redacted_pairs(&query, is_key_param),
            header_names,
            body: json_body.clone(),
        });
        shared.faults.take(&path)
    };
    if let Some(fault) = fault {
        return fault_response(fault);
    }
    if query.iter().any(|(key, _)| is_key_param(key)) {
        return bad_request(
            "API and application keys in query parameters are not accepted; send the DD-API-KEY and DD-APPLICATION-KEY headers",
        )
        .into_response();
    }
    let Some((route, method_allowed)) = Route::resolve(&parts.method, &path) else {
        return errors(StatusCode::NOT_FOUND, &["Not found"]);
    };
    if !method_allowed {
        return errors(StatusCode::METHOD_NOT_ALLOWED, &["Method Not Allowed"]);
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    if header("dd-api-key") != Some(shared.api_key.as_str()) {
        return errors(StatusCode::FORBIDDEN, &["Forbidden"]);
    }
    if route != Route::Validate && header("dd-application-key") != Some(shared.app_key.as_str()) {
        return errors(StatusCode::FORBIDDEN, &["Forbidden"]);
    }
    if let Some(permission) = route.permission() {
        if shared.mutable.lock().revoked.contains(permission) {
            return errors(StatusCode::FORBIDDEN, &["Forbidden"]);
        }
    }
    let params = Params(query);
    let now = Utc::now();
    let result = match route {
        Route::Validate => Ok(json!({ "valid": true })),
        Route::Monitors => list_monitors(&shared.data, &params),
        Route::Monitor => get_monitor(&shared.data, &path, &params),
        Route::Events => list_events(&shared.data, &params),
        Route::Hosts => list_hosts(&shared.data, &params),
        Route::Query => query_metrics(&params),
        Route::Org => Ok(json!({
            "orgs": [{
                "name": "Patchbay Test Org",
                "public_id": "abc123def456",
                "created": "2019-09-26T17:28:28Z",
                "description": "The fake Datadog organisation",
            }]
        })),
        Route::LogsSearch => search_logs(&shared.data, json_body.as_ref(), body.is_empty(), now),
        Route::Incidents => list_incidents(&shared.data, &params),
    };
    match result {
        Ok(body) => (StatusCode::OK, axum::Json(body)).into_response(),
        Err(rejection) => rejection.into_response(),
    }
}

fn is_key_param(name: &str) -> bool {
    name == "api_key" || name == "application_key"
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = errors(StatusCode::TOO_MANY_REQUESTS, &["Rate limit exceeded"]);
            let headers = response.headers_mut();
            let seconds = HeaderValue::from(retry_after_secs);
            headers.insert(http::header::RETRY_AFTER, seconds.clone());
            headers.insert("x-ratelimit-reset", seconds);
            headers.insert("x-ratelimit-remaining", HeaderValue::from(0));
            response
        }
        Fault::ServerError => errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            &["Internal Server Error"],
        ),
        Fault::Unavailable => errors(StatusCode::SERVICE_UNAVAILABLE, &["Service Unavailable"]),
    }
}

fn page_of<T: Clone>(items: &[T], offset: u64, size: u64) -> Vec<T> {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(items.len());
    let end = start
        .saturating_add(usize::try_from(size).unwrap_or(usize::MAX))
        .min(items.len());
    items[start..end].to_vec()
}

fn non_negative(name: &str, value: i64) -> Result<u64, Rejection> {
    u64::try_from(value).map_err(|_| {
        bad_request(&format!(
            "Invalid value for parameter '{name}': must be >= 0"
        ))
    })
}

fn list_monitors(data: &Dataset, params: &Params) -> Result<Value, Rejection> {
    let page = params
        .integer("page")?
        .map(|page| non_negative("page", page))
        .transpose()?;
    let page_size = params
        .integer("page_size")?
        .map(|size| non_negative("page_size", size))
        .transpose()?;
    if page_size.is_some_and(|size| size == 0 || size > MAX_PAGE_SIZE) {
        return Err(bad_request("page_size must be between 1 and 1000"));
    }
    if let Some(states) = params.get("group_states") {
        let allowed = ["all", "alert", "warn", "no data"];
        if states
            .split(',')
            .any(|state| !allowed.contains(&state.trim()))
        {
            return Err(bad_request(
                "group_states must be a comma-separated list of all, alert, warn, no data",
            ));
        }
    }
    params.boolean("with_downtimes")?;
    let name = params.get("name").map(str::to_ascii_lowercase);
    let wanted = |key: &str| -> Vec<String> {
        params
            .get(key)
            .map(|tags| {
                tags.split(',')
                    .map(|tag| tag.trim().to_owned())
                    .filter(|tag| !tag.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    };
    let monitor_tags = wanted("monitor_tags");
    let scope_tags = wanted("tags");
    let matching: Vec<Value> = data
        .monitors
        .iter()
        .filter(|monitor| {
            let tags: Vec<&str> = monitor["tags"]
                .as_array()
                .map(|tags| tags.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let query = monitor["query"].as_str().unwrap_or_default();
            name.as_ref().is_none_or(|name| {
                monitor["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase()
                    .contains(name)
            }) && monitor_tags.iter().all(|tag| tags.contains(&tag.as_str()))
                && scope_tags.iter().all(|tag| query.contains(tag.as_str()))
        })
        .cloned()
        .collect();
    let listed = match page {
        Some(page) => {
            let size = page_size.unwrap_or(100);
            page_of(&matching, page.saturating_mul(size), size)
        }
        None => matching,
    };
    Ok(Value::Array(listed))
}

fn get_monitor(data: &Dataset, path: &str, params: &Params) -> Result<Value, Rejection> {
    let id_text = path.rsplit('/').next().unwrap_or_default();
    let id: i64 = id_text.parse().map_err(|_| {
        bad_request(&format!(
            "Invalid monitor id '{id_text}': expected an integer"
        ))
    })?;
    params.boolean("with_downtimes")?;
    data.monitors
        .iter()
        .find(|monitor| monitor["id"].as_i64() == Some(id))
        .cloned()
        .ok_or_else(|| Rejection::new(StatusCode::NOT_FOUND, "Monitor not found"))
}

fn list_events(data: &Dataset, params: &Params) -> Result<Value, Rejection> {
    let start = params.required_integer("start")?;
    let end = params.required_integer("end")?;
    if start > end {
        return Err(bad_request("The parameter 'start' must be before 'end'"));
    }
    if let Some(priority) = params.get("priority") {
        if priority != "normal" && priority != "low" {
            return Err(bad_request(
                "The parameter 'priority' must be 'normal' or 'low'",
            ));
        }
    }
    params.boolean("unaggregated")?;
    params.boolean("exclude_aggregate")?;
    let page = params
        .integer("page")?
        .map(|page| non_negative("page", page))
        .transpose()?
        .unwrap_or(0);
    let sources: Vec<&str> = params
        .get("sources")
        .map(|sources| sources.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let tags: Vec<&str> = params
        .get("tags")
        .map(|tags| tags.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let matching: Vec<Value> = data
        .events
        .iter()
        .filter(|event| {
            let happened = event["date_happened"].as_i64().unwrap_or_default();
            let event_tags: Vec<&str> = event["tags"]
                .as_array()
                .map(|tags| tags.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            (start..=end).contains(&happened)
                && (sources.is_empty()
                    || sources.contains(&event["source_type_name"].as_str().unwrap_or_default()))
                && tags.iter().all(|tag| event_tags.contains(tag))
        })
        .cloned()
        .collect();
    Ok(json!({ "events": page_of(&matching, page * 1000, 1000), "status": "ok" }))
}

fn list_hosts(data: &Dataset, params: &Params) -> Result<Value, Rejection> {
    let count = params
        .integer("count")?
        .map(|count| non_negative("count", count))
        .transpose()?
        .unwrap_or(100);
    if count > MAX_PAGE_SIZE {
        return Err(bad_request("count must be at most 1000"));
    }
    let start = params
        .integer("start")?
        .map(|start| non_negative("start", start))
        .transpose()?
        .unwrap_or(0);
    let since = params.integer("from")?;
    params.boolean("include_muted_hosts_data")?;
    params.boolean("include_hosts_metadata")?;
    let filter = params.get("filter").map(str::to_ascii_lowercase);
    let matching: Vec<Value> = data
        .hosts
        .iter()
        .filter(|host| {
            let reported = host["last_reported_time"].as_i64().unwrap_or_default();
            let text = host.to_string().to_ascii_lowercase();
            since.is_none_or(|since| reported >= since)
                && filter
                    .as_ref()
                    .is_none_or(|filter| text.contains(filter.as_str()))
        })
        .cloned()
        .collect();
    let listed = page_of(&matching, start, count);
    Ok(json!({
        "host_list": listed,
        "total_matching": matching.len(),
        "total_returned": listed.len(),
    }))
}

fn query_metrics(params: &Params) -> Result<Value, Rejection> {
    let from = params.required_integer("from")?;
    let to = params.required_integer("to")?;
    let query = params
        .get("query")
        .filter(|query| !query.trim().is_empty())
        .ok_or_else(|| bad_request("The parameter 'query' is required"))?;
    if from > to {
        return Err(bad_request("The parameter 'from' must be before 'to'"));
    }
    let Some(open) = query.find('{') else {
        return Err(bad_request(&format!(
            "Error parsing query: missing scope in '{query}', e.g. avg:system.load.1{{*}}"
        )));
    };
    let metric = query[..open]
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    let aggregation = query.split(':').next().unwrap_or("avg").to_owned();
    let group = query
        .split(" by {")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .map(str::trim);
    let groups: Vec<String> = match group {
        Some("host") => (1..=3).map(|index| format!("host:web-{index}")).collect(),
        Some("container_id") => (0..150)
            .map(|index| format!("container_id:c{index:04}"))
            .collect(),
        Some(other) => vec![format!("{other}:fake")],
        None => vec!["*".to_owned()],
    };
    let step_ms: i64 = 60_000;
    let span_ms = (to - from).saturating_mul(1000);
    let points = usize::try_from((span_ms / step_ms).clamp(1, 60)).unwrap_or(1);
    let series: Vec<Value> = groups
        .iter()
        .enumerate()
        .map(|(index, scope)| {
            let pointlist: Vec<Value> = (0..points)
                .map(|point| {
                    let offset = i64::try_from(point).unwrap_or_default() * step_ms;
                    let value = 1.0 + (index % 10) as f64 * 0.1 + (point % 5) as f64 * 0.05;
                    json!([(from * 1000 + offset) as f64, value])
                })
                .collect();
            json!({
                "aggr": aggregation, "metric": metric, "display_name": metric,
                "expression": format!("{aggregation}:{metric}{{{scope}}}"),
                "scope": scope, "tag_set": if scope == "*" { json!([]) } else { json!([scope]) },
                "start": from * 1000, "end": to * 1000, "interval": 60, "length": points,
                "query_index": 0, "unit": null, "pointlist": pointlist,
            })
        })
        .collect();
    Ok(json!({
        "status": "ok", "res_type": "time_series", "query": query,
        "from_date": from * 1000, "to_date": to * 1000,
        "group_by": group.map(|group| vec![group]).unwrap_or_default(),
        "series": series, "message": "",
    }))
}

fn search_logs(
    data: &Dataset,
    body: Option<&Value>,
    empty: bool,
    now: DateTime<Utc>,
) -> Result<Value, Rejection> {
    let empty_body = json!({});
    let body = match body {
        Some(body @ Value::Object(_)) => body,
        None if empty => &empty_body,
        _ => return Err(bad_request("Invalid JSON body: expected an object")),
    };
    let filter = match body.get("filter") {
        None => &empty_body,
        Some(filter @ Value::Object(_)) => filter,
        Some(_) => return Err(bad_request("filter must be an object")),
    };
    for key in ["query", "from", "to"] {
        if filter.get(key).is_some_and(|value| !value.is_string()) {
            return Err(bad_request(&format!("filter.{key} must be a string")));
        }
    }
    let limit = match body.pointer("/page/limit") {
        None => 10,
        Some(limit) => limit
            .as_u64()
            .filter(|limit| (1..=MAX_LOGS_LIMIT).contains(limit))
            .ok_or_else(|| bad_request("page.limit must be an integer between 1 and 1000"))?,
    };
    let descending = match body.get("sort").map(|sort| sort.as_str()) {
        None | Some(Some("timestamp")) => false,
        Some(Some("-timestamp")) => true,
        Some(_) => return Err(bad_request("sort must be 'timestamp' or '-timestamp'")),
    };
    let offset = match body.pointer("/page/cursor") {
        None | Some(Value::Null) => 0,
        Some(Value::String(cursor)) => {
            decode_cursor(cursor).ok_or_else(|| bad_request("Invalid page cursor"))?
        }
        Some(_) => return Err(bad_request("page.cursor must be a string")),
    };
    let query = filter.get("query").and_then(Value::as_str).unwrap_or("*");
    let mut matching: Vec<&Value> = data
        .logs
        .iter()
        .filter(|log| log_matches(log, query))
        .collect();
    matching.sort_by_key(|log| {
        log.pointer("/attributes/timestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    });
    if descending {
        matching.reverse();
    }
    let page: Vec<Value> = page_of(&matching, offset, limit)
        .into_iter()
        .cloned()
        .collect();
    let next = offset + page.len() as u64;
    let mut meta = json!({
        "elapsed": 12,
        "request_id": format!("fake-{}", now.timestamp_millis()),
        "status": "done",
    });
    let mut response = json!({ "data": page });
    if (next as usize) < matching.len() {
        let cursor = encode_cursor(next);
        meta["page"] = json!({ "after": cursor });
        response["links"] = json!({ "next": format!("https://api.datadoghq.com/api/v2/logs/events?page[cursor]={cursor}") });
    }
    response["meta"] = meta;
    Ok(response)
}

fn log_matches(log: &Value, query: &str) -> bool {
    let attributes = &log["attributes"];
    query.split_whitespace().all(|term| {
        if term == "*" {
            return true;
        }
        match term.split_once(':') {
            Some((key @ ("service" | "status" | "host"), value)) => {
                attributes[key].as_str() == Some(value)
            }
            _ => attributes["message"].as_str().is_some_and(|message| {
                message
                    .to_ascii_lowercase()
                    .contains(&term.to_ascii_lowercase())
            }),
        }
    })
}

fn encode_cursor(offset: u64) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{{\"after\":{offset}}}"))
}

fn decode_cursor(cursor: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    value.get("after")?.as_u64()
}

fn list_incidents(data: &Dataset, params: &Params) -> Result<Value, Rejection> {
    let size = params
        .integer("page[size]")?
        .map(|size| non_negative("page[size]", size))
        .transpose()?
        .unwrap_or(10);
    if size == 0 || size > MAX_INCIDENTS_PAGE {
        return Err(bad_request("page[size] must be between 1 and 100"));
    }
    let offset = params
        .integer("page[offset]")?
        .map(|offset| non_negative("page[offset]", offset))
        .transpose()?
        .unwrap_or(0);
    let page = page_of(&data.incidents, offset, size);
    Ok(json!({
        "data": page,
        "included": [],
        "meta": {"pagination": {"offset": offset, "next_offset": offset + size, "size": size}},
    }))
}
