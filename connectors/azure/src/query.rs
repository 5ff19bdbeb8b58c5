//! Read-only query operations over Azure Resource Manager, Resource Graph, Azure
//! Monitor and Log Analytics, declared once with [`patchbay_core::operations!`].
//!
//! Collections follow ARM's `nextLink` (only on the Resource Manager's origin) for
//! at most [`MAX_PAGES`] pages per call; the opaque `next_cursor` carries the link
//! of the first page not read. Resource Graph pages with `$top`/`$skipToken`.
//! Windows default to a recent span and are capped.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::client::{Audience, AzureClient};
use crate::config::{check_guid, join, AzureConfig};
use crate::CONNECTOR_ID;

/// The most ARM pages one call reads.
pub const MAX_PAGES: usize = 5;
/// Resource Graph's largest `$top`.
pub const MAX_GRAPH_ROWS: u32 = 1000;
/// The most data points kept per metric time series.
pub const MAX_POINTS: usize = 500;
/// The longest metrics window, in hours (7 days).
pub const MAX_METRICS_HOURS: i64 = 168;
/// The longest activity-log window, in days (Azure keeps 90).
pub const MAX_ACTIVITY_DAYS: i64 = 90;
/// Resource Graph's API version.
pub const RESOURCE_GRAPH_API: &str = "2021-03-01";
/// Azure Monitor metrics' API version.
pub const METRICS_API: &str = "2018-01-01";
/// The activity log's API version.
pub const ACTIVITY_LOG_API: &str = "2015-04-01";
/// Alerts Management's API version.
pub const ALERTS_API: &str = "2019-05-05-preview";
/// AKS managed clusters' API version.
pub const AKS_API: &str = "2023-06-01";

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_>,
    /// Query Azure Resource Graph with KQL over the connection's subscription (or the ones given), e.g. `Resources | where type =~ 'microsoft.compute/virtualmachines' | project name, location, properties.hardwareProfile.vmSize`; `limit` rows per page ($top ≤ 1000), continued with $skipToken (POST /providers/Microsoft.ResourceGraph/resources).
    read query_resource_graph(ResourceGraphParams), paged;
    /// Query Azure Monitor platform metrics of one resource over the last hour by default (at most 7 days), e.g. `Percentage CPU` of a VM (GET {resourceId}/providers/Microsoft.Insights/metrics).
    read query_metrics(MetricsParams);
    /// List activity-log (control-plane) events of the subscription over the last 24 hours by default: who changed, deployed, deleted or restarted what (GET /subscriptions/{id}/providers/Microsoft.Insights/eventtypes/management/values).
    read list_activity_log(ActivityLogParams), paged;
    /// List Azure Monitor alerts of the subscription, newest first, by state, severity and monitor condition (GET /subscriptions/{id}/providers/Microsoft.AlertsManagement/alerts).
    read list_alerts(AlertsParams), paged;
    /// List the AKS (Kubernetes) clusters of the subscription with version, state, power state and node pools; never fetches cluster credentials (GET /subscriptions/{id}/providers/Microsoft.ContainerService/managedClusters).
    read list_aks_clusters(AksParams), paged;
    /// Run a KQL query against a Log Analytics workspace over the last 24 hours by default, e.g. `AzureActivity | summarize count() by OperationNameValue` (POST https://api.loganalytics.io/v1/workspaces/{id}/query).
    read query_log_analytics(LogAnalyticsParams);
}

fn default_graph_limit() -> u32 {
    100
}
fn default_limit() -> u32 {
    50
}
fn default_rows() -> u32 {
    200
}

/// Parameters of `query_resource_graph`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceGraphParams {
    /// The KQL query, e.g. `Resources | where type =~ 'microsoft.containerservice/managedclusters' | project id, name, location`.
    #[schemars(length(min = 1, max = 10000))]
    pub query: String,
    /// Subscription ids to query (default: the connection's subscription).
    #[serde(default)]
    #[schemars(length(max = 50))]
    pub subscriptions: Vec<String>,
    /// Rows per page, 1 to 1000 (default 100).
    #[serde(default = "default_graph_limit")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: u32,
}

