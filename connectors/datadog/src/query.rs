//! Read-only query operations over the Datadog API.
//!
//! Every operation declares its parameters as a struct whose doc comments become
//! the schema agents read; windows default to a recent span, page sizes are
//! capped, and output is cut to [`MAX_OUTPUT_BYTES`] with `truncated` set.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{
    parse_params, unknown_operation, Error, OperationDescriptor, QueryOutput, Result,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::{query_error, DatadogClient};
use crate::CONNECTOR_ID;

/// The largest serialized `data` an operation returns; trailing items are dropped beyond it.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;
/// The most metric series `query_metrics` returns.
pub const MAX_SERIES: usize = 100;

/// One query operation: its name, what it returns and the permission it needs.
struct Operation {
    name: &'static str,
    description: &'static str,
    permission: &'static str,
    descriptor: fn(&'static str, &'static str) -> OperationDescriptor,
}

fn describe<P: JsonSchema>(name: &'static str, description: &'static str) -> OperationDescriptor {
    OperationDescriptor::new::<P>(name, description, true)
}

const OPERATIONS: &[Operation] = &[
    Operation {
        name: "search_logs",
        description: "Search logs (POST /api/v2/logs/events/search); newest first over the last 15 minutes by default, cursor paging.",
        permission: "logs_read_data",
        descriptor: describe::<LogsSearchParams>,
    },
    Operation {
        name: "query_metrics",
        description: "Query metric timeseries (GET /api/v1/query) over the last hour by default; at most 100 series.",
        permission: "timeseries_query",
        descriptor: describe::<MetricsQueryParams>,
    },
    Operation {
        name: "list_monitors",
        description: "List monitors with their state (GET /api/v1/monitor), filtered by name, tags or group state.",
        permission: "monitors_read",
        descriptor: describe::<MonitorsListParams>,
    },
    Operation {
        name: "get_monitor",
        description: "Get one monitor by id with its query, options and state (GET /api/v1/monitor/{monitor_id}).",
        permission: "monitors_read",
        descriptor: describe::<MonitorGetParams>,
    },
    Operation {
        name: "list_events",
        description: "List events such as alerts, deploys and config changes (GET /api/v1/events) over the last hour by default.",
        permission: "events_read",
        descriptor: describe::<EventsListParams>,
    },
    Operation {
        name: "list_hosts",
        description: "List hosts reporting to Datadog with their apps, tags and mute state (GET /api/v1/hosts).",
        permission: "hosts_read",
        descriptor: describe::<HostsListParams>,
    },
    Operation {
        name: "list_incidents",
        description: "List Datadog incidents with their state and severity (GET /api/v2/incidents).",
        permission: "incident_read",
        descriptor: describe::<IncidentsListParams>,
    },
];

/// Every operation's descriptor, in a stable order.
pub fn descriptors() -> Vec<OperationDescriptor> {
    OPERATIONS
        .iter()
        .map(|operation| (operation.descriptor)(operation.name, operation.description))
        .collect()
}

/// The names of every operation.
pub fn operation_names() -> Vec<&'static str> {
    OPERATIONS.iter().map(|operation| operation.name).collect()
}

/// Runs `operation` with JSON `params`, resolving relative times against `now`.
pub async fn run(
    client: &DatadogClient<'_>,
    operation: &str,
    params: Value,
    now: DateTime<Utc>,
) -> Result<QueryOutput> {
    let Some(spec) = OPERATIONS.iter().find(|spec| spec.name == operation) else {
        return Err(unknown_operation(
            CONNECTOR_ID,
            operation,
            &operation_names(),
        ));
    };
    let call = Call {
        client,
        operation: spec.name,
        permission: spec.permission,
        now,
    };
    match spec.name {
        "search_logs" => call.search_logs(parse(spec.name, params)?).await,
        "query_metrics" => call.query_metrics(parse(spec.name, params)?).await,
        "list_monitors" => call.list_monitors(parse(spec.name, params)?).await,
        "get_monitor" => call.get_monitor(parse(spec.name, params)?).await,
        "list_events" => call.list_events(parse(spec.name, params)?).await,
        "list_hosts" => call.list_hosts(parse(spec.name, params)?).await,
        _ => call.list_incidents(parse(spec.name, params)?).await,
    }
}

fn parse<P: serde::de::DeserializeOwned>(operation: &str, params: Value) -> Result<P> {
    parse_params::<P>(CONNECTOR_ID, operation, params)
}

