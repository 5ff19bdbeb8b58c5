//! Read-only query operations over the Netdata Cloud API, declared once with
//! [`patchbay_core::operations!`].
//!
//! Netdata answers each of these reads with one whole list (it has no paging of
//! its own for them), so the operations page through that list themselves: the
//! cursor is the offset of the next item. Page sizes are bounded in the schema;
//! the toolkit checks parameters, seals cursors and caps output bytes.
//!
//! `list_spaces` and `list_rooms` use the endpoints Netdata's Terraform provider
//! uses. `list_nodes` and `list_alerts` use the room endpoints Netdata describes
//! for its Cloud (`POST .../rooms/{roomID}/nodes`, `POST .../rooms/{roomID}/alerts`);
//! they have not been verified against Netdata Cloud itself.

use chrono::{DateTime, SecondsFormat};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::{NetdataClient, Room, Space};
use crate::CONNECTOR_ID;

/// The most items one page of any operation returns.
pub const MAX_PAGE: u32 = 200;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: NetdataClient<'_>,
    /// List the Netdata spaces the token can see, with their id, name and slug (GET /api/v3/spaces).
    read list_spaces(ListSpacesParams), paged;
    /// List the rooms of a space (GET /api/v2/spaces/{spaceID}/rooms); the connection's space by default.
    read list_rooms(ListRoomsParams), paged;
    /// List the nodes of a room with their state (POST /api/v3/spaces/{spaceID}/rooms/{roomID}/nodes).
    read list_nodes(ListNodesParams), paged;
    /// List a room's alert instances, raised ones (critical, then warning) by default, newest transition first
    /// (POST /api/v2/spaces/{spaceID}/rooms/{roomID}/alerts).
    read list_alerts(ListAlertsParams), paged;
}

/// Parameters of `list_spaces`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSpacesParams {
    /// How many spaces to return, 1 to 100 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `list_rooms`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRoomsParams {
    /// The space's id (from `list_spaces`); the connection's space when left out.
    #[serde(default)]
    pub space_id: Option<String>,
    /// How many rooms to return, 1 to 100 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `list_nodes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListNodesParams {
    /// The room's id (from `list_rooms`).
    pub room_id: String,
    /// The space's id (from `list_spaces`); the connection's space when left out.
    #[serde(default)]
    pub space_id: Option<String>,
    /// How many nodes to return, 1 to 200 (default 100).
    #[serde(default = "default_nodes_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// Parameters of `list_alerts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAlertsParams {
    /// The room's id (from `list_rooms`).
    pub room_id: String,
    /// The space's id (from `list_spaces`); the connection's space when left out.
    #[serde(default)]
    pub space_id: Option<String>,
    /// Which states to return (default `critical` and `warning`, the raised alerts).
    #[serde(default = "raised")]
    pub status: Vec<AlertState>,
    /// How many alert instances to return, 1 to 200 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// The state of a Netdata alert instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Over its critical threshold.
    Critical,
    /// Over its warning threshold.
    Warning,
    /// Within its thresholds.
    Clear,
    /// Not evaluated yet, undefined or removed.
    Other,
}

impl AlertState {
    fn of(status: &str) -> Self {
        match status.to_ascii_lowercase().as_str() {
            "critical" => Self::Critical,
            "warning" => Self::Warning,
            "clear" => Self::Clear,
            _ => Self::Other,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Critical => 0,
            Self::Warning => 1,
            Self::Clear => 2,
            Self::Other => 3,
        }
    }
}

fn default_limit() -> u32 {
    50
}

fn default_nodes_limit() -> u32 {
    100
}

fn raised() -> Vec<AlertState> {
    vec![AlertState::Critical, AlertState::Warning]
}

/// One page of `items` from the offset in `cursor`, and the cursor of the next page.
fn page<T>(items: Vec<T>, cursor: Option<String>, limit: u32) -> Result<(Vec<T>, Option<String>)> {
    let offset = match cursor {
        None => 0,
        Some(cursor) => cursor.parse::<usize>().map_err(|_| {
            Error::invalid_input("cursor", "the cursor is not one this operation issued")
                .with_connector(CONNECTOR_ID)
        })?,
    };
    let limit = usize::try_from(limit.min(MAX_PAGE)).unwrap_or(usize::MAX);
    let total = items.len();
    let end = total.min(offset.saturating_add(limit));
    let next = (end < total).then(|| end.to_string());
    let page = items.into_iter().skip(offset).take(limit).collect();
    Ok((page, next))
}

