//! Read-only query operations over the Grafana HTTP API, declared once with
//! [`patchbay_core::operations!`].
//!
//! Every operation's parameters are a struct whose doc comments become the schema
//! agents read. Windows default to a recent span and are capped; page sizes are
//! bounded in the schema; `query_datasource` caps series, points and log lines.
//! The toolkit checks parameters, seals cursors and caps output bytes.

use chrono::{DateTime, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::GrafanaClient;
use crate::CONNECTOR_ID;

/// The most series `query_datasource` returns.
pub const MAX_SERIES: u32 = 100;
/// The most points kept per series.
pub const MAX_POINTS_PER_SERIES: usize = 500;
/// The most log lines `query_datasource` returns.
pub const MAX_LOG_LINES: u32 = 1000;
/// The widest window `query_datasource` and `list_annotations` accept.
pub const MAX_WINDOW: TimeDelta = TimeDelta::days(7);
/// Bytes of frame data `query_datasource` keeps before it stops adding series.
pub const MAX_QUERY_BYTES: usize = 200 * 1024;
/// The most dashboards `search_dashboards` pages through (Grafana caps `page * limit`).
pub const MAX_SEARCH_PAGES: u32 = 50;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_>,
    /// Search dashboards by title and tags (GET /api/search?type=dash-db), a page at a time.
    read search_dashboards(SearchDashboardsParams), paged;
    /// Get one dashboard by uid: its panels with their queries and data sources, and its variables (GET /api/dashboards/uid/{uid}).
    read get_dashboard(GetDashboardParams);
    /// List data sources with their uid, name and type (GET /api/datasources); query them with query_datasource.
    read list_datasources(ListDatasourcesParams);
    /// Run a PromQL or LogQL query against a Prometheus or Loki data source (POST /api/ds/query) over the last hour by default; at most 100 series.
    read query_datasource(QueryDatasourceParams);
    /// List Grafana-managed alert rules with their state and health (GET /api/prometheus/grafana/api/v1/rules), a page of rule groups at a time.
    read list_alert_rules(ListAlertRulesParams), paged;
    /// List alerts currently firing in Grafana's Alertmanager (GET /api/alertmanager/grafana/api/v2/alerts).
    read list_active_alerts(ListActiveAlertsParams);
    /// List annotations (deploys, incidents, alert state changes) over the last 24 hours by default, newest first (GET /api/annotations).
    read list_annotations(ListAnnotationsParams), paged;
}

/// The Grafana RBAC permission each operation needs, by operation name; a 403
/// names it and the role that grants it, and validation checks each.
pub const REQUIRED_PERMISSIONS: &[(&str, &str)] = &[
    ("search_dashboards", "dashboards:read"),
    ("get_dashboard", "dashboards:read"),
    ("list_datasources", "datasources:read"),
    ("query_datasource", "datasources:query"),
    ("list_alert_rules", "alert.rules:read"),
    ("list_active_alerts", "alert.instances:read"),
    ("list_annotations", "annotations:read"),
];

fn permission_of(operation: &str) -> Option<&'static str> {
    REQUIRED_PERMISSIONS
        .iter()
        .find(|(name, _)| *name == operation)
        .map(|(_, permission)| *permission)
}

/// Parameters of `search_dashboards`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchDashboardsParams {
    /// Text the dashboard title contains; empty lists every dashboard.
    #[serde(default)]
    pub query: Option<String>,
    /// Tags every returned dashboard has, e.g. `["kubernetes", "prod"]`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only dashboards in these folders (folder uids).
    #[serde(default)]
    pub folder_uids: Vec<String>,
    /// Only starred dashboards.
    #[serde(default)]
    pub starred: bool,
    /// Dashboards per page, 1 to 100 (default 50).
    #[serde(default = "default_search_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

fn default_search_limit() -> u32 {
    50
}

/// Parameters of `get_dashboard`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetDashboardParams {
    /// The dashboard's uid (from search_dashboards, or the part after `/d/` in its URL).
    pub uid: String,
}

