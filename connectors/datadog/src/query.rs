//! Read-only query operations over the Datadog API, declared once with
//! [`patchbay_core::operations!`].
//!
//! Every operation's parameters are a struct whose doc comments become the schema
//! agents read; windows default to a recent span and page sizes are bounded in the
//! schema. The toolkit checks parameters, seals cursors and caps output.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::{query_error, DatadogClient};
use crate::CONNECTOR_ID;

/// The most metric series `query_metrics` returns.
pub const MAX_SERIES: usize = 100;

/// Datadog's page size for `GET /api/v1/events`.
const EVENTS_PER_PAGE: usize = 1000;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_, '_>,
    /// Search logs (POST /api/v2/logs/events/search); newest first over the last 15 minutes by default.
    read search_logs(LogsSearchParams), paged;
    /// Query metric timeseries (GET /api/v1/query) over the last hour by default; at most 100 series.
    read query_metrics(MetricsQueryParams);
    /// List monitors with their state (GET /api/v1/monitor), filtered by name, tags or group state.
    read list_monitors(MonitorsListParams), paged;
    /// Get one monitor by id with its query, options and state (GET /api/v1/monitor/{monitor_id}).
    read get_monitor(MonitorGetParams);
    /// List events such as alerts, deploys and config changes (GET /api/v1/events) over the last hour by default.
    read list_events(EventsListParams), paged;
    /// List hosts reporting to Datadog with their apps, tags and mute state (GET /api/v1/hosts).
    read list_hosts(HostsListParams), paged;
    /// List Datadog incidents with their state and severity (GET /api/v2/incidents).
    read list_incidents(IncidentsListParams), paged;
}

/// The application-key permission each operation needs, by operation name; when
/// Datadog refuses the stored keys, the error's hint names it.
pub(crate) const REQUIRED_PERMISSIONS: &[(&str, &str)] = &[
    ("search_logs", "logs_read_data"),
    ("query_metrics", "timeseries_query"),
    ("list_monitors", "monitors_read"),
    ("get_monitor", "monitors_read"),
    ("list_events", "events_read"),
    ("list_hosts", "hosts_read"),
    ("list_incidents", "incident_read"),
];

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
    /// Page to start at, from 0 (default 0); later pages come with `cursor`.
    #[serde(default)]
    pub page: Option<u32>,
    /// Monitors per page, 1 to 1000 (default 100).
    #[serde(default = "default_page_size")]
    #[schemars(range(min = 1, max = 1000))]
    pub page_size: u32,
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
    /// Page to start at, from 0; Datadog pages only unaggregated events, 1000 per page, and later pages come with `cursor`.
    #[serde(default)]
    pub page: Option<u32>,
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
    /// Offset of the first host to return (default 0); later pages come with `cursor`.
    #[serde(default)]
    pub start: Option<u32>,
    /// Only hosts that reported since this time: `now-1h`, an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub from: Option<TimeBound>,
}

/// Parameters of `list_incidents`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentsListParams {
    /// Incidents per page, 1 to 100 (default 25).
    #[serde(default = "default_incidents_page_size")]
    #[schemars(range(min = 1, max = 100))]
    pub page_size: u32,
    /// Offset of the first incident to return (default 0); later pages come with `cursor`.
    #[serde(default)]
    pub page_offset: Option<u32>,
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

/// Runs the operations for one connection's keys, resolving relative times against `now`.
pub struct Api<'c, 'a> {
    client: &'c DatadogClient<'a>,
    now: DateTime<Utc>,
}

impl<'c, 'a> Api<'c, 'a> {
    /// The operations over `client`, with `now` as the end of default windows.
    pub fn new(client: &'c DatadogClient<'a>, now: DateTime<Utc>) -> Self {
        Self { client, now }
    }

    /// A call of `operation`, carrying the permission it needs.
    fn call(&self, operation: &str) -> Result<Call<'c, 'a>> {
        let (operation, permission) = REQUIRED_PERMISSIONS
            .iter()
            .copied()
            .find(|(name, _)| *name == operation)
            .ok_or_else(|| {
                Error::internal(format!(
                    "no Datadog permission is declared for `{operation}`"
                ))
                .with_connector(CONNECTOR_ID)
            })?;
        Ok(Call {
            client: self.client,
            operation,
            permission,
        })
    }