/// How metric values are aggregated per interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Aggregation {
    /// The mean.
    Average,
    /// The smallest value.
    Minimum,
    /// The largest value.
    Maximum,
    /// The sum.
    Total,
    /// The number of samples.
    Count,
}

/// The width of each metrics data point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Interval {
    /// One minute.
    PT1M,
    /// Five minutes (default).
    #[default]
    PT5M,
    /// Fifteen minutes.
    PT15M,
    /// Thirty minutes.
    PT30M,
    /// One hour.
    PT1H,
    /// Six hours.
    PT6H,
    /// Twelve hours.
    PT12H,
    /// One day.
    P1D,
}

/// Parameters of `query_metrics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsParams {
    /// The full resource id, e.g. `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}`.
    #[schemars(length(min = 1, max = 1024))]
    pub resource_id: String,
    /// Metric names, e.g. `Percentage CPU`, `Available Memory Bytes` (1 to 20).
    #[schemars(length(min = 1, max = 20))]
    pub metric_names: Vec<String>,
    /// Start: `now-1h` (default), an RFC 3339 time, or epoch seconds; at most 7 days before `to`.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Data point width: PT1M, PT5M (default), PT15M, PT30M, PT1H, PT6H, PT12H, P1D.
    #[serde(default)]
    pub interval: Interval,
    /// Aggregations: Average (default), Minimum, Maximum, Total, Count.
    #[serde(default)]
    #[schemars(length(max = 5))]
    pub aggregations: Vec<Aggregation>,
    /// Metric namespace, e.g. `Microsoft.Compute/virtualMachines` (default: the resource's own).
    #[serde(default)]
    pub metric_namespace: Option<String>,
}

/// Parameters of `list_activity_log`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityLogParams {
    /// Start: `now-24h` (default), an RFC 3339 time, or epoch seconds; at most 90 days ago.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End: `now` (default).
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Only events of this resource group.
    #[serde(default)]
    pub resource_group: Option<String>,
    /// Only events of this resource id.
    #[serde(default)]
    pub resource_id: Option<String>,
    /// How many events to return, 1 to 500 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// An alert's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AlertState {
    /// Not yet looked at.
    New,
    /// Someone is on it.
    Acknowledged,
    /// Done.
    Closed,
}

/// An alert's severity, Sev0 the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Severity {
    /// Critical.
    Sev0,
    /// Error.
    Sev1,
    /// Warning.
    Sev2,
    /// Informational.
    Sev3,
    /// Verbose.
    Sev4,
}

/// Whether the alert's condition still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MonitorCondition {
    /// Still firing.
    Fired,
    /// Resolved.
    Resolved,
}

/// How far back alerts are listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TimeRangeName {
    /// The last hour.
    #[serde(rename = "1h")]
    Hour,
    /// The last day (default).
    #[default]
    #[serde(rename = "1d")]
    Day,
    /// The last week.
    #[serde(rename = "7d")]
    Week,
    /// The last 30 days.
    #[serde(rename = "30d")]
    Month,
}

impl TimeRangeName {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "1h",
            Self::Day => "1d",
            Self::Week => "7d",
            Self::Month => "30d",
        }
    }
}

/// Parameters of `list_alerts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertsParams {
    /// Only alerts in this state: New, Acknowledged, Closed.
    #[serde(default)]
    pub state: Option<AlertState>,
    /// Only alerts of this severity: Sev0 (critical) to Sev4.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Only alerts whose condition is Fired or Resolved.
    #[serde(default)]
    pub monitor_condition: Option<MonitorCondition>,
    /// How far back: 1h, 1d (default), 7d, 30d.
    #[serde(default)]
    pub time_range: TimeRangeName,
    /// Alerts per page, 1 to 250 (default 50).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 250))]
    pub limit: u32,
}

/// Parameters of `list_aks_clusters`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AksParams {
    /// Only clusters of this resource group.
    #[serde(default)]
    pub resource_group: Option<String>,
}