/// Parameters of `list_datasources`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListDatasourcesParams {
    /// Only data sources of this type, e.g. `prometheus` or `loki`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// The kind of data source `query_datasource` builds its query for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatasourceType {
    /// Prometheus (and Prometheus-compatible: Mimir, Cortex, Thanos): `expr` is PromQL.
    Prometheus,
    /// Loki: `expr` is LogQL.
    Loki,
}

/// Parameters of `query_datasource`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryDatasourceParams {
    /// The data source's uid (from list_datasources or a dashboard panel).
    pub datasource_uid: String,
    /// The query: PromQL for Prometheus, e.g. `sum by (job) (rate(http_requests_total{code=~"5.."}[5m]))`; LogQL for Loki, e.g. `{app="checkout"} |= "error"`.
    pub expr: String,
    /// `prometheus` or `loki`; looked up from the data source when omitted.
    #[serde(default, rename = "datasource_type")]
    pub datasource_type: Option<DatasourceType>,
    /// Start of the window: `now-1h` (default), an RFC 3339 time, or epoch seconds; at most 7 days before `to`.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Evaluate once at `to` instead of over the window (Prometheus instant query).
    #[serde(default)]
    pub instant: bool,
    /// Series to return, 1 to 100 (default 100); more are cut and `truncated` is set.
    #[serde(default = "default_max_series")]
    #[schemars(range(min = 1, max = 100))]
    pub max_series: u32,
    /// Points per series Grafana computes, 10 to 500 (default 200).
    #[serde(default = "default_max_points")]
    #[schemars(range(min = 10, max = 500))]
    pub max_data_points: u32,
    /// Log lines for Loki queries, 1 to 1000 (default 100).
    #[serde(default = "default_max_lines")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_lines: u32,
}

fn default_max_series() -> u32 {
    MAX_SERIES
}

fn default_max_points() -> u32 {
    200
}

fn default_max_lines() -> u32 {
    100
}

/// The state of an alert rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleState {
    /// At least one instance fires.
    Firing,
    /// At least one instance is pending (waiting out its `for` duration).
    Pending,
    /// Nothing fires.
    Inactive,
}

impl RuleState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Firing => "firing",
            Self::Pending => "pending",
            Self::Inactive => "inactive",
        }
    }
}

/// Parameters of `list_alert_rules`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAlertRulesParams {
    /// Only rules in this state: `firing`, `pending` or `inactive`.
    #[serde(default)]
    pub state: Option<RuleState>,
    /// Only rules whose name contains this text (case-insensitive).
    #[serde(default)]
    pub rule_name: Option<String>,
    /// Only rules in this folder (its title).
    #[serde(default)]
    pub folder: Option<String>,
    /// Rule groups per page, 1 to 100 (default 20).
    #[serde(default = "default_group_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub group_limit: u32,
}

fn default_group_limit() -> u32 {
    20
}

/// Parameters of `list_active_alerts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListActiveAlertsParams {
    /// Label matchers every alert must meet, e.g. `["severity=\"critical\"", "service=~\"check.*\""]`.
    #[serde(default)]
    pub filter: Vec<String>,
    /// Include silenced alerts (default false).
    #[serde(default)]
    pub silenced: bool,
    /// Include inhibited alerts (default false).
    #[serde(default)]
    pub inhibited: bool,
    /// Alerts to return, 1 to 500 (default 100); more set `truncated`.
    #[serde(default = "default_alerts_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

fn default_alerts_limit() -> u32 {
    100
}

/// The kind of annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnnotationType {
    /// Alert state changes.
    Alert,
    /// Annotations people or tools added (deploys, incidents).
    Annotation,
}

/// Parameters of `list_annotations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAnnotationsParams {
    /// Start of the window: `now-24h` (default), an RFC 3339 time, or epoch seconds; at most 7 days before `to`.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Tags every annotation has, e.g. `["deploy"]`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Only annotations of this dashboard (its uid).
    #[serde(default)]
    pub dashboard_uid: Option<String>,
    /// Only `alert` or only `annotation` annotations.
    #[serde(default, rename = "type")]
    pub kind: Option<AnnotationType>,
    /// Annotations per page, 1 to 500 (default 100).
    #[serde(default = "default_annotations_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