/// Refuses an empty `room_id` before it becomes an empty path segment.
fn require_room(room_id: &str) -> Result<()> {
    if room_id.trim().is_empty() {
        return Err(Error::invalid_input(
            "room_id",
            "`room_id` must not be empty; list_rooms gives the room ids",
        )
        .with_connector(CONNECTOR_ID));
    }
    Ok(())
}

fn space_view(space: &Space) -> Value {
    json!({
        "id": space.id,
        "name": space.name,
        "slug": space.slug,
        "description": space.description,
    })
}

fn room_view(room: &Room) -> Value {
    json!({
        "id": room.id,
        "name": room.name,
        "slug": room.slug,
        "description": room.description,
    })
}

/// The list under `key` of a Netdata answer, or the answer itself when it is a list.
fn list_in(answer: Value, key: &str) -> Vec<Value> {
    match answer {
        Value::Array(items) => items,
        Value::Object(mut object) => match object.remove(key) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The first string among `keys` of `object`.
fn text<'a>(object: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
}

/// Unix seconds as RFC 3339, or `null`.
fn time(seconds: Option<&Value>) -> Value {
    seconds
        .and_then(Value::as_i64)
        .filter(|seconds| *seconds > 0)
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
        .map_or(Value::Null, |at| {
            Value::String(at.to_rfc3339_opts(SecondsFormat::Secs, true))
        })
}

/// A node of `POST .../nodes` in readable names (`nd` id, `nm` name, `v` version).
fn node_view(node: &Value) -> Value {
    json!({
        "id": text(node, &["nd", "id"]),
        "name": text(node, &["nm", "name"]),
        "state": text(node, &["state"]),
        "version": text(node, &["v", "version"]),
        "machine_guid": text(node, &["mg"]),
    })
}

/// One alert instance of `POST .../alerts` in readable names, with its node
/// resolved from the answer's `nodes` list (`ni` indexes it).
fn alert_view(instance: &Value, nodes: &[Value]) -> Value {
    let node = instance
        .get("ni")
        .and_then(Value::as_u64)
        .and_then(|index| usize::try_from(index).ok())
        .and_then(|index| nodes.get(index));
    let mut view = Map::new();
    view.insert("name".into(), json!(text(instance, &["nm", "name"])));
    view.insert(
        "status".into(),
        json!(text(instance, &["st", "status"]).map(str::to_ascii_lowercase)),
    );
    view.insert(
        "value".into(),
        instance.get("v").cloned().unwrap_or(Value::Null),
    );
    view.insert("units".into(), json!(text(instance, &["units"])));
    view.insert("context".into(), json!(text(instance, &["ctx"])));
    view.insert("chart".into(), json!(text(instance, &["ch_n", "ch"])));
    view.insert("summary".into(), json!(text(instance, &["sum", "summary"])));
    view.insert(
        "node_id".into(),
        json!(node
            .and_then(|node| text(node, &["nd"]))
            .or(text(instance, &["nd"]))),
    );
    view.insert(
        "node".into(),
        json!(node.and_then(|node| text(node, &["nm"]))),
    );
    view.insert("last_evaluated".into(), time(instance.get("t")));
    view.insert("last_transition".into(), time(instance.get("tr_t")));
    view.insert("transition_id".into(), json!(text(instance, &["tr_i"])));
    Value::Object(view)
}

impl NetdataClient<'_> {
    /// `list_spaces`: a page of the spaces the token can see.
    async fn list_spaces(
        &self,
        params: ListSpacesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let spaces = self.spaces("list_spaces").await?;
        let total = spaces.len();
        let (spaces, next) = page(spaces, cursor, params.limit)?;
        let spaces: Vec<Value> = spaces.iter().map(space_view).collect();
        Ok(OperationOutput::new(json!({ "spaces": spaces, "total": total })).with_next_page(next))
    }

    /// `list_rooms`: a page of a space's rooms.
    async fn list_rooms(
        &self,
        params: ListRoomsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let space_id = self.space_or_default(params.space_id)?;
        let mut rooms = self.rooms("list_rooms", &space_id).await?;
        rooms.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        let total = rooms.len();
        let (rooms, next) = page(rooms, cursor, params.limit)?;
        let rooms: Vec<Value> = rooms.iter().map(room_view).collect();
        Ok(OperationOutput::new(json!({
            "space_id": space_id,
            "rooms": rooms,
            "total": total,
        }))
        .with_next_page(next))
    }

    /// `list_nodes`: a page of a room's nodes, by name.
    async fn list_nodes(
        &self,
        params: ListNodesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let space_id = self.space_or_default(params.space_id)?;
        require_room(&params.room_id)?;
        let answer = self.room_nodes(&space_id, &params.room_id).await?;
        let mut nodes: Vec<Value> = list_in(answer, "nodes").iter().map(node_view).collect();
        nodes.sort_by(|a, b| {
            let key = |node: &Value| {
                (
                    node["name"].as_str().unwrap_or_default().to_owned(),
                    node["id"].as_str().unwrap_or_default().to_owned(),
                )
            };
            key(a).cmp(&key(b))
        });
        let total = nodes.len();
        let (nodes, next) = page(nodes, cursor, params.limit)?;
        Ok(OperationOutput::new(json!({
            "space_id": space_id,
            "room_id": params.room_id,
            "nodes": nodes,
            "total": total,
        }))
        .with_next_page(next))
    }

    /// `list_alerts`: a page of a room's alert instances in the asked states,
    /// critical first, then warning, then clear, newest transition first.
    async fn list_alerts(
        &self,
        params: ListAlertsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let space_id = self.space_or_default(params.space_id)?;
        require_room(&params.room_id)?;
        let states = if params.status.is_empty() {
            raised()
        } else {
            params.status
        };
        let mut answer = self.room_alerts(&space_id, &params.room_id).await?;
        let nodes = match answer.get_mut("nodes").map(Value::take) {
            Some(Value::Array(nodes)) => nodes,
            _ => Vec::new(),
        };
        let mut counts = Map::new();
        let mut alerts: Vec<(AlertState, i64, Value)> = Vec::new();
        for instance in list_in(answer, "alert_instances") {
            let status = text(&instance, &["st", "status"]).unwrap_or("");
            let state = AlertState::of(status);
            let key = serde_json::to_value(state)
                .ok()
                .and_then(|key| key.as_str().map(str::to_owned))
                .unwrap_or_default();
            let count = counts.entry(key).or_insert(json!(0));
            *count = json!(count.as_u64().unwrap_or(0) + 1);
            if states.contains(&state) {
                let transition = instance.get("tr_t").and_then(Value::as_i64).unwrap_or(0);
                alerts.push((state, transition, alert_view(&instance, &nodes)));
            }
        }
        alerts.sort_by(|a, b| {
            a.0.rank()
                .cmp(&b.0.rank())
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| {
                    let name = |alert: &Value| alert["name"].as_str().unwrap_or("").to_owned();
                    name(&a.2).cmp(&name(&b.2))
                })
        });
        let total = alerts.len();
        let alerts: Vec<Value> = alerts.into_iter().map(|(_, _, alert)| alert).collect();
        let (alerts, next) = page(alerts, cursor, params.limit)?;
        Ok(OperationOutput::new(json!({
            "space_id": space_id,
            "room_id": params.room_id,
            "alerts": alerts,
            "total": total,
            "counts": counts,
        }))
        .with_next_page(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_the_offset_and_end() {
        let items: Vec<u32> = (0..5).collect();
        let (first, next) = page(items.clone(), None, 2).unwrap();
        assert_eq!((first, next.as_deref()), (vec![0, 1], Some("2")));
        let (last, next) = page(items.clone(), Some("4".into()), 2).unwrap();
        assert_eq!((last, next), (vec![4], None));
        let (empty, next) = page(items.clone(), Some("9".into()), 2).unwrap();
        assert!(empty.is_empty() && next.is_none());
        assert_eq!(
            page(items, Some("x".into()), 2).unwrap_err().field(),
            Some("cursor")
        );
    }

    #[test]
    fn alert_instances_read_with_their_node() {
        let nodes = vec![json!({"nd": "node-1", "nm": "web-1"})];
        let view = alert_view(
            &json!({"nm": "10min_cpu_usage", "st": "CRITICAL", "v": 97.5, "ni": 0,
                    "ch_n": "system.cpu", "ctx": "system.cpu", "t": 1714564800, "tr_t": 1714564000}),
            &nodes,
        );
        assert_eq!(view["name"], "10min_cpu_usage");
        assert_eq!(view["status"], "critical");
        assert_eq!(view["node"], "web-1");
        assert_eq!(view["node_id"], "node-1");
        assert_eq!(view["last_evaluated"], "2024-05-01T12:00:00Z");
        assert_eq!(view["last_transition"], "2024-05-01T11:46:40Z");
    }
}