/// Parameters of `search_logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsSearchParams {
    /// Log search query in Datadog syntax, e.g. `service:checkout status:error`; `*` matches every log.
    #[serde(default = "match_all")]
    pub query: String,
    /// Start of the window: `now-15m` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// How many logs to return, 1 to 1000 (default 50).
    #[serde(default = "default_logs_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: u32,
    /// `next_cursor` from a previous call, to read the next page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Order of results: `-timestamp` (newest first, default) or `timestamp`.
    #[serde(default)]
    pub sort: LogsSort,
}

/// The order of log results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LogsSort {
    /// Oldest first.
    #[serde(rename = "timestamp")]
    Oldest,
    /// Newest first.
    #[default]
    #[serde(rename = "-timestamp")]
    Newest,
}

/// Parameters of `query_metrics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsQueryParams {
    /// Metric query, e.g. `avg:system.cpu.user{service:checkout} by {host}`.
    pub query: String,
    /// Start of the window: `now-1h` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub to: Option<TimeBound>,
}

/// Parameters of `list_monitors`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorsListParams {
    /// Only monitors whose name contains this text.
    #[serde(default)]
    pub name: Option<String>,
    /// Comma-separated scope tags the monitors apply to, e.g. `host:web-1,env:prod`.
    #[serde(default)]
    pub tags: Option<String>,
    /// Comma-separated tags set on the monitors themselves, e.g. `service:checkout,team:payments`.
    #[serde(default)]
    pub monitor_tags: Option<String>,
    /// Include group states: comma-separated from `all`, `alert`, `warn`, `no data`.
    #[serde(default)]
    pub group_states: Option<String>,
    /// Page number, starting at 0 (default 0).
    #[serde(default)]
    pub page: Option<u32>,
    /// Monitors per page, 1 to 1000 (default 100).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: u32,
    /// `next_cursor` from a previous call; takes the place of `page`.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Parameters of `get_monitor`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorGetParams {
    /// The monitor's numeric id (the number in its URL, or `alert_id` in a webhook).
    pub monitor_id: u64,
    /// Include group states: comma-separated from `all`, `alert`, `warn`, `no data`.
    #[serde(default)]
    pub group_states: Option<String>,
}

/// Parameters of `list_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventsListParams {
    /// Start of the window: `now-1h` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub start: Option<TimeBound>,
    /// End of the window: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub end: Option<TimeBound>,
    /// Only events of this priority: `normal` or `low`.
    #[serde(default)]
    pub priority: Option<EventPriority>,
    /// Comma-separated event sources, e.g. `github,kubernetes`.
    #[serde(default)]
    pub sources: Option<String>,
    /// Comma-separated tags the events must carry, e.g. `env:prod,service:checkout`.
    #[serde(default)]
    pub tags: Option<String>,
    /// Return individual events instead of aggregates (needed for paging).
    #[serde(default)]
    pub unaggregated: Option<bool>,
    /// Page number, starting at 0; Datadog pages only unaggregated events, 1000 per page.
    #[serde(default)]
    pub page: Option<u32>,
    /// `next_cursor` from a previous call; takes the place of `page`.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// The priority of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventPriority {
    /// Normal priority.
    Normal,
    /// Low priority.
    Low,
}

/// Parameters of `list_hosts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostsListParams {
    /// Only hosts whose name, alias or tag matches this text, e.g. `env:prod`.
    #[serde(default)]
    pub filter: Option<String>,
    /// Hosts to return, 1 to 1000 (default 100).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub count: u32,
    /// Offset of the first host to return (default 0).
    #[serde(default)]
    pub start: Option<u32>,
    /// Only hosts that reported since this time: `now-1h`, an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// `next_cursor` from a previous call; takes the place of `start`.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// Parameters of `list_incidents`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentsListParams {
    /// Incidents per page, 1 to 100 (default 25).
    #[serde(default = "default_incidents_page_size")]
    #[schemars(range(min = 1, max = 100))]
    pub page_size: u32,
    /// Offset of the first incident to return (default 0).
    #[serde(default)]
    pub page_offset: Option<u32>,
    /// `next_cursor` from a previous call; takes the place of `page_offset`.
    #[serde(default)]
    pub cursor: Option<String>,
}

fn match_all() -> String {
    "*".to_owned()
}

fn default_logs_limit() -> u32 {
    50
}