/// Parameters of `query_log_analytics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogAnalyticsParams {
    /// The workspace (customer) id, a GUID from the workspace's Overview page.
    pub workspace_id: String,
    /// The KQL query, e.g. `AzureDiagnostics | where TimeGenerated > ago(1h) | take 50`.
    #[schemars(length(min = 1, max = 10000))]
    pub query: String,
    /// Start: `now-24h` (default), an RFC 3339 time, or epoch seconds; at most 30 days before `to`.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End: `now` (default).
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Rows kept per table, 1 to 1000 (default 200).
    #[serde(default = "default_rows")]
    #[schemars(range(min = 1, max = 1000))]
    pub max_rows: u32,
}

/// The operations' handler: one client and the connection's settings.
pub struct Api<'a> {
    client: AzureClient<'a>,
    config: &'a AzureConfig,
    now: DateTime<Utc>,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Checks a resource group name (1–90 of letters, digits, `_-.()`, not ending in `.`).
fn check_resource_group(name: &str) -> Result<String> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 90
        && !name.ends_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(Error::invalid_input(
            "resource_group",
            "`resource_group` must be 1 to 90 letters, digits, `_`, `-`, `.`, `(` or `)`",
        ))
    }
}

/// Splits a resource id into its path segments, refusing anything that would leave
/// the subscription's resource tree (`..`, queries, fragments, other subscriptions).
pub fn resource_segments<'p>(
    field: &str,
    resource_id: &'p str,
    subscription: Option<&str>,
) -> Result<Vec<&'p str>> {
    let bad = |why: &str| {
        Error::invalid_input(
            field,
            format!("`{field}` must be a resource id such as /subscriptions/{{sub}}/resourceGroups/{{rg}}/providers/Microsoft.Compute/virtualMachines/{{vm}}: {why}"),
        )
    };
    let trimmed = resource_id.trim();
    let rest = trimmed
        .strip_prefix('/')
        .ok_or_else(|| bad("it starts with /subscriptions/"))?;
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.len() < 2 || !segments[0].eq_ignore_ascii_case("subscriptions") {
        return Err(bad("it starts with /subscriptions/"));
    }
    check_guid(field, segments[1], "subscription ID")
        .map_err(|_| bad("the subscription is not a GUID"))?;
    if let Some(expected) = subscription {
        if !segments[1].eq_ignore_ascii_case(expected) {
            return Err(bad("it is in another subscription than the connection's"));
        }
    }
    for segment in &segments {
        if segment.is_empty() || *segment == "." || *segment == ".." {
            return Err(bad("it has an empty, `.` or `..` segment"));
        }
        if segment
            .chars()
            .any(|c| c.is_control() || matches!(c, '?' | '#' | '%' | '\\'))
        {
            return Err(bad("it has a character not allowed in resource ids"));
        }
    }
    Ok(segments)
}

fn str_at(value: &Value, pointer: &str) -> Value {
    value.pointer(pointer).cloned().unwrap_or(Value::Null)
}

impl<'a> Api<'a> {
    /// A handler for the connection's settings.
    pub fn new(client: AzureClient<'a>, config: &'a AzureConfig, now: DateTime<Utc>) -> Self {
        Self {
            client,
            config,
            now,
        }
    }