fn default_annotations_limit() -> u32 {
    100
}

/// Runs the operations for one connection, resolving relative times against `now`.
pub struct Api<'a> {
    client: GrafanaClient<'a>,
    now: DateTime<Utc>,
}

impl<'a> Api<'a> {
    /// The operations over `client`, with `now` as the end of default windows.
    pub fn new(client: GrafanaClient<'a>, now: DateTime<Utc>) -> Self {
        Self { client, now }
    }

    async fn get(
        &self,
        operation: &'static str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<Value> {
        self.client
            .get(operation, segments, query, permission_of(operation))
            .await
    }

    fn window(
        &self,
        from: Option<&TimeBound>,
        to: Option<&TimeBound>,
        lookback: TimeDelta,
    ) -> Result<TimeRange> {
        let range = TimeRange::resolve(from, to, lookback, self.now)?;
        if range.to - range.from > MAX_WINDOW {
            return Err(Error::invalid_input(
                "from",
                "the window from `from` to `to` may span at most 7 days",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("narrow the window, e.g. from `now-24h`"));
        }
        Ok(range)
    }

    async fn search_dashboards(
        &self,
        params: SearchDashboardsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let page = page_number(cursor.as_deref())?;
        let mut query = vec![
            ("type", "dash-db".to_owned()),
            ("limit", params.limit.to_string()),
            ("page", page.to_string()),
        ];
        if let Some(text) = params
            .query
            .as_deref()
            .filter(|text| !text.trim().is_empty())
        {
            query.push(("query", text.trim().to_owned()));
        }
        for tag in &params.tags {
            query.push(("tag", tag.clone()));
        }
        for folder in &params.folder_uids {
            query.push(("folderUIDs", folder.clone()));
        }
        if params.starred {
            query.push(("starred", "true".to_owned()));
        }
        let body = self
            .get("search_dashboards", &["api", "search"], &query)
            .await?;
        let hits = body.as_array().cloned().unwrap_or_default();
        let full_page = hits.len() >= params.limit as usize;
        let dashboards: Vec<Value> = hits
            .iter()
            .map(|hit| {
                pick(
                    hit,
                    &["uid", "title", "url", "tags", "folderUid", "folderTitle"],
                )
            })
            .collect();
        let next = (full_page && page < MAX_SEARCH_PAGES).then(|| (page + 1).to_string());
        let mut output = OperationOutput::new(json!({ "dashboards": dashboards }));
        if full_page && page >= MAX_SEARCH_PAGES {
            output = output.truncated(true);
        }
        Ok(output.with_next_page(next))
    }

    async fn get_dashboard(&self, params: GetDashboardParams) -> Result<OperationOutput> {
        let uid = required_text("uid", &params.uid)?;
        let body = self
            .get("get_dashboard", &["api", "dashboards", "uid", uid], &[])
            .await?;
        let dashboard = body.get("dashboard").cloned().unwrap_or(Value::Null);
        let meta = body.get("meta").cloned().unwrap_or(Value::Null);
        let mut panels = Vec::new();
        collect_panels(dashboard.get("panels"), None, &mut panels);
        let variables: Vec<Value> = dashboard
            .pointer("/templating/list")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .map(|variable| pick(variable, &["name", "type", "query", "datasource"]))
                    .collect()
            })
            .unwrap_or_default();
        Ok(OperationOutput::new(json!({
            "uid": dashboard.get("uid"),
            "title": dashboard.get("title"),
            "tags": dashboard.get("tags"),
            "url": meta.get("url"),
            "folder": meta.get("folderTitle"),
            "updated": meta.get("updated"),
            "version": dashboard.get("version"),
            "time": dashboard.get("time"),
            "variables": variables,
            "panels": panels,
        })))
    }

    async fn list_datasources(&self, params: ListDatasourcesParams) -> Result<OperationOutput> {
        let body = self
            .get("list_datasources", &["api", "datasources"], &[])
            .await?;
        let datasources: Vec<Value> = body
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|source| {
                params
                    .kind
                    .as_deref()
                    .is_none_or(|kind| source.get("type").and_then(Value::as_str) == Some(kind))
            })
            .map(|source| pick(source, &["uid", "name", "type", "isDefault", "access"]))
            .collect();
        Ok(OperationOutput::new(json!({ "datasources": datasources })))
    }

    /// The type of the data source `uid`, as Grafana reports it.
    async fn datasource_type(&self, uid: &str) -> Result<Option<DatasourceType>> {
        let body = self
            .client
            .get(
                "query_datasource",
                &["api", "datasources", "uid", uid],
                &[],
                Some("datasources:read"),
            )
            .await;
        let body = match body {
            Ok(body) => body,
            Err(error) if error.kind() == patchbay_core::ErrorKind::PermissionDenied => {
                return Err(Error::new(
                    patchbay_core::ErrorKind::PermissionDenied,
                    format!("Grafana would not say which type data source `{uid}` is"),
                )
                .with_connector(CONNECTOR_ID)
                .with_field("datasource_type")
                .with_hint("pass datasource_type `prometheus` or `loki`"))
            }
            Err(error) => return Err(error),
        };
        Ok(match body.get("type").and_then(Value::as_str) {
            Some("prometheus") => Some(DatasourceType::Prometheus),
            Some("loki") => Some(DatasourceType::Loki),
            _ => None,
        })
    }

    async fn query_datasource(&self, params: QueryDatasourceParams) -> Result<OperationOutput> {
        let uid = required_text("datasource_uid", &params.datasource_uid)?;
        let expr = required_text("expr", &params.expr)?;
        let range = self.window(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(1),
        )?;
        let kind = match params.datasource_type {
            Some(kind) => kind,
            None => self.datasource_type(uid).await?.ok_or_else(|| {
                Error::invalid_input(
                    "datasource_uid",
                    format!("data source `{uid}` is neither Prometheus nor Loki"),
                )
                .with_connector(CONNECTOR_ID)
                .with_hint(
                    "query_datasource runs PromQL and LogQL; pick a Prometheus or Loki data source",
                )
            })?,
        };
        let span_ms = (range.to - range.from).num_milliseconds().max(1000);
        let interval_ms = (span_ms / i64::from(params.max_data_points)).max(1000);
        let mut query = json!({
            "refId": "A",
            "datasource": {"uid": uid, "type": kind},
            "expr": expr,
            "maxDataPoints": params.max_data_points,
            "intervalMs": interval_ms,
        });
        match kind {
            DatasourceType::Prometheus => {
                query["range"] = json!(!params.instant);
                query["instant"] = json!(params.instant);
            }
            DatasourceType::Loki => {
                query["queryType"] = json!(if params.instant { "instant" } else { "range" });
                query["maxLines"] = json!(params.max_lines);
            }
        }
        let body = json!({
            "queries": [query],
            "from": range.from.timestamp_millis().to_string(),
            "to": range.to.timestamp_millis().to_string(),
        });
        let response = self
            .client
            .post_read(
                "query_datasource",
                &["api", "ds", "query"],
                &body,
                permission_of("query_datasource"),
            )
            .await?;
        let answer: Value = response.json()?;
        let result = answer.pointer("/results/A").cloned().unwrap_or(Value::Null);
        if let Some(message) = result.get("error").and_then(Value::as_str) {
            return Err(Error::invalid_input(
                "expr",
                format!("Grafana could not run the query: {}", cut(message, 500)),
            )
            .with_connector(CONNECTOR_ID)
            .with_provider_status(response.status.as_u16())
            .with_hint("fix the query; the message is the data source's own"));
        }
        let frames = result
            .get("frames")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let shaped = shape_frames(&frames, kind, params.max_series, params.max_lines);
        let mut output = OperationOutput::new(json!({
            "datasource_uid": uid,
            "datasource_type": kind,
            "from": range.from.to_rfc3339(),
            "to": range.to.to_rfc3339(),
            "series": shaped.series,
            "lines": shaped.lines,
            "series_total": shaped.series_total,
        }));
        if shaped.truncated {
            output = output.truncated(true);
        }
        Ok(output)
    }

    async fn list_alert_rules(
        &self,
        params: ListAlertRulesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = vec![("group_limit", params.group_limit.to_string())];
        if let Some(token) = cursor {
            query.push(("group_next_token", token));
        }
        if let Some(state) = params.state {
            query.push(("state", state.as_str().to_owned()));
        }
        let body = self
            .get(
                "list_alert_rules",
                &["api", "prometheus", "grafana", "api", "v1", "rules"],
                &query,
            )
            .await?;
        let groups = body
            .pointer("/data/groups")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let name_filter = params
            .rule_name
            .as_deref()
            .map(|name| name.trim().to_lowercase())
            .filter(|name| !name.is_empty());
        let mut rules = Vec::new();
        for group in &groups {
            let folder = group.get("file").and_then(Value::as_str);
            if params
                .folder
                .as_deref()
                .is_some_and(|wanted| folder != Some(wanted))
            {
                continue;
            }
            for rule in group
                .get("rules")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let state = rule.get("state").and_then(Value::as_str);
                if params
                    .state
                    .is_some_and(|wanted| state != Some(wanted.as_str()))
                {
                    continue;
                }
                let name = rule.get("name").and_then(Value::as_str).unwrap_or_default();
                if name_filter
                    .as_deref()
                    .is_some_and(|wanted| !name.to_lowercase().contains(wanted))
                {
                    continue;
                }
                let alerts = rule.get("alerts").and_then(Value::as_array);
                rules.push(json!({
                    "name": name,
                    "uid": rule.pointer("/labels/__alert_rule_uid__").or_else(|| rule.get("uid")),
                    "folder": folder,
                    "group": group.get("name"),
                    "state": state,
                    "health": rule.get("health"),
                    "last_error": rule.get("lastError").filter(|error| error.as_str() != Some("")),
                    "query": rule.get("query").and_then(Value::as_str).map(|query| cut(query, 2000)),
                    "labels": rule.get("labels"),
                    "annotations": rule.get("annotations"),
                    "last_evaluation": rule.get("lastEvaluation"),
                    "active_instances": alerts.map_or(0, Vec::len),
                }));
            }
        }
        let next = body
            .pointer("/data/groupNextToken")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        Ok(OperationOutput::new(json!({ "rules": rules })).with_next_page(next))
    }

    async fn list_active_alerts(&self, params: ListActiveAlertsParams) -> Result<OperationOutput> {
        let mut query = vec![
            ("active", "true".to_owned()),
            ("silenced", params.silenced.to_string()),
            ("inhibited", params.inhibited.to_string()),
        ];
        for matcher in &params.filter {
            query.push(("filter", matcher.clone()));
        }
        let body = self
            .get(
                "list_active_alerts",
                &["api", "alertmanager", "grafana", "api", "v2", "alerts"],
                &query,
            )
            .await?;
        let all = body.as_array().cloned().unwrap_or_default();
        let total = all.len();
        let alerts: Vec<Value> = all
            .iter()
            .take(params.limit as usize)
            .map(|alert| {
                json!({
                    "fingerprint": alert.get("fingerprint"),
                    "state": alert.pointer("/status/state"),
                    "labels": alert.get("labels"),
                    "annotations": alert.get("annotations"),
                    "starts_at": alert.get("startsAt"),
                    "updated_at": alert.get("updatedAt"),
                    "generator_url": alert.get("generatorURL"),
                    "silenced_by": alert.pointer("/status/silencedBy"),
                })
            })
            .collect();
        let mut output = OperationOutput::new(json!({ "alerts": alerts, "total": total }));
        if total > params.limit as usize {
            output = output.truncated(true);
        }
        Ok(output)
    }

    async fn list_annotations(
        &self,
        params: ListAnnotationsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let range = self.window(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(24),
        )?;
        let from_ms = range.from.timestamp_millis();
        // Grafana has no offset for annotations: a page ends at the oldest one the
        // previous page returned, so the cursor carries that time (exclusive).
        let to_ms = match cursor {
            Some(cursor) => cursor.parse::<i64>().map_err(|_| {
                Error::internal("the annotations cursor is not a time").with_connector(CONNECTOR_ID)
            })?,
            None => range.to.timestamp_millis(),
        };
        let mut query = vec![
            ("from", from_ms.to_string()),
            ("to", to_ms.to_string()),
            ("limit", params.limit.to_string()),
        ];
        for tag in &params.tags {
            query.push(("tags", tag.clone()));
        }
        if let Some(uid) = params
            .dashboard_uid
            .as_deref()
            .filter(|uid| !uid.trim().is_empty())
        {
            query.push(("dashboardUID", uid.trim().to_owned()));
        }
        if let Some(kind) = params.kind {
            let kind = match kind {
                AnnotationType::Alert => "alert",
                AnnotationType::Annotation => "annotation",
            };
            query.push(("type", kind.to_owned()));
        }
        let body = self
            .get("list_annotations", &["api", "annotations"], &query)
            .await?;
        let items = body.as_array().cloned().unwrap_or_default();
        let oldest = items
            .iter()
            .filter_map(|item| item.get("time").and_then(Value::as_i64))
            .min();
        let annotations: Vec<Value> = items
            .iter()
            .map(|item| {
                json!({
                    "id": item.get("id"),
                    "time": item.get("time").and_then(Value::as_i64).and_then(rfc3339_ms),
                    "time_end": item
                        .get("timeEnd")
                        .and_then(Value::as_i64)
                        .filter(|end| Some(*end) != item.get("time").and_then(Value::as_i64))
                        .and_then(rfc3339_ms),
                    "text": item.get("text").and_then(Value::as_str).map(|text| cut(text, 2000)),
                    "tags": item.get("tags"),
                    "dashboard_uid": item.get("dashboardUID"),
                    "panel_id": item.get("panelId"),
                    "alert_name": item.get("alertName").filter(|name| name.as_str() != Some("")),
                    "new_state": item.get("newState").filter(|state| state.as_str() != Some("")),
                    "login": item.get("login"),
                })
            })
            .collect();
        let next = (items.len() >= params.limit as usize)
            .then_some(oldest)
            .flatten()
            .filter(|oldest| *oldest > from_ms)
            .map(|oldest| (oldest - 1).to_string());
        Ok(OperationOutput::new(json!({ "annotations": annotations })).with_next_page(next))
    }
}