fn default_page_size() -> u32 {
    100
}

fn default_incidents_page_size() -> u32 {
    25
}

/// One operation call in progress.
struct Call<'c, 'a> {
    client: &'c DatadogClient<'a>,
    operation: &'static str,
    permission: &'static str,
    now: DateTime<Utc>,
}

impl Call<'_, '_> {
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.client
            .get(self.operation, path, query)
            .await
            .map_err(|error| query_error(error, self.permission))
    }

    async fn search_logs(&self, params: LogsSearchParams) -> Result<QueryOutput> {
        check_range("limit", params.limit, 1, 1000)?;
        let range = TimeRange::resolve(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::minutes(15),
            self.now,
        )?;
        let mut page = json!({ "limit": params.limit });
        if let Some(cursor) = params.cursor.filter(|cursor| !cursor.is_empty()) {
            page["cursor"] = Value::String(cursor);
        }
        let query = if params.query.trim().is_empty() {
            match_all()
        } else {
            params.query
        };
        let body = json!({
            "filter": {
                "query": query,
                "from": rfc3339(range.from),
                "to": rfc3339(range.to),
            },
            "page": page,
            "sort": params.sort,
        });
        let response = self
            .client
            .post_search(self.operation, "/api/v2/logs/events/search", &body)
            .await
            .map_err(|error| query_error(error, self.permission))?;
        let logs = items(&response, "data")
            .into_iter()
            .map(flatten_log)
            .collect();
        let (data, truncated) = capped_list("logs", logs, Map::new());
        let next_cursor = response
            .pointer("/meta/page/after")
            .and_then(Value::as_str)
            .filter(|cursor| !cursor.is_empty())
            .map(str::to_owned);
        Ok(QueryOutput {
            data,
            truncated,
            next_cursor,
        })
    }

    async fn query_metrics(&self, params: MetricsQueryParams) -> Result<QueryOutput> {
        if params.query.trim().is_empty() {
            return Err(Error::invalid_input("query", "query is required")
                .with_connector(CONNECTOR_ID)
                .with_hint("pass a metric query such as `avg:system.cpu.user{*} by {host}`"));
        }
        let range = TimeRange::resolve(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(1),
            self.now,
        )?;
        let response = self
            .get(
                "/api/v1/query",
                &[
                    ("from", range.from_seconds().to_string()),
                    ("to", range.to_seconds().to_string()),
                    ("query", params.query.clone()),
                ],
            )
            .await?;
        if response.get("status").and_then(Value::as_str) == Some("error") {
            let reason = response
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no reason given");
            return Err(Error::invalid_input(
                "query",
                format!("Datadog could not run the metric query: {reason}"),
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("check the query syntax, e.g. `avg:system.cpu.user{*} by {host}`"));
        }
        let mut series = items(&response, "series");
        let too_many = series.len() > MAX_SERIES;
        series.truncate(MAX_SERIES);
        let mut extra = Map::new();
        for key in ["query", "from_date", "to_date", "res_type", "group_by"] {
            if let Some(value) = response.get(key) {
                extra.insert(key.to_owned(), value.clone());
            }
        }
        let (data, cut) = capped_list("series", series, extra);
        Ok(QueryOutput {
            data,
            truncated: too_many || cut,
            next_cursor: None,
        })
    }

    async fn list_monitors(&self, params: MonitorsListParams) -> Result<QueryOutput> {
        check_range("page_size", params.page_size, 1, 1000)?;
        let page = match params.cursor.as_deref() {
            Some(cursor) => parse_cursor(cursor)?,
            None => params.page.unwrap_or(0),
        };
        let mut query = vec![
            ("page", page.to_string()),
            ("page_size", params.page_size.to_string()),
        ];
        push_text(&mut query, "name", params.name);
        push_text(&mut query, "tags", params.tags);
        push_text(&mut query, "monitor_tags", params.monitor_tags);
        push_text(&mut query, "group_states", params.group_states);
        let response = self.get("/api/v1/monitor", &query).await?;
        let monitors = response.as_array().cloned().unwrap_or_default();
        let full_page = monitors.len() >= params.page_size as usize;
        let (data, truncated) = capped_list("monitors", monitors, Map::new());
        Ok(QueryOutput {
            data,
            truncated,
            next_cursor: full_page.then(|| (page + 1).to_string()),
        })
    }

    async fn get_monitor(&self, params: MonitorGetParams) -> Result<QueryOutput> {
        let mut query = Vec::new();
        push_text(&mut query, "group_states", params.group_states);
        let path = format!("/api/v1/monitor/{}", params.monitor_id);
        let mut monitor = self.get(&path, &query).await.map_err(|error| {
            if error.provider_status() == Some(404) {
                Error::not_found(format!(
                    "Datadog monitor {} was not found",
                    params.monitor_id
                ))
                .with_connector(CONNECTOR_ID)
                .with_field("monitor_id")
                .with_provider_status(404)
                .with_hint("list monitors with list_monitors to find the id")
            } else {
                error
            }
        })?;
        let mut truncated = false;
        if serialized_len(&monitor) > MAX_OUTPUT_BYTES {
            // Per-group state is the only unbounded part of a monitor.
            if let Some(object) = monitor.as_object_mut() {
                object.remove("state");
                truncated = true;
            }
        }
        Ok(QueryOutput {
            data: monitor,
            truncated,
            next_cursor: None,
        })
    }

    async fn list_events(&self, params: EventsListParams) -> Result<QueryOutput> {
        let range = TimeRange::resolve_fields(
            ("start", params.start.as_ref()),
            ("end", params.end.as_ref()),
            TimeDelta::hours(1),
            self.now,
        )?;
        let page = match params.cursor.as_deref() {
            Some(cursor) => Some(parse_cursor(cursor)?),
            None => params.page,
        };
        // Datadog pages only unaggregated events.
        let unaggregated = params.unaggregated.unwrap_or(false) || page.is_some();
        let mut query = vec![
            ("start", range.from_seconds().to_string()),
            ("end", range.to_seconds().to_string()),
        ];
        if let Some(priority) = params.priority {
            let priority = match priority {
                EventPriority::Normal => "normal",
                EventPriority::Low => "low",
            };
            query.push(("priority", priority.to_owned()));
        }
        push_text(&mut query, "sources", params.sources);
        push_text(&mut query, "tags", params.tags);
        if unaggregated {
            query.push(("unaggregated", "true".to_owned()));
        }
        if let Some(page) = page {
            query.push(("page", page.to_string()));
        }
        let response = self.get("/api/v1/events", &query).await?;
        let events = items(&response, "events");
        let full_page = events.len() >= EVENTS_PER_PAGE;
        let (data, cut) = capped_list("events", events, Map::new());
        let next_cursor = (full_page && unaggregated).then(|| (page.unwrap_or(0) + 1).to_string());
        Ok(QueryOutput {
            data,
            // Aggregated results cannot be paged: a full page means some were left out.
            truncated: cut || (full_page && !unaggregated),
            next_cursor,
        })
    }

    async fn list_hosts(&self, params: HostsListParams) -> Result<QueryOutput> {
        check_range("count", params.count, 1, 1000)?;
        let start = match params.cursor.as_deref() {
            Some(cursor) => parse_cursor(cursor)?,
            None => params.start.unwrap_or(0),
        };
        let mut query = vec![
            ("count", params.count.to_string()),
            ("start", start.to_string()),
        ];
        push_text(&mut query, "filter", params.filter);
        if let Some(from) = &params.from {
            query.push((
                "from",
                from.resolve("from", self.now)?.timestamp().to_string(),
            ));
        }
        let response = self.get("/api/v1/hosts", &query).await?;
        let hosts = items(&response, "host_list");
        let returned = hosts.len() as u64;
        let total_matching = response.get("total_matching").and_then(Value::as_u64);
        let mut extra = Map::new();
        extra.insert("total_matching".to_owned(), json!(total_matching));
        extra.insert("total_returned".to_owned(), json!(returned));
        let (data, truncated) = capped_list("hosts", hosts, extra);
        let next_start = u64::from(start) + returned;
        let next_cursor = match total_matching {
            Some(total) if returned > 0 && next_start < total => Some(next_start.to_string()),
            _ => None,
        };
        Ok(QueryOutput {
            data,
            truncated,
            next_cursor,
        })
    }

    async fn list_incidents(&self, params: IncidentsListParams) -> Result<QueryOutput> {
        check_range("page_size", params.page_size, 1, 100)?;
        let offset = match params.cursor.as_deref() {
            Some(cursor) => parse_cursor(cursor)?,
            None => params.page_offset.unwrap_or(0),
        };
        let response = self
            .get(
                "/api/v2/incidents",
                &[
                    ("page[size]", params.page_size.to_string()),
                    ("page[offset]", offset.to_string()),
                ],
            )
            .await?;
        let incidents = items(&response, "data");
        let full_page = incidents.len() >= params.page_size as usize;
        let next_offset = response
            .pointer("/meta/pagination/next_offset")
            .and_then(Value::as_u64)
            .unwrap_or(u64::from(offset) + incidents.len() as u64);
        let (data, truncated) = capped_list("incidents", incidents, Map::new());
        Ok(QueryOutput {
            data,
            truncated,
            next_cursor: full_page.then(|| next_offset.to_string()),
        })
    }
}

