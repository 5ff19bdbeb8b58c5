//! A fake Grafana on `127.0.0.1`, behind the `fake` feature, for this crate's
//! tests and for hosts that test with this connector.
//!
//! It follows Grafana's documented HTTP API for what the connector calls:
//! `/api/health` (unauthenticated), `/api/user`, `/api/org`,
//! `/api/access-control/user/permissions`, `/api/datasources` (and `/uid/{uid}`),
//! `/api/search`, `/api/dashboards/uid/{uid}`, `POST /api/ds/query` (data-plane
//! frames for Prometheus and Loki), `/api/prometheus/grafana/api/v1/rules` (with
//! `group_limit`/`group_next_token`), `/api/alertmanager/grafana/api/v2/alerts`
//! and `/api/annotations`. Every other call needs `Authorization: Bearer <token>`
//! and gets Grafana's 401 without it. Tests can revoke permissions, forbid or
//! hide paths, and queue 429/5xx faults. Requests are recorded without header values.
//!
//! Because the Grafana URL is tenant-supplied, the connector reaches the fake at
//! its loopback address only through `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`
//! ([`FakeGrafana::connector`] sets it to `127.0.0.1/32`).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use chrono::{DateTime, TimeDelta, Utc};
use patchbay_core::ConnectorEnv;
use patchbay_http::{HttpClient, HttpConfig};
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{first_value, FakeServer, FakeState, FaultQueue, RequestLog};
use serde_json::{json, Value};

use crate::GrafanaConnector;

/// A one-shot failure to inject for the next request to a path.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// The Grafana version the fake reports.
pub const VERSION: &str = "12.1.0";
/// The organisation the fake's token belongs to.
pub const ORG_NAME: &str = "Acme Observability";
/// The service account login the fake reports.
pub const LOGIN: &str = "sa-1-patchbay";
/// How many dashboards the fake holds (`search_dashboards` with limit 20 has three pages).
pub const DASHBOARD_COUNT: usize = 45;
/// How many rule groups the fake holds, each with [`RULES_PER_GROUP`] rules.
pub const RULE_GROUP_COUNT: usize = 5;
/// Rules in each group.
pub const RULES_PER_GROUP: usize = 3;
/// How many alerts are active in the fake's Alertmanager.
pub const ACTIVE_ALERT_COUNT: usize = 12;
/// How many annotations the fake holds, one every 5 minutes back from now.
pub const ANNOTATION_COUNT: usize = 250;
/// The Prometheus data source's uid.
pub const PROMETHEUS_UID: &str = "prom-main";
/// The Loki data source's uid.
pub const LOKI_UID: &str = "loki-main";
/// A PromQL expression for which the fake returns this many series.
pub const MANY_SERIES: usize = 150;
/// Every permission the operations use.
pub const ALL_PERMISSIONS: &[&str] = &[
    "dashboards:read",
    "datasources:query",
    "datasources:read",
    "alert.rules:read",
    "alert.instances:read",
    "annotations:read",
];

/// A request the fake received, without header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/api/search`.
    pub path: String,
    /// Query pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
    /// The JSON body of a POST, if any.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        first_value(&self.query, name)
    }

    /// Every value of a query parameter.
    pub fn query_values(&self, name: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Whether a header was sent (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header_names.contains(&name.to_ascii_lowercase())
    }
}

