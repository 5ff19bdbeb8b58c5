//! A fake Netdata Cloud on `127.0.0.1`, behind the `fake` feature, for this
//! crate's tests and for hosts that test with this connector.
//!
//! It answers what the connector calls, in the shapes Netdata's Terraform
//! provider reads and Netdata describes for its Cloud: `GET /api/v3/spaces` (a
//! list), `GET /api/v2/spaces/{spaceID}/rooms` (a list),
//! `POST /api/v3/spaces/{spaceID}/rooms/{roomID}/nodes` (`{"nodes": [...]}` with
//! the compact `nd`/`nm` names) and `POST /api/v2/spaces/{spaceID}/rooms/{roomID}/alerts`
//! (`alerts`, `alert_instances` and `nodes`). Errors carry Netdata's
//! `errorMsgKey`/`errorMessage` body. It answers 401 to a request without
//! `Authorization: Bearer <the token it was started with>`, and records every
//! request without header values.
//!
//! It holds two spaces, [`SPACE_NAME`] with [`ROOM_COUNT`] rooms and `Staging`
//! with one, and [`NODE_COUNT`] nodes in the first space's `All nodes` room.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{FakeServer, FaultQueue, RequestLog};
use serde_json::{json, Value};

use crate::NetdataConnector;

/// The space the connector is usually pointed at.
pub const SPACE_NAME: &str = "Ops Team";
/// Its id.
pub const SPACE_ID: &str = "6b3e4f0a-0001-4c4e-9a52-1f1b5c3d0001";
/// Its slug.
pub const SPACE_SLUG: &str = "ops-team";
/// The other space.
pub const OTHER_SPACE_NAME: &str = "Staging";
/// The other space's id.
pub const OTHER_SPACE_ID: &str = "6b3e4f0a-0002-4c4e-9a52-1f1b5c3d0002";
/// How many rooms the first space has.
pub const ROOM_COUNT: usize = 5;
/// The id of the first space's `All nodes` room.
pub const ALL_NODES_ROOM: &str = "room-all-nodes";
/// The id of the first space's `Web` room.
pub const WEB_ROOM: &str = "room-web";
/// How many nodes the `All nodes` room holds.
pub const NODE_COUNT: usize = 5;

/// A one-shot failure to inject for the next request to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: <retry_after_secs>`.
    RateLimited {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// 500 Internal Server Error.
    ServerError,
    /// 503 Service Unavailable.
    Unavailable,
    /// 401 as for a revoked token.
    Unauthorized,
    /// 403 as for a token whose scope does not cover the request.
    Forbidden,
}

/// A request the fake received, without header values.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/api/v3/spaces`.
    pub path: String,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
    /// The scheme of the `Authorization` header (`Bearer`), never its credential.
    pub authorization_scheme: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The JSON body of a POST.
    pub body: Option<Value>,
}

impl RecordedRequest {
    /// Whether a header was sent (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header_names.contains(&name.to_ascii_lowercase())
    }
}