    fn subscription(&self) -> Result<&str> {
        self.config.subscription_id.as_deref().ok_or_else(|| {
            Error::invalid_config(
                "subscription_id",
                "No Azure subscription found. Please configure your Azure subscription.",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("validate the connection again once the app has a role on a subscription")
        })
    }

    /// The first page's URL, or the page link from the cursor.
    fn page_url(
        &self,
        cursor: Option<String>,
        first: impl FnOnce() -> Result<url::Url>,
    ) -> Result<url::Url> {
        match cursor {
            Some(link) => self.client.next_link(&link),
            None => first(),
        }
    }

    async fn query_resource_graph(
        &self,
        params: ResourceGraphParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let subscriptions = if params.subscriptions.is_empty() {
            vec![self.subscription()?.to_owned()]
        } else {
            params
                .subscriptions
                .iter()
                .map(|id| check_guid("subscriptions", id, "subscription ID"))
                .collect::<Result<Vec<_>>>()
                .map_err(|error| {
                    Error::invalid_input("subscriptions", error.message().to_owned())
                })?
        };
        let mut options = json!({"$top": params.limit, "resultFormat": "objectArray"});
        if let Some(token) = &cursor {
            options["$skipToken"] = json!(token);
        }
        let body =
            json!({"subscriptions": subscriptions, "query": params.query, "options": options});
        let url = self.client.arm_url(
            &["providers", "Microsoft.ResourceGraph", "resources"],
            RESOURCE_GRAPH_API,
        )?;
        let answer = self
            .client
            .call(
                Audience::Arm,
                "query_resource_graph",
                &url,
                Some(&body),
                "the Resource Graph query",
            )
            .await?;
        let rows = answer.get("data").cloned().unwrap_or_else(|| json!([]));
        let next = answer
            .get("$skipToken")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        let truncated = answer
            .get("resultTruncated")
            .and_then(Value::as_str)
            .is_some_and(|text| text.eq_ignore_ascii_case("true"));
        Ok(OperationOutput::new(json!({
            "total_records": answer.get("totalRecords").cloned().unwrap_or(Value::Null),
            "count": answer.get("count").cloned().unwrap_or(Value::Null),
            "rows": rows,
        }))
        .with_next_page(next)
        .truncated(truncated))
    }

    async fn query_metrics(&self, params: MetricsParams) -> Result<OperationOutput> {
        let segments = resource_segments("resource_id", &params.resource_id, None)?;
        let range = TimeRange::resolve(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(1),
            self.now,
        )?;
        if range.to - range.from > TimeDelta::hours(MAX_METRICS_HOURS) {
            return Err(Error::invalid_input(
                "from",
                format!("the metrics window is at most {MAX_METRICS_HOURS} hours (7 days)"),
            )
            .with_hint("narrow `from`/`to`, or use a larger `interval` over several calls"));
        }
        for name in &params.metric_names {
            if name.trim().is_empty() || name.contains(',') || name.len() > 200 {
                return Err(Error::invalid_input(
                    "metric_names",
                    "each metric name is 1 to 200 characters without a comma",
                ));
            }
        }
        let mut all: Vec<&str> = segments;
        all.extend(["providers", "Microsoft.Insights", "metrics"]);
        let mut url = join(&self.client.endpoints().arm, &all)?;
        let aggregations: Vec<&str> = if params.aggregations.is_empty() {
            vec!["Average"]
        } else {
            params
                .aggregations
                .iter()
                .map(|aggregation| match aggregation {
                    Aggregation::Average => "Average",
                    Aggregation::Minimum => "Minimum",
                    Aggregation::Maximum => "Maximum",
                    Aggregation::Total => "Total",
                    Aggregation::Count => "Count",
                })
                .collect()
        };
        let interval = serde_json::to_value(params.interval)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_else(|| "PT5M".to_owned());
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("api-version", METRICS_API)
                .append_pair("metricnames", &params.metric_names.join(","))
                .append_pair(
                    "timespan",
                    &format!("{}/{}", rfc3339(range.from), rfc3339(range.to)),
                )
                .append_pair("interval", &interval)
                .append_pair("aggregation", &aggregations.join(","));
            if let Some(namespace) = &params.metric_namespace {
                query.append_pair("metricnamespace", namespace);
            }
        }
        let answer = self
            .client
            .call(
                Audience::Arm,
                "query_metrics",
                &url,
                None,
                "the resource's metrics",
            )
            .await?;
        let mut truncated = false;
        let metrics: Vec<Value> = answer
            .get("value")
            .and_then(Value::as_array)
            .map(|metrics| {
                metrics
                    .iter()
                    .map(|metric| {
                        let series: Vec<Value> = metric
                            .get("timeseries")
                            .and_then(Value::as_array)
                            .map(|series| {
                                series
                                    .iter()
                                    .map(|one| {
                                        let mut data: Vec<Value> = one
                                            .get("data")
                                            .and_then(Value::as_array)
                                            .cloned()
                                            .unwrap_or_default();
                                        if data.len() > MAX_POINTS {
                                            truncated = true;
                                            data.drain(..data.len() - MAX_POINTS);
                                        }
                                        json!({
                                            "dimensions": one.get("metadatavalues").cloned().unwrap_or(json!([])),
                                            "data": data,
                                        })
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        json!({
                            "name": str_at(metric, "/name/value"),
                            "unit": str_at(metric, "/unit"),
                            "timeseries": series,
                            "error_code": str_at(metric, "/errorCode"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(OperationOutput::new(json!({
            "resource_id": params.resource_id.trim(),
            "timespan": answer.get("timespan").cloned().unwrap_or(Value::Null),
            "interval": answer.get("interval").cloned().unwrap_or(json!(interval)),
            "metrics": metrics,
        }))
        .truncated(truncated))
    }

    async fn list_activity_log(
        &self,
        params: ActivityLogParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let subscription = self.subscription()?.to_owned();
        let range = TimeRange::resolve(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(24),
            self.now,
        )?;
        if self.now - range.from > TimeDelta::days(MAX_ACTIVITY_DAYS) {
            return Err(Error::invalid_input(
                "from",
                format!("the activity log keeps {MAX_ACTIVITY_DAYS} days; `from` is older"),
            ));
        }
        let mut filter = format!(
            "eventTimestamp ge '{}' and eventTimestamp le '{}'",
            rfc3339(range.from),
            rfc3339(range.to)
        );
        if let Some(group) = &params.resource_group {
            filter.push_str(&format!(
                " and resourceGroupName eq '{}'",
                check_resource_group(group)?
            ));
        }
        if let Some(resource) = &params.resource_id {
            resource_segments("resource_id", resource, Some(&subscription))?;
            filter.push_str(&format!(" and resourceUri eq '{}'", resource.trim()));
        }
        let url = self.page_url(cursor, || {
            let mut url = self.client.arm_url(
                &[
                    "subscriptions",
                    &subscription,
                    "providers",
                    "Microsoft.Insights",
                    "eventtypes",
                    "management",
                    "values",
                ],
                ACTIVITY_LOG_API,
            )?;
            url.query_pairs_mut().append_pair("$filter", &filter).append_pair(
                "$select",
                "eventTimestamp,operationName,status,subStatus,caller,resourceGroupName,resourceId,resourceType,level,correlationId,category,properties",
            );
            Ok(url)
        })?;
        let limit = params.limit as usize;
        let (events, next) = self
            .client
            .list("list_activity_log", url, "activity log", MAX_PAGES, limit)
            .await?;
        let truncated = events.len() > limit;
        let events: Vec<Value> = events
            .into_iter()
            .take(limit)
            .map(|event| {
                json!({
                    "time": str_at(&event, "/eventTimestamp"),
                    "operation": str_at(&event, "/operationName/localizedValue"),
                    "operation_name": str_at(&event, "/operationName/value"),
                    "status": str_at(&event, "/status/value"),
                    "sub_status": str_at(&event, "/subStatus/localizedValue"),
                    "caller": str_at(&event, "/caller"),
                    "level": str_at(&event, "/level"),
                    "category": str_at(&event, "/category/value"),
                    "resource_group": str_at(&event, "/resourceGroupName"),
                    "resource_id": str_at(&event, "/resourceId"),
                    "correlation_id": str_at(&event, "/correlationId"),
                    "properties": str_at(&event, "/properties"),
                })
            })
            .collect();
        Ok(OperationOutput::new(json!({"events": events}))
            .with_next_page(next)
            .truncated(truncated))
    }

    async fn list_alerts(
        &self,
        params: AlertsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let subscription = self.subscription()?.to_owned();
        let url = self.page_url(cursor, || {
            let mut url = self.client.arm_url(
                &[
                    "subscriptions",
                    &subscription,
                    "providers",
                    "Microsoft.AlertsManagement",
                    "alerts",
                ],
                ALERTS_API,
            )?;
            {
                let mut query = url.query_pairs_mut();
                query
                    .append_pair("timeRange", params.time_range.as_str())
                    .append_pair("pageCount", &params.limit.to_string())
                    .append_pair("sortBy", "lastModifiedDateTime")
                    .append_pair("sortOrder", "desc");
                let name = |value: &dyn erased::AsName| value.name();
                if let Some(state) = &params.state {
                    query.append_pair("alertState", &name(state));
                }
                if let Some(severity) = &params.severity {
                    query.append_pair("severity", &name(severity));
                }
                if let Some(condition) = &params.monitor_condition {
                    query.append_pair("monitorCondition", &name(condition));
                }
            }
            Ok(url)
        })?;
        let (alerts, next) = self
            .client
            .list("list_alerts", url, "alerts", 1, params.limit as usize)
            .await?;
        let alerts: Vec<Value> = alerts
            .iter()
            .map(|alert| {
                let essentials = alert
                    .pointer("/properties/essentials")
                    .cloned()
                    .unwrap_or(Value::Null);
                json!({
                    "id": str_at(alert, "/id"),
                    "name": str_at(alert, "/name"),
                    "severity": str_at(&essentials, "/severity"),
                    "state": str_at(&essentials, "/alertState"),
                    "monitor_condition": str_at(&essentials, "/monitorCondition"),
                    "monitor_service": str_at(&essentials, "/monitorService"),
                    "signal_type": str_at(&essentials, "/signalType"),
                    "target_resource": str_at(&essentials, "/targetResource"),
                    "target_resource_name": str_at(&essentials, "/targetResourceName"),
                    "target_resource_group": str_at(&essentials, "/targetResourceGroup"),
                    "target_resource_type": str_at(&essentials, "/targetResourceType"),
                    "alert_rule": str_at(&essentials, "/alertRule"),
                    "started_at": str_at(&essentials, "/startDateTime"),
                    "last_modified_at": str_at(&essentials, "/lastModifiedDateTime"),
                    "resolved_at": str_at(&essentials, "/monitorConditionResolvedDateTime"),
                    "description": str_at(&essentials, "/description"),
                })
            })
            .collect();
        Ok(OperationOutput::new(json!({"alerts": alerts})).with_next_page(next))
    }

    async fn list_aks_clusters(
        &self,
        params: AksParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let subscription = self.subscription()?.to_owned();
        let group = params
            .resource_group
            .as_deref()
            .map(check_resource_group)
            .transpose()?;
        let url = self.page_url(cursor, || {
            let mut segments = vec!["subscriptions", subscription.as_str()];
            if let Some(group) = &group {
                segments.extend(["resourceGroups", group.as_str()]);
            }
            segments.extend(["providers", "Microsoft.ContainerService", "managedClusters"]);
            self.client.arm_url(&segments, AKS_API)
        })?;
        let (clusters, next) = self
            .client
            .list(
                "list_aks_clusters",
                url,
                "AKS clusters",
                MAX_PAGES,
                usize::MAX,
            )
            .await?;
        let clusters: Vec<Value> = clusters
            .iter()
            .map(|cluster| {
                let pools: Vec<Value> = cluster
                    .pointer("/properties/agentPoolProfiles")
                    .and_then(Value::as_array)
                    .map(|pools| {
                        pools
                            .iter()
                            .map(|pool| {
                                json!({
                                    "name": str_at(pool, "/name"),
                                    "count": str_at(pool, "/count"),
                                    "vm_size": str_at(pool, "/vmSize"),
                                    "mode": str_at(pool, "/mode"),
                                    "os_type": str_at(pool, "/osType"),
                                    "orchestrator_version": str_at(pool, "/orchestratorVersion"),
                                    "provisioning_state": str_at(pool, "/provisioningState"),
                                    "power_state": str_at(pool, "/powerState/code"),
                                    "autoscaling": str_at(pool, "/enableAutoScaling"),
                                    "min_count": str_at(pool, "/minCount"),
                                    "max_count": str_at(pool, "/maxCount"),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "id": str_at(cluster, "/id"),
                    "name": str_at(cluster, "/name"),
                    "location": str_at(cluster, "/location"),
                    "kubernetes_version": str_at(cluster, "/properties/kubernetesVersion"),
                    "provisioning_state": str_at(cluster, "/properties/provisioningState"),
                    "power_state": str_at(cluster, "/properties/powerState/code"),
                    "fqdn": str_at(cluster, "/properties/fqdn"),
                    "node_resource_group": str_at(cluster, "/properties/nodeResourceGroup"),
                    "sku": str_at(cluster, "/sku"),
                    "node_pools": pools,
                })
            })
            .collect();
        Ok(OperationOutput::new(json!({"clusters": clusters})).with_next_page(next))
    }

    async fn query_log_analytics(&self, params: LogAnalyticsParams) -> Result<OperationOutput> {
        let workspace = check_guid("workspace_id", &params.workspace_id, "workspace ID")
            .map_err(|error| Error::invalid_input("workspace_id", error.message().to_owned()))?;
        let range = TimeRange::resolve(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(24),
            self.now,
        )?;
        if range.to - range.from > TimeDelta::days(30) {
            return Err(Error::invalid_input(
                "from",
                "the Log Analytics window is at most 30 days",
            ));
        }
        let url = join(
            &self.client.endpoints().log_analytics,
            &["v1", "workspaces", &workspace, "query"],
        )?;
        let body = json!({
            "query": params.query,
            "timespan": format!("{}/{}", rfc3339(range.from), rfc3339(range.to)),
        });
        let answer = self
            .client
            .call(
                Audience::LogAnalytics,
                "query_log_analytics",
                &url,
                Some(&body),
                "the workspace query",
            )
            .await?;
        let max_rows = params.max_rows as usize;
        let mut truncated = false;
        let tables: Vec<Value> = answer
            .get("tables")
            .and_then(Value::as_array)
            .map(|tables| {
                tables
                    .iter()
                    .map(|table| {
                        let mut rows = table
                            .get("rows")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        let total = rows.len();
                        if total > max_rows {
                            truncated = true;
                            rows.truncate(max_rows);
                        }
                        json!({
                            "name": str_at(table, "/name"),
                            "columns": table.get("columns").cloned().unwrap_or(json!([])),
                            "rows": rows,
                            "row_count": total,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut data = json!({"tables": tables});
        // A partial failure comes at HTTP 200 with an `error` beside the tables.
        if let Some(error) = answer.get("error") {
            data["partial_error"] = json!({
                "code": str_at(error, "/code"),
                "message": str_at(error, "/message"),
            });
        }
        Ok(OperationOutput::new(data).truncated(truncated))
    }
}

/// Names of the enum parameters as Azure spells them.
mod erased {
    /// An enum value's serialised name.
    pub trait AsName {
        /// `New`, `Sev1`, `Fired`.
        fn name(&self) -> String;
    }

    impl<T: serde::Serialize> AsName for T {
        fn name(&self) -> String {
            serde_json::to_value(self)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_stay_in_the_resource_tree() {
        let id = "/subscriptions/291bba3f-e0a5-47bc-a099-3bdcb2a50a05/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1";
        assert_eq!(resource_segments("resource_id", id, None).unwrap().len(), 8);
        for bad in [
            "subscriptions/x",
            "/subscriptions/291bba3f-e0a5-47bc-a099-3bdcb2a50a05/../../tenants",
            "/subscriptions/291bba3f-e0a5-47bc-a099-3bdcb2a50a05/rg?x=1",
            "/providers/Microsoft.Compute",
            "/subscriptions/not-a-guid/x",
            "/subscriptions/291bba3f-e0a5-47bc-a099-3bdcb2a50a05//x",
        ] {
            assert!(
                resource_segments("resource_id", bad, None).is_err(),
                "{bad}"
            );
        }
        assert!(resource_segments(
            "resource_id",
            id,
            Some("72ac930a-f34e-42d8-b06d-dc2a9e12ed71")
        )
        .is_err());
    }
}