/// A running fake Grafana; stops when dropped.
pub struct FakeGrafana {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeGrafana,
    hosts: ["grafana.example.invalid"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

#[derive(Default)]
struct Controls {
    revoked: BTreeSet<String>,
    forbidden: BTreeSet<String>,
    hidden: BTreeSet<String>,
}

struct Shared {
    token: String,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
    controls: FakeState<Controls>,
    now: DateTime<Utc>,
}

impl FakeGrafana {
    /// Starts the fake on `127.0.0.1:0`, accepting `token` as the service account token.
    pub async fn start(token: &str) -> Self {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
            controls: FakeState::new(Controls::default()),
            now: Utc::now(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("Grafana", router).await;
        Self { shared, server }
    }

    /// The environment a host needs to reach this fake as a tenant's Grafana: the
    /// operator allowlist naming loopback.
    pub fn env_pairs() -> [(&'static str, &'static str); 1] {
        [("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", "127.0.0.1/32")]
    }

    /// A connector whose HTTP client may reach this fake: built from an
    /// environment whose `PATCHBAY_ALLOWED_PRIVATE_NETWORKS` allows `127.0.0.1/32`,
    /// with short retry backoffs.
    pub fn connector(&self) -> GrafanaConnector {
        let env = ConnectorEnv::from_pairs(Self::env_pairs());
        let config = HttpConfig {
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_retries: 2,
            ..HttpConfig::from_env(&env).expect("the allowlist parses")
        };
        GrafanaConnector::new(HttpClient::new(config).expect("the test HTTP client builds"))
    }

    /// The connect form for this fake (plain http, which the allowlist admits).
    pub fn form(&self, token: &str) -> Value {
        json!({"base_url": self.base_url(), "api_token": token, "allow_http": true})
    }

    /// Takes `permission` away from the token (it leaves the permission list and
    /// the endpoints needing it answer 403).
    pub fn revoke_permission(&self, permission: &str) {
        self.shared
            .controls
            .lock()
            .revoked
            .insert(permission.to_owned());
    }

    /// Makes every request to `path` answer 403.
    pub fn forbid(&self, path: &str) {
        self.shared
            .controls
            .lock()
            .forbidden
            .insert(path.to_owned());
    }

    /// Makes every request to `path` answer 404 (an older Grafana without it).
    pub fn hide(&self, path: &str) {
        self.shared.controls.lock().hidden.insert(path.to_owned());
    }
}

impl Shared {
    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|sent| sent.to_str().ok())
            .and_then(|sent| sent.strip_prefix("Bearer "))
            .is_some_and(|sent| sent == self.token)
    }

    fn has(&self, permission: &str) -> bool {
        !self.controls.lock().revoked.contains(permission)
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|Query(query)| query)
        .unwrap_or_default();
    let mut header_names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    let path = uri.path().to_owned();
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();
    shared.requests.record(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        header_names,
        body: json_body.clone(),
    });
    if let Some(fault) = shared.faults.take(&path) {
        return fault_response(fault);
    }
    if path == "/api/health" && method == Method::GET {
        return Json(json!({"commit": "0123abcd", "database": "ok", "version": VERSION}))
            .into_response();
    }
    if !shared.is_authorized(&headers) {
        return message(StatusCode::UNAUTHORIZED, "Invalid API key");
    }
    {
        let controls = shared.controls.lock();
        if controls.forbidden.contains(&path) {
            return message(
                StatusCode::FORBIDDEN,
                "You'll need additional permissions to perform this action.",
            );
        }
        if controls.hidden.contains(&path) {
            return message(StatusCode::NOT_FOUND, "Not found");
        }
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let needs = |permission: &str| -> Option<Response> {
        (!shared.has(permission)).then(|| {
            message(
                StatusCode::FORBIDDEN,
                &format!("You'll need additional permissions to perform this action. Permissions needed: {permission}"),
            )
        })
    };
    match (method.clone(), segments.as_slice()) {
        (Method::GET, ["api", "user"]) => Json(json!({
            "id": 2, "login": LOGIN, "name": "patchbay", "email": "sa-1-patchbay",
            "isGrafanaAdmin": false, "orgId": 1,
        }))
        .into_response(),
        (Method::GET, ["api", "org"]) => Json(json!({"id": 1, "name": ORG_NAME})).into_response(),
        (Method::GET, ["api", "access-control", "user", "permissions"]) => {
            let mut listed = serde_json::Map::new();
            for permission in ALL_PERMISSIONS
                .iter()
                .filter(|permission| shared.has(permission))
            {
                listed.insert((*permission).to_owned(), json!(["*"]));
            }
            Json(Value::Object(listed)).into_response()
        }
        (Method::GET, ["api", "datasources"]) => needs("datasources:read")
            .unwrap_or_else(|| Json(Value::Array(datasources())).into_response()),
        (Method::GET, ["api", "datasources", "uid", uid]) => needs("datasources:read")
            .unwrap_or_else(|| {
                match datasources()
                    .into_iter()
                    .find(|source| source["uid"] == *uid)
                {
                    Some(source) => Json(source).into_response(),
                    None => message(StatusCode::NOT_FOUND, "Data source not found"),
                }
            }),
        (Method::GET, ["api", "search"]) => {
            needs("dashboards:read").unwrap_or_else(|| search(&query))
        }
        (Method::GET, ["api", "dashboards", "uid", uid]) => {
            needs("dashboards:read").unwrap_or_else(|| dashboard(uid))
        }
        (Method::POST, ["api", "ds", "query"]) => {
            needs("datasources:query").unwrap_or_else(|| ds_query(json_body.as_ref(), shared.now))
        }
        (Method::GET, ["api", "prometheus", "grafana", "api", "v1", "rules"]) => {
            needs("alert.rules:read").unwrap_or_else(|| rules(&query))
        }
        (Method::GET, ["api", "alertmanager", "grafana", "api", "v2", "alerts"]) => {
            needs("alert.instances:read").unwrap_or_else(|| alerts(&query, shared.now))
        }
        (Method::GET, ["api", "annotations"]) => {
            needs("annotations:read").unwrap_or_else(|| annotations(&query, shared.now))
        }
        (Method::GET | Method::POST, _) => message(StatusCode::NOT_FOUND, "Not found"),
        _ => message(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
    }
}

fn datasources() -> Vec<Value> {
    vec![
        json!({"id": 1, "uid": PROMETHEUS_UID, "orgId": 1, "name": "Prometheus", "type": "prometheus",
               "access": "proxy", "url": "http://prometheus:9090", "isDefault": true, "readOnly": false}),
        json!({"id": 2, "uid": LOKI_UID, "orgId": 1, "name": "Loki", "type": "loki",
               "access": "proxy", "url": "http://loki:3100", "isDefault": false, "readOnly": false}),
        json!({"id": 3, "uid": "testdata", "orgId": 1, "name": "TestData", "type": "grafana-testdata-datasource",
               "access": "proxy", "url": "", "isDefault": false, "readOnly": false}),
    ]
}

fn number(query: &[(String, String)], name: &str, default: i64) -> Option<i64> {
    match first_value(query, name) {
        None => Some(default),
        Some(value) => value.parse().ok(),
    }
}

/// `/api/search`: dashboards `dash-NN`, tag `prod` on even ones, `page` from 1.
fn search(query: &[(String, String)]) -> Response {
    let (Some(limit), Some(page)) = (number(query, "limit", 1000), number(query, "page", 1)) else {
        return message(StatusCode::BAD_REQUEST, "limit and page must be numbers");
    };
    if !(1..=5000).contains(&limit) || page < 1 {
        return message(StatusCode::BAD_REQUEST, "invalid limit or page");
    }
    let text = first_value(query, "query")
        .unwrap_or_default()
        .to_lowercase();
    let tags: Vec<&str> = query
        .iter()
        .filter(|(key, _)| key == "tag")
        .map(|(_, value)| value.as_str())
        .collect();
    let matching: Vec<Value> = (1..=DASHBOARD_COUNT)
        .map(dashboard_hit)
        .filter(|hit| {
            hit["title"]
                .as_str()
                .unwrap_or_default()
                .to_lowercase()
                .contains(&text)
        })
        .filter(|hit| {
            tags.iter().all(|tag| {
                hit["tags"]
                    .as_array()
                    .is_some_and(|have| have.iter().any(|have| have == tag))
            })
        })
        .collect();
    let start = usize::try_from((page - 1) * limit).unwrap_or(usize::MAX);
    let page: Vec<Value> = matching
        .into_iter()
        .skip(start)
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    Json(Value::Array(page)).into_response()
}

fn dashboard_hit(number: usize) -> Value {
    let tags = if number % 2 == 0 {
        json!(["prod", "checkout"])
    } else {
        json!(["staging"])
    };
    json!({
        "id": number, "uid": format!("dash-{number:02}"), "title": format!("Service {number:02} overview"),
        "uri": format!("db/service-{number:02}-overview"), "url": format!("/d/dash-{number:02}/service-{number:02}-overview"),
        "slug": "", "type": "dash-db", "tags": tags, "isStarred": false,
        "folderUid": "ops", "folderTitle": "Operations", "sortMeta": 0,
    })
}

/// `/api/dashboards/uid/{uid}`: a dashboard with a row of panels.
fn dashboard(uid: &str) -> Response {
    let Some(number) = uid
        .strip_prefix("dash-")
        .and_then(|number| number.parse::<usize>().ok())
        .filter(|number| (1..=DASHBOARD_COUNT).contains(number))
    else {
        return message(StatusCode::NOT_FOUND, "Dashboard not found");
    };
    let hit = dashboard_hit(number);
    Json(json!({
        "meta": {"type": "db", "slug": format!("service-{number:02}-overview"), "url": hit["url"],
                 "folderTitle": "Operations", "folderUid": "ops", "updated": "2026-11-30T10:00:00Z",
                 "canEdit": false, "canSave": false},
        "dashboard": {
            "id": number, "uid": uid, "title": hit["title"], "tags": hit["tags"], "version": 7,
            "time": {"from": "now-6h", "to": "now"},
            "templating": {"list": [{"name": "job", "type": "query", "query": "label_values(up, job)",
                                      "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID}}]},
            "panels": [
                {"id": 1, "type": "timeseries", "title": "Request rate",
                 "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID},
                 "targets": [{"refId": "A", "expr": "sum(rate(http_requests_total{job=\"$job\"}[5m]))",
                              "datasource": {"type": "prometheus", "uid": PROMETHEUS_UID}}]},
                {"id": 2, "type": "row", "title": "Logs", "collapsed": true, "panels": [
                    {"id": 3, "type": "logs", "title": "Errors",
                     "datasource": {"type": "loki", "uid": LOKI_UID},
                     "targets": [{"refId": "A", "expr": "{job=\"$job\"} |= \"error\""}]}
                ]}
            ]
        }
    }))
    .into_response()
}

/// `POST /api/ds/query`: data-plane frames for Prometheus (one frame per series)
/// and Loki (one logs frame); `bad(` is a parse error as Grafana reports it.
fn ds_query(body: Option<&Value>, now: DateTime<Utc>) -> Response {
    let Some(query) = body.and_then(|body| body.pointer("/queries/0")) else {
        return message(StatusCode::BAD_REQUEST, "no queries found");
    };
    let uid = query
        .pointer("/datasource/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let expr = query
        .get("expr")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let ms = |value: Option<&Value>| {
        value
            .and_then(Value::as_str)
            .and_then(|text| text.parse::<i64>().ok())
    };
    let (Some(from), Some(to)) = (
        ms(body.and_then(|body| body.get("from"))),
        ms(body.and_then(|body| body.get("to"))),
    ) else {
        return message(
            StatusCode::BAD_REQUEST,
            "from and to must be epoch milliseconds",
        );
    };
    if expr.contains("bad(") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"results": {"A": {"status": 400,
                "error": "bad_data: invalid parameter \"query\": 1:4: parse error: unclosed left parenthesis",
                "errorSource": "downstream"}}})),
        )
            .into_response();
    }
    let frames = match uid {
        PROMETHEUS_UID => {
            let count = if expr.contains("many_series") {
                MANY_SERIES
            } else {
                3
            };
            let points = usize::try_from(
                query
                    .get("maxDataPoints")
                    .and_then(Value::as_u64)
                    .unwrap_or(100),
            )
            .unwrap_or(100)
            .min(1000);
            let step = ((to - from) / i64::try_from(points.max(1)).unwrap_or(1)).max(1);
            (0..count)
                .map(|series| {
                    let times: Vec<i64> = (0..points).map(|index| from + step * i64::try_from(index).unwrap_or(0)).collect();
                    let values: Vec<f64> = (0..points).map(|index| (series * 10 + index % 7) as f64 / 10.0).collect();
                    json!({
                        "schema": {"name": format!("{{instance=\"web-{series}\"}}"), "refId": "A",
                                   "meta": {"type": "timeseries-multi", "typeVersion": [0, 1]},
                                   "fields": [
                                       {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                                       {"name": "Value", "type": "number", "typeInfo": {"frame": "float64"},
                                        "labels": {"instance": format!("web-{series}"), "job": "checkout"},
                                        "config": {"displayNameFromDS": format!("web-{series}")}}
                                   ]},
                        "data": {"values": [times, values]}
                    })
                })
                .collect::<Vec<_>>()
        }
        LOKI_UID => {
            let lines =
                usize::try_from(query.get("maxLines").and_then(Value::as_u64).unwrap_or(100))
                    .unwrap_or(100)
                    .min(5000);
            let count = lines.min(30);
            let base = now.timestamp_millis();
            vec![json!({
                "schema": {"refId": "A", "meta": {"type": "log-lines", "typeVersion": [0, 0]},
                           "fields": [
                               {"name": "labels", "type": "other", "typeInfo": {"frame": "json.RawMessage"}},
                               {"name": "Time", "type": "time", "typeInfo": {"frame": "time.Time"}},
                               {"name": "Line", "type": "string", "typeInfo": {"frame": "string"}},
                               {"name": "tsNs", "type": "string", "typeInfo": {"frame": "string"}},
                               {"name": "id", "type": "string", "typeInfo": {"frame": "string"}}
                           ]},
                "data": {"values": [
                    (0..count).map(|_| json!({"app": "checkout", "level": "error"})).collect::<Vec<_>>(),
                    (0..count).map(|index| base - i64::try_from(index).unwrap_or(0) * 1000).collect::<Vec<_>>(),
                    (0..count).map(|index| format!("level=error msg=\"payment failed\" attempt={index}")).collect::<Vec<_>>(),
                    (0..count).map(|index| format!("{}000000", base - i64::try_from(index).unwrap_or(0) * 1000)).collect::<Vec<_>>(),
                    (0..count).map(|index| format!("line-{index}")).collect::<Vec<_>>(),
                ]}
            })]
        }
        _ => {
            return message(StatusCode::NOT_FOUND, "data source not found");
        }
    };
    Json(json!({"results": {"A": {"status": 200, "frames": frames}}})).into_response()
}

/// `/api/prometheus/grafana/api/v1/rules` with `group_limit` paging.
fn rules(query: &[(String, String)]) -> Response {
    let Some(limit) = number(query, "group_limit", 0) else {
        return message(StatusCode::BAD_REQUEST, "group_limit must be a number");
    };
    let start = match first_value(query, "group_next_token") {
        None => 0,
        Some(token) => match token
            .strip_prefix("g")
            .and_then(|index| index.parse::<usize>().ok())
        {
            Some(index) => index,
            None => return message(StatusCode::BAD_REQUEST, "invalid group_next_token"),
        },
    };
    let state_filter = first_value(query, "state");
    let all: Vec<Value> = (0..RULE_GROUP_COUNT)
        .map(|group| rule_group(group, state_filter))
        .collect();
    let take = if limit > 0 {
        usize::try_from(limit).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    let groups: Vec<Value> = all.iter().skip(start).take(take).cloned().collect();
    let end = start.saturating_add(groups.len());
    let mut data = json!({"groups": groups, "totals": {"firing": 5, "inactive": 10}});
    if end < RULE_GROUP_COUNT && limit > 0 {
        data["groupNextToken"] = json!(format!("g{end}"));
    }
    Json(json!({"status": "success", "data": data})).into_response()
}

fn rule_group(group: usize, state_filter: Option<&str>) -> Value {
    let rules: Vec<Value> = (0..RULES_PER_GROUP)
        .map(|index| {
            let firing = index == 0;
            json!({
                "state": if firing { "firing" } else { "inactive" },
                "name": format!("Rule {group}.{index} high error rate"),
                "query": "[{\"refId\":\"A\",\"model\":{\"expr\":\"sum(rate(errors_total[5m])) > 1\"}}]",
                "duration": 300,
                "labels": {"__alert_rule_uid__": format!("rule-{group}-{index}"), "severity": "critical"},
                "annotations": {"summary": "Error rate above 1/s"},
                "alerts": if firing { json!([{"labels": {"alertname": format!("Rule {group}.{index}")}, "state": "Alerting",
                                             "activeAt": "2026-12-01T10:00:00Z", "value": "1.5"}]) } else { json!([]) },
                "health": "ok", "type": "alerting", "lastEvaluation": "2026-12-01T10:05:00Z",
                "evaluationTime": 0.01
            })
        })
        .filter(|rule| state_filter.is_none_or(|state| rule["state"] == state))
        .collect();
    json!({"name": format!("group-{group}"), "file": if group % 2 == 0 { "Payments" } else { "Platform" },
           "folderUid": format!("folder-{}", group % 2), "rules": rules, "interval": 60,
           "lastEvaluation": "2026-12-01T10:05:00Z", "evaluationTime": 0.02})
}

/// `/api/alertmanager/grafana/api/v2/alerts`, with `filter=label="value"` matchers.
fn alerts(query: &[(String, String)], now: DateTime<Utc>) -> Response {
    let matchers: Vec<(String, String)> = query
        .iter()
        .filter(|(key, _)| key == "filter")
        .filter_map(|(_, matcher)| {
            let (name, value) = matcher.split_once('=')?;
            Some((
                name.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ))
        })
        .collect();
    let alerts: Vec<Value> = (0..ACTIVE_ALERT_COUNT)
        .map(|index| {
            let severity = if index % 3 == 0 { "critical" } else { "warning" };
            json!({
                "annotations": {"summary": format!("Alert {index} is firing")},
                "endsAt": (now + TimeDelta::minutes(4)).to_rfc3339(),
                "fingerprint": format!("{index:016x}"),
                "receivers": [{"name": "patchbay"}],
                "startsAt": (now - TimeDelta::minutes(i64::try_from(index).unwrap_or(0) * 10)).to_rfc3339(),
                "status": {"inhibitedBy": [], "silencedBy": [], "state": "active"},
                "updatedAt": now.to_rfc3339(),
                "generatorURL": format!("https://grafana.example.invalid/alerting/grafana/rule-{index}/view"),
                "labels": {"alertname": format!("Alert {index}"), "severity": severity,
                           "__alert_rule_uid__": format!("rule-{index}")}
            })
        })
        .filter(|alert| {
            matchers
                .iter()
                .all(|(name, value)| alert["labels"][name.as_str()] == value.as_str())
        })
        .collect();
    Json(Value::Array(alerts)).into_response()
}

/// `/api/annotations`: one every 5 minutes back from `now`, newest first, within
/// `from`/`to` (epoch ms) and `limit` (default 100).
fn annotations(query: &[(String, String)], now: DateTime<Utc>) -> Response {
    let now_ms = now.timestamp_millis();
    let (Some(from), Some(to), Some(limit)) = (
        number(query, "from", 0),
        number(query, "to", now_ms),
        number(query, "limit", 100),
    ) else {
        return message(
            StatusCode::BAD_REQUEST,
            "from, to and limit must be numbers",
        );
    };
    let tags: Vec<&str> = query
        .iter()
        .filter(|(key, _)| key == "tags")
        .map(|(_, value)| value.as_str())
        .collect();
    let items: Vec<Value> = (0..ANNOTATION_COUNT)
        .map(|index| {
            let time = now_ms - i64::try_from(index).unwrap_or(0) * 300_000;
            let tag = if index % 10 == 0 { "deploy" } else { "note" };
            json!({"id": 10_000 - index, "alertId": 0, "dashboardUID": "dash-01", "panelId": 1,
                   "time": time, "timeEnd": time, "text": format!("{tag} {index}"), "tags": [tag],
                   "login": "ci-bot", "newState": "", "alertName": ""})
        })
        .filter(|item| {
            let time = item["time"].as_i64().unwrap_or_default();
            time >= from && time <= to
        })
        .filter(|item| {
            tags.iter().all(|tag| {
                item["tags"]
                    .as_array()
                    .is_some_and(|have| have.iter().any(|have| have == tag))
            })
        })
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    Json(Value::Array(items)).into_response()
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = message(StatusCode::TOO_MANY_REQUESTS, "Too many requests");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        Fault::Unavailable => message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
    }
}

/// Grafana's error shape: `{"message": ...}`.
fn message(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({"message": text}))).into_response()
}