/// A running fake Netdata Cloud; stops when dropped.
pub struct FakeNetdata {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeNetdata,
    hosts: ["app.netdata.cloud"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

struct Shared {
    token: String,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
}

impl FakeNetdata {
    /// Starts the fake on `127.0.0.1:0`, accepting `token` as the API token.
    pub async fn start(token: &str) -> Self {
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("Netdata", router).await;
        Self { shared, server }
    }

    /// A connector whose HTTP client sends Netdata Cloud requests to this fake.
    pub fn connector(&self) -> NetdataConnector {
        NetdataConnector::new(patchbay_testkit::http::client_for_fake(
            &self.override_spec(),
        ))
    }
}

impl Shared {
    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|token| token == self.token)
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut header_names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    let text = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    shared.requests.record(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        header_names,
        authorization_scheme: text(header::AUTHORIZATION)
            .and_then(|value| value.split(' ').next().map(str::to_owned)),
        accept: text(header::ACCEPT),
        body: serde_json::from_slice(&body).ok(),
    });
    if let Some(fault) = shared.faults.take(uri.path()) {
        return fault_response(fault);
    }
    if !shared.is_authorized(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "ErrUnauthenticated",
            "Unauthenticated",
        );
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    match (method.as_str(), segments.as_slice()) {
        ("GET", ["api", "v3", "spaces"]) => Json(spaces()).into_response(),
        ("GET", ["api", "v2", "spaces", space, "rooms"]) => match rooms(space) {
            Some(rooms) => Json(rooms).into_response(),
            None => space_not_found(),
        },
        ("POST", ["api", "v3", "spaces", space, "rooms", room, "nodes"]) => {
            match room_nodes(space, room) {
                Some(nodes) => Json(json!({ "nodes": nodes })).into_response(),
                None => room_not_found(),
            }
        }
        ("POST", ["api", "v2", "spaces", space, "rooms", room, "alerts"]) => {
            match room_alerts(space, room) {
                Some(answer) => Json(answer).into_response(),
                None => room_not_found(),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "ErrNotFound", "no such endpoint"),
    }
}

fn spaces() -> Value {
    json!([
        {"id": SPACE_ID, "slug": SPACE_SLUG, "name": SPACE_NAME,
         "description": "Production monitoring", "createdAt": "2024-01-10T09:00:00Z"},
        {"id": OTHER_SPACE_ID, "slug": "staging", "name": OTHER_SPACE_NAME,
         "description": "", "createdAt": "2024-02-01T09:00:00Z"},
    ])
}

/// Rooms: (id, name, node names).
const ROOMS: &[(&str, &str, &[&str])] = &[
    (
        ALL_NODES_ROOM,
        "All nodes",
        &["web-1", "web-2", "web-3", "db-1", "db-2"],
    ),
    (WEB_ROOM, "Web", &["web-1", "web-2", "web-3"]),
    ("room-databases", "Databases", &["db-1", "db-2"]),
    ("room-edge", "Edge", &[]),
    ("room-batch", "Batch", &[]),
];

fn rooms(space: &str) -> Option<Value> {
    match space {
        SPACE_ID => Some(Value::Array(
            ROOMS
                .iter()
                .map(|(id, name, nodes)| {
                    json!({"id": id, "slug": name.to_ascii_lowercase().replace(' ', "-"),
                           "name": name, "description": "", "node_count": nodes.len()})
                })
                .collect(),
        )),
        OTHER_SPACE_ID => Some(json!([
            {"id": "room-staging-all", "slug": "all-nodes", "name": "All nodes", "description": ""}
        ])),
        _ => None,
    }
}

fn room_node_names(space: &str, room: &str) -> Option<&'static [&'static str]> {
    if space != SPACE_ID {
        return None;
    }
    ROOMS
        .iter()
        .find(|(id, _, _)| *id == room)
        .map(|(_, _, nodes)| *nodes)
}

fn node(name: &str) -> Value {
    json!({
        "nd": format!("node-{name}"),
        "mg": format!("guid-{name}"),
        "nm": name,
        "state": if name == "db-2" { "unreachable" } else { "reachable" },
        "v": "v2.1.0",
    })
}

fn room_nodes(space: &str, room: &str) -> Option<Vec<Value>> {
    room_node_names(space, room).map(|names| names.iter().map(|name| node(name)).collect())
}

/// The alert instances on each node: (node, alert, chart, status, value, transition time).
const INSTANCES: &[(&str, &str, &str, &str, f64, i64)] = &[
    (
        "web-1",
        "10min_cpu_usage",
        "system.cpu",
        "CRITICAL",
        97.2,
        1_714_564_800,
    ),
    (
        "web-2",
        "ram_in_use",
        "system.ram",
        "WARNING",
        88.1,
        1_714_564_000,
    ),
    (
        "web-3",
        "10min_cpu_usage",
        "system.cpu",
        "CLEAR",
        12.0,
        1_714_560_000,
    ),
    (
        "db-1",
        "disk_space_usage",
        "disk_space._",
        "WARNING",
        91.5,
        1_714_563_000,
    ),
    (
        "db-2",
        "mysql_10s_slow_queries",
        "mysql_local.queries",
        "CRITICAL",
        42.0,
        1_714_562_000,
    ),
    ("db-2", "ram_in_use", "system.ram", "UNINITIALIZED", 0.0, 0),
];