fn page_number(cursor: Option<&str>) -> Result<u32> {
    match cursor {
        None => Ok(1),
        Some(page) => page.parse().map_err(|_| {
            Error::internal("the search cursor is not a page number").with_connector(CONNECTOR_ID)
        }),
    }
}

fn required_text<'p>(field: &str, value: &'p str) -> Result<&'p str> {
    let value = value.trim();
    if value.is_empty() {
        return Err(
            Error::invalid_input(field, format!("`{field}` must not be empty"))
                .with_connector(CONNECTOR_ID),
        );
    }
    Ok(value)
}

fn rfc3339_ms(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(|time| time.to_rfc3339())
}

/// `value`'s fields named in `keys`, skipping absent ones.
fn pick(value: &Value, keys: &[&str]) -> Value {
    let mut picked = Map::new();
    for key in keys {
        if let Some(field) = value.get(*key) {
            picked.insert((*key).to_owned(), field.clone());
        }
    }
    Value::Object(picked)
}

fn cut(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Panels with their queries, flattening rows (which nest their panels).
fn collect_panels(panels: Option<&Value>, row: Option<&str>, out: &mut Vec<Value>) {
    for panel in panels
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if panel.get("type").and_then(Value::as_str) == Some("row") {
            let title = panel.get("title").and_then(Value::as_str);
            collect_panels(panel.get("panels"), title, out);
            continue;
        }
        let targets: Vec<Value> = panel
            .get("targets")
            .and_then(Value::as_array)
            .map(|targets| {
                targets
                    .iter()
                    .map(|target| pick(target, &["refId", "expr", "query", "rawSql", "datasource"]))
                    .collect()
            })
            .unwrap_or_default();
        out.push(json!({
            "id": panel.get("id"),
            "title": panel.get("title"),
            "type": panel.get("type"),
            "row": row,
            "datasource": panel.get("datasource"),
            "targets": targets,
        }));
    }
}