/// A default-template contact-point delivery for one alert, `firing` or
/// `resolved`, as Grafana sends it; the same arguments give the same body.
pub fn sample_payload(fingerprint: &str, status: &str, starts_at: &str) -> Value {
    let ends_at = if status == "resolved" {
        "2026-12-01T10:30:00Z"
    } else {
        "0001-01-01T00:00:00Z"
    };
    json!({
        "receiver": "Patchbay",
        "status": status,
        "orgId": 1,
        "alerts": [{
            "status": status,
            "labels": {"alertname": "High error rate", "service": "checkout", "severity": "warning", "team": "payments"},
            "annotations": {"summary": "Checkout error rate above 5%", "runbook_url": "https://runbooks.example.invalid/checkout"},
            "startsAt": starts_at,
            "endsAt": ends_at,
            "generatorURL": "https://acme.grafana.net/alerting/grafana/rule-1/view",
            "fingerprint": fingerprint,
            "silenceURL": "https://acme.grafana.net/alerting/silence/new?matcher=alertname%3DHigh+error+rate",
            "dashboardURL": "https://acme.grafana.net/d/dash-01",
            "panelURL": "https://acme.grafana.net/d/dash-01?viewPanel=1",
            "values": {"B": 7.5, "C": 1}
        }],
        "groupLabels": {"alertname": "High error rate"},
        "commonLabels": {"alertname": "High error rate", "service": "checkout"},
        "commonAnnotations": {},
        "externalURL": "https://acme.grafana.net/",
        "version": "1",
        "groupKey": "{}:{alertname=\"High error rate\"}",
        "truncatedAlerts": 0,
        "title": format!("[{}:1] High error rate", status.to_uppercase()),
        "state": if status == "resolved" { "ok" } else { "alerting" },
        "message": "**Firing**"
    })
}

/// A delivery with an empty `alerts[]`, which Patchbay treats as a test.
pub fn test_payload() -> Value {
    json!({"receiver": "Patchbay", "status": "firing", "orgId": 1, "alerts": [],
           "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
           "externalURL": "https://acme.grafana.net/", "version": "1", "groupKey": "test",
           "truncatedAlerts": 0, "title": "test", "state": "alerting", "message": "test"})
}