fn room_alerts(space: &str, room: &str) -> Option<Value> {
    let names = room_node_names(space, room)?;
    let nodes: Vec<Value> = names
        .iter()
        .enumerate()
        .map(|(index, name)| json!({"ni": index, "nd": format!("node-{name}"), "nm": name}))
        .collect();
    let instances: Vec<Value> = INSTANCES
        .iter()
        .filter_map(|(node, name, chart, status, value, at)| {
            let index = names.iter().position(|candidate| candidate == node)?;
            Some(json!({
                "ni": index, "nm": name, "ctx": chart, "ch": chart, "ch_n": chart,
                "st": status, "v": value, "t": 1_714_565_000, "tr_i": format!("tr-{node}-{name}"),
                "tr_v": value, "tr_t": at, "units": "%", "sum": format!("{name} on {node}"),
            }))
        })
        .collect();
    Some(json!({
        "api": 2,
        "nodes": nodes,
        "alerts": [],
        "alert_instances": instances,
    }))
}

fn space_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "ErrSpaceNotFound", "space not found")
}

fn room_not_found() -> Response {
    error(StatusCode::NOT_FOUND, "ErrRoomNotFound", "room not found")
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "ErrTooManyRequests",
                "too many requests",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ErrInternalServerError",
            "internal error",
        ),
        Fault::Unavailable => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ErrServiceUnavailable",
            "service unavailable",
        ),
        Fault::Unauthorized => error(
            StatusCode::UNAUTHORIZED,
            "ErrUnauthenticated",
            "Unauthenticated",
        ),
        Fault::Forbidden => error(
            StatusCode::FORBIDDEN,
            "ErrForbidden",
            "missing permission: PermissionAlertReadAll",
        ),
    }
}

/// Netdata Cloud's error body.
fn error(status: StatusCode, key: &str, message: &str) -> Response {
    (
        status,
        Json(json!({
            "errorCode": "3f1c0e6e-fake",
            "errorMsgKey": key,
            "errorMessage": message,
            "errorNonRetryable": false,
            "errorRetryDelay": 0,
        })),
    )
        .into_response()
}

/// A version 1 (flat) delivery of `alarm` on `host` at `status`, sent at `when`.
pub fn v1_payload(alarm: &str, host: &str, status: &str, when: i64) -> Value {
    json!({
        "message": format!("{alarm} on {host} is {status}"),
        "alarm": alarm,
        "info": "average CPU utilization over the last 10 minutes",
        "chart": "system.cpu",
        "context": "system.cpu",
        "space": SPACE_NAME,
        "family": "cpu",
        "class": "Utilization",
        "severity": status.to_ascii_lowercase(),
        "status": status,
        "host": host,
        "value": 97.2,
        "when": when,
        "alert_url": format!("https://app.netdata.cloud/spaces/{SPACE_SLUG}/alerts/{alarm}"),
    })
}

/// A version 2 (nested) delivery of `alarm` on `host` at `status`, sent at `when`.
pub fn v2_payload(alarm: &str, host: &str, status: &str, when: i64) -> Value {
    json!({
        "version": 2,
        "space": {"id": SPACE_ID, "name": SPACE_NAME},
        "node": {"id": format!("node-{host}"), "hostname": host},
        "alert": {
            "name": alarm,
            "url": format!("https://app.netdata.cloud/spaces/{SPACE_SLUG}/alerts/{alarm}"),
            "chart": {"name": "system.cpu"},
            "state": {"status": status, "value": 97.2},
        },
        "alarm": {"when": when},
    })
}

/// A test delivery, as Netdata sends when the integration is tested.
pub fn test_payload() -> Value {
    json!({
        "message": "Test notification from Netdata Cloud",
        "alarm": "test",
        "status": "test",
        "space": SPACE_NAME,
    })
}