    async fn search_logs(
        &self,
        params: LogsSearchParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let call = self.call("search_logs")?;
        let range = TimeRange::resolve(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::minutes(15),
            self.now,
        )?;
        let mut page = json!({ "limit": params.limit });
        if let Some(cursor) = cursor {
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
        let response = call
            .post_search("/api/v2/logs/events/search", &body)
            .await?;
        let logs: Vec<Value> = items(&response, "data")
            .into_iter()
            .map(flatten_log)
            .collect();
        let after = response
            .pointer("/meta/page/after")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(OperationOutput::new(json!({ "logs": logs })).with_next_page(after))
    }

    async fn query_metrics(&self, params: MetricsQueryParams) -> Result<OperationOutput> {
        let call = self.call("query_metrics")?;
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
        let response = call
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
        let mut data = Map::new();
        for key in ["query", "from_date", "to_date", "res_type", "group_by"] {
            if let Some(value) = response.get(key) {
                data.insert(key.to_owned(), value.clone());
            }
        }
        data.insert("series".to_owned(), Value::Array(series));
        Ok(OperationOutput::new(Value::Object(data)).truncated(too_many))
    }

    async fn list_monitors(
        &self,
        params: MonitorsListParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let call = self.call("list_monitors")?;
        let page = call.position(cursor)?.or(params.page).unwrap_or(0);
        let mut query = vec![
            ("page", page.to_string()),
            ("page_size", params.page_size.to_string()),
        ];
        push_text(&mut query, "name", params.name);
        push_text(&mut query, "tags", params.tags);
        push_text(&mut query, "monitor_tags", params.monitor_tags);
        push_text(&mut query, "group_states", params.group_states);
        let response = call.get("/api/v1/monitor", &query).await?;
        let monitors = response.as_array().cloned().unwrap_or_default();
        let full_page = monitors.len() >= params.page_size as usize;
        Ok(OperationOutput::new(json!({ "monitors": monitors }))
            .with_next_page(full_page.then(|| (page + 1).to_string())))
    }

    async fn get_monitor(&self, params: MonitorGetParams) -> Result<OperationOutput> {
        let call = self.call("get_monitor")?;
        let mut query = Vec::new();
        push_text(&mut query, "group_states", params.group_states);
        let path = format!("/api/v1/monitor/{}", params.monitor_id);
        let monitor = call.get(&path, &query).await.map_err(|error| {
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
        Ok(OperationOutput::new(monitor))
    }

    async fn list_events(
        &self,
        params: EventsListParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let call = self.call("list_events")?;
        let range = TimeRange::resolve_fields(
            ("start", params.start.as_ref()),
            ("end", params.end.as_ref()),
            TimeDelta::hours(1),
            self.now,
        )?;
        let page = call.position(cursor)?.or(params.page);
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
        let response = call.get("/api/v1/events", &query).await?;
        let events = items(&response, "events");
        let full_page = events.len() >= EVENTS_PER_PAGE;
        let next_page = (full_page && unaggregated).then(|| (page.unwrap_or(0) + 1).to_string());
        Ok(OperationOutput::new(json!({ "events": events }))
            .with_next_page(next_page)
            // Aggregated results cannot be paged: a full page means some were left out.
            .truncated(full_page && !unaggregated))
    }

    async fn list_hosts(
        &self,
        params: HostsListParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let call = self.call("list_hosts")?;
        let start = call.position(cursor)?.or(params.start).unwrap_or(0);
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
        let response = call.get("/api/v1/hosts", &query).await?;
        let hosts = items(&response, "host_list");
        let returned = hosts.len() as u64;
        let total_matching = response.get("total_matching").and_then(Value::as_u64);
        let next_start = u64::from(start) + returned;
        let next_page = match total_matching {
            Some(total) if returned > 0 && next_start < total => Some(next_start.to_string()),
            _ => None,
        };
        Ok(OperationOutput::new(json!({
            "hosts": hosts,
            "total_matching": total_matching,
            "total_returned": returned,
        }))
        .with_next_page(next_page))
    }

    async fn list_incidents(
        &self,
        params: IncidentsListParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let call = self.call("list_incidents")?;
        let offset = call.position(cursor)?.or(params.page_offset).unwrap_or(0);
        let response = call
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
        Ok(OperationOutput::new(json!({ "incidents": incidents }))
            .with_next_page(full_page.then(|| next_offset.to_string())))
    }
}

/// One operation's requests to Datadog: named in spans by the operation, and
/// mapping a refusal of the stored keys to a hint naming the permission it needs.
struct Call<'c, 'a> {
    client: &'c DatadogClient<'a>,
    operation: &'static str,
    permission: &'static str,
}

impl Call<'_, '_> {
    async fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value> {
        self.client
            .get(self.operation, path, query)
            .await
            .map_err(|error| query_error(error, self.permission))
    }

    async fn post_search(&self, path: &str, body: &Value) -> Result<Value> {
        self.client
            .post_search(self.operation, path, body)
            .await
            .map_err(|error| query_error(error, self.permission))
    }

    /// The page number or offset a provider cursor of this operation carries. Only
    /// this module writes those cursors, so any other value was not issued here.
    fn position(&self, cursor: Option<String>) -> Result<Option<u32>> {
        cursor
            .map(|cursor| {
                cursor.parse().map_err(|_| {
                    Error::invalid_input(
                        "cursor",
                        format!(
                            "`cursor` must be a `next_cursor` that `{}` returned",
                            self.operation
                        ),
                    )
                    .with_connector(CONNECTOR_ID)
                    .with_hint("pass back the `next_cursor` of the previous page unchanged")
                })
            })
            .transpose()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_names_the_permission_it_needs_and_no_other_is_named() {
        let mut named: Vec<&str> = REQUIRED_PERMISSIONS
            .iter()
            .map(|(operation, _)| *operation)
            .collect();
        named.sort_unstable();
        let mut declared = OPERATION_NAMES.to_vec();
        declared.sort_unstable();
        assert_eq!(named, declared);
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