/// Frames reshaped for reading: numeric series as `[time, value]` points, log
/// frames as lines, within the series, line, point and byte caps.
struct Shaped {
    series: Vec<Value>,
    lines: Vec<Value>,
    series_total: usize,
    truncated: bool,
}

fn shape_frames(frames: &[Value], kind: DatasourceType, max_series: u32, max_lines: u32) -> Shaped {
    let mut shaped = Shaped {
        series: Vec::new(),
        lines: Vec::new(),
        series_total: 0,
        truncated: false,
    };
    let mut bytes = 0usize;
    for frame in frames {
        let fields = frame
            .pointer("/schema/fields")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let values = frame
            .pointer("/data/values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let index_of = |name: &str| {
            fields
                .iter()
                .position(|field| field.get("name").and_then(Value::as_str) == Some(name))
        };
        let is_logs = kind == DatasourceType::Loki && index_of("Line").is_some();
        if is_logs {
            let (Some(line), Some(time)) = (index_of("Line"), index_of("Time")) else {
                continue;
            };
            let labels = index_of("labels");
            let column = |index: usize| values.get(index).and_then(Value::as_array);
            let count = column(line).map_or(0, Vec::len);
            for row in 0..count {
                if shaped.lines.len() >= max_lines as usize || bytes > MAX_QUERY_BYTES {
                    shaped.truncated = true;
                    break;
                }
                let entry = json!({
                    "time": column(time).and_then(|times| times.get(row)).and_then(Value::as_i64).and_then(rfc3339_ms),
                    "line": column(line).and_then(|lines| lines.get(row)).and_then(Value::as_str).map(|text| cut(text, 4000)),
                    "labels": labels.and_then(&column).and_then(|labels| labels.get(row)),
                });
                bytes += entry.to_string().len();
                shaped.lines.push(entry);
            }
            continue;
        }
        let Some(time) = fields
            .iter()
            .position(|field| field.get("type").and_then(Value::as_str) == Some("time"))
        else {
            continue;
        };
        let times = values.get(time).and_then(Value::as_array);
        for (index, field) in fields.iter().enumerate() {
            if index == time || field.get("type").and_then(Value::as_str) != Some("number") {
                continue;
            }
            shaped.series_total += 1;
            if shaped.series.len() >= max_series as usize || bytes > MAX_QUERY_BYTES {
                shaped.truncated = true;
                continue;
            }
            let column = values.get(index).and_then(Value::as_array);
            let count = column.map_or(0, Vec::len);
            let skip = count.saturating_sub(MAX_POINTS_PER_SERIES);
            if skip > 0 {
                shaped.truncated = true;
            }
            let points: Vec<Value> = (skip..count)
                .map(|row| {
                    json!([
                        times
                            .and_then(|times| times.get(row))
                            .and_then(Value::as_i64)
                            .and_then(rfc3339_ms),
                        column.and_then(|column| column.get(row)),
                    ])
                })
                .collect();
            let series = json!({
                "name": field
                    .pointer("/config/displayNameFromDS")
                    .or_else(|| frame.pointer("/schema/name"))
                    .or_else(|| field.get("name")),
                "labels": field.get("labels").cloned().unwrap_or_else(|| json!({})),
                "points": points,
            });
            bytes += series.to_string().len();
            shaped.series.push(series);
        }
    }
    shaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_declares_its_permission() {
        for name in OPERATION_NAMES {
            assert!(permission_of(name).is_some(), "{name}");
        }
        assert_eq!(REQUIRED_PERMISSIONS.len(), OPERATION_NAMES.len());
    }

    #[test]
    fn rows_are_flattened_with_their_title() {
        let panels = json!([
            {"id": 1, "type": "timeseries", "title": "Latency", "targets": [{"refId": "A", "expr": "up"}]},
            {"id": 2, "type": "row", "title": "Errors", "panels": [
                {"id": 3, "type": "stat", "title": "5xx", "targets": []}
            ]},
        ]);
        let mut out = Vec::new();
        collect_panels(Some(&panels), None, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1]["row"], "Errors");
        assert_eq!(out[0]["targets"][0]["expr"], "up");
    }
}