/// Datadog's page size for `GET /api/v1/events`.
const EVENTS_PER_PAGE: usize = 1000;

fn check_range(field: &str, value: u32, min: u32, max: u32) -> Result<()> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid_input(
            field,
            format!("`{field}` must be between {min} and {max}, got {value}"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint(format!(
            "pass `{field}` of at most {max} and page with `cursor`"
        )))
    }
}

fn parse_cursor(cursor: &str) -> Result<u32> {
    cursor.trim().parse().map_err(|_| {
        Error::invalid_input(
            "cursor",
            format!("`cursor` `{cursor}` is not a cursor this operation returned"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("pass the `next_cursor` value of the previous call unchanged")
    })
}

fn push_text(query: &mut Vec<(&str, String)>, name: &'static str, value: Option<String>) {
    if let Some(value) = value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
    {
        query.push((name, value));
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn items(response: &Value, key: &str) -> Vec<Value> {
    response
        .get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// A v2 log event as `{id, timestamp, service, host, status, message, tags, attributes}`.
fn flatten_log(log: Value) -> Value {
    let Value::Object(mut log) = log else {
        return log;
    };
    let mut flat = Map::new();
    if let Some(id) = log.remove("id") {
        flat.insert("id".to_owned(), id);
    }
    if let Some(Value::Object(attributes)) = log.remove("attributes") {
        flat.extend(attributes);
    }
    Value::Object(flat)
}

fn serialized_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |bytes| bytes.len())
}

/// `{key: items, ..extra}` within [`MAX_OUTPUT_BYTES`]; trailing items that do not
/// fit are dropped and the flag says so.
fn capped_list(key: &str, items: Vec<Value>, extra: Map<String, Value>) -> (Value, bool) {
    let mut envelope = extra;
    envelope.insert(key.to_owned(), Value::Array(Vec::new()));
    let mut used = serialized_len(&Value::Object(envelope.clone()));
    let mut kept = Vec::with_capacity(items.len());
    let total = items.len();
    for item in items {
        let separator = usize::from(!kept.is_empty());
        let size = serialized_len(&item) + separator;
        if used.saturating_add(size) > MAX_OUTPUT_BYTES {
            break;
        }
        used += size;
        kept.push(item);
    }
    let truncated = kept.len() < total;
    envelope.insert(key.to_owned(), Value::Array(kept));
    (Value::Object(envelope), truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_lists_drop_trailing_items_and_say_so() {
        let item = json!({ "message": "x".repeat(10_000) });
        let (data, truncated) = capped_list("logs", vec![item.clone(); 40], Map::new());
        assert!(truncated);
        let kept = data["logs"].as_array().unwrap().len();
        assert!(kept > 20 && kept < 40, "{kept}");
        assert!(serialized_len(&data) <= MAX_OUTPUT_BYTES);

        let (data, truncated) = capped_list("logs", vec![item; 3], Map::new());
        assert!(!truncated);
        assert_eq!(data["logs"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn every_operation_schema_documents_every_field() {
        for descriptor in descriptors() {
            let schema = serde_json::to_value(&descriptor.params_schema).unwrap();
            assert_eq!(schema["type"], "object", "{}", descriptor.name);
            assert_eq!(schema["additionalProperties"], false, "{}", descriptor.name);
            for (field, property) in schema["properties"].as_object().unwrap() {
                assert!(
                    property.get("description").is_some(),
                    "{}.{field} has no description",
                    descriptor.name
                );
            }
        }
    }

    #[test]
    fn logs_are_flattened_to_their_attributes() {
        let log =
            json!({"id": "AQ", "type": "log", "attributes": {"message": "boom", "service": "web"}});
        assert_eq!(
            flatten_log(log),
            json!({"id": "AQ", "message": "boom", "service": "web"})
        );
    }
}
