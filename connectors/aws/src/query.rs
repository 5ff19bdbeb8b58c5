//! The read operations on one AWS account, declared once with
//! [`patchbay_core::operations!`]. Each runs in the connection's account through
//! the official SDK clients of an assumed session; none fans out to other accounts.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_smithy_types::date_time::Format;
use aws_smithy_types::DateTime as AwsDateTime;
use chrono::{TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::valid_region;
use crate::client::{Clients, Platform, Session};
use crate::CONNECTOR_ID;

/// The longest window a metrics, logs or CloudTrail query may cover.
pub const MAX_WINDOW: TimeDelta = TimeDelta::days(14);
/// The longest a Logs Insights query is polled before it is stopped.
pub const INSIGHTS_TIMEOUT: Duration = Duration::from_secs(60);
/// Log messages longer than this are cut (and the page marked truncated).
pub const MAX_MESSAGE_CHARS: usize = 8 * 1024;
/// Most data points returned per metric series.
pub const MAX_DATAPOINTS: usize = 1440;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: AwsApi<'_>,
    /// List CloudWatch alarms (metric and composite) in a state, default ALARM,
    /// with their reason and metric (cloudwatch:DescribeAlarms).
    read list_alarms(ListAlarmsParams), paged;
    /// Read CloudWatch metric series (cloudwatch:GetMetricData), up to 20 metrics
    /// over a window of at most 14 days (default the last hour).
    read get_metric_data(GetMetricDataParams), paged;
    /// Read log events of one log group matching a filter pattern
    /// (logs:FilterLogEvents), newest window last hour by default.
    read filter_log_events(FilterLogEventsParams), paged;
    /// Run a CloudWatch Logs Insights query (logs:StartQuery, GetQueryResults) and
    /// wait up to 60 s for it; a query still running then is stopped (logs:StopQuery)
    /// and its partial results returned as truncated.
    read query_logs_insights(QueryLogsInsightsParams);
    /// Look up recent CloudTrail management events, default the last 24 hours,
    /// optionally by one attribute (cloudtrail:LookupEvents).
    read lookup_cloudtrail_events(LookupCloudtrailEventsParams), paged;
    /// List EC2 instances with their state, type, addresses and tags
    /// (ec2:DescribeInstances).
    read list_instances(ListInstancesParams), paged;
    /// List EKS cluster names (eks:ListClusters).
    read list_eks_clusters(ListEksClustersParams), paged;
}

/// An alarm state.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum AlarmState {
    /// Firing.
    #[serde(rename = "ALARM")]
    Alarm,
    /// Healthy.
    #[serde(rename = "OK")]
    Ok,
    /// Not enough data to decide.
    #[serde(rename = "INSUFFICIENT_DATA")]
    InsufficientData,
}

impl AlarmState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Alarm => "ALARM",
            Self::Ok => "OK",
            Self::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
}

/// Parameters of `list_alarms`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAlarmsParams {
    /// Only alarms in this state (default ALARM).
    #[serde(default)]
    pub state: Option<AlarmState>,
    /// Only alarms whose name starts with this.
    #[serde(default)]
    pub name_prefix: Option<String>,
    /// Alarms per page, 1 to 100 (default 50).
    #[serde(default = "default_fifty")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    /// The region, default the connection's.
    #[serde(default)]
    pub region: Option<String>,
}

/// One metric to read.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    /// An id for the series in the answer: a lowercase letter, then letters, digits or `_`.
    pub id: String,
    /// The namespace, e.g. `AWS/EC2`.
    pub namespace: String,
    /// The metric, e.g. `CPUUtilization`.
    pub metric_name: String,
    /// Dimensions, e.g. `{"InstanceId": "i-0abc"}`.
    #[serde(default)]
    pub dimensions: BTreeMap<String, String>,
    /// The statistic: Average, Sum, Minimum, Maximum, SampleCount or a percentile such as p99 (default Average).
    #[serde(default = "default_stat")]
    pub stat: String,
    /// Seconds per data point, 60 to 86400 (default 300).
    #[serde(default = "default_period")]
    #[schemars(range(min = 60, max = 86400))]
    pub period: u32,
}

/// Parameters of `get_metric_data`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetMetricDataParams {
    /// The metrics, 1 to 20.
    #[schemars(length(min = 1, max = 20))]
    pub queries: Vec<MetricQuery>,
    /// Start of the window (default `now-1h`): `now-15m`, RFC 3339 or epoch seconds.
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window (default `now`).
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Most data points per page over all series, 1 to 1440 (default 360).
    #[serde(default = "default_datapoints")]
    #[schemars(range(min = 1, max = 1440))]
    pub limit: u32,
    /// The region, default the connection's.
    #[serde(default)]
    pub region: Option<String>,
}

/// Parameters of `filter_log_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FilterLogEventsParams {
    /// The log group, e.g. `/aws/lambda/checkout`.
    pub log_group_name: String,
    /// A CloudWatch Logs filter pattern, e.g. `ERROR` or `{ $.level = "error" }`.
    #[serde(default)]
    pub filter_pattern: Option<String>,
    /// Only streams whose name starts with this.
    #[serde(default)]
    pub log_stream_name_prefix: Option<String>,
    /// Start of the window (default `now-1h`).
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window (default `now`).
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Events per page, 1 to 1000 (default 100).
    #[serde(default = "default_hundred")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: u32,
    /// The region, default the connection's.
    #[serde(default)]
    pub region: Option<String>,
}

/// Parameters of `query_logs_insights`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryLogsInsightsParams {
    /// The Logs Insights query, e.g. `fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc`.
    #[schemars(length(min = 1, max = 10000))]
    pub query: String,
    /// The log groups to query, 1 to 10.
    #[schemars(length(min = 1, max = 10))]
    pub log_group_names: Vec<String>,
    /// Start of the window (default `now-1h`).
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window (default `now`).
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Most rows, 1 to 1000 (default 100).
    #[serde(default = "default_hundred")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: u32,
    /// How long to wait for the query, 1 to 60 seconds (default 60); a query still
    /// running then is stopped and its partial results returned.
    #[serde(default = "default_wait")]
    #[schemars(range(min = 1, max = 60))]
    pub wait_seconds: u32,
    /// The region, default the connection's.
    #[serde(default)]
    pub region: Option<String>,
}

/// A CloudTrail lookup attribute.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
pub enum LookupKey {
    /// The API action, e.g. `TerminateInstances`.
    EventName,
    /// The service, e.g. `ec2.amazonaws.com`.
    EventSource,
    /// The event id.
    EventId,
    /// `true` or `false`.
    ReadOnly,
    /// The IAM user or role session name.
    Username,
    /// A resource type, e.g. `AWS::EC2::Instance`.
    ResourceType,
    /// A resource name or id.
    ResourceName,
    /// The access key used.
    AccessKeyId,
}

impl LookupKey {
    fn as_str(self) -> &'static str {
        match self {
            Self::EventName => "EventName",
            Self::EventSource => "EventSource",
            Self::EventId => "EventId",
            Self::ReadOnly => "ReadOnly",
            Self::Username => "Username",
            Self::ResourceType => "ResourceType",
            Self::ResourceName => "ResourceName",
            Self::AccessKeyId => "AccessKeyId",
        }
    }
}

/// Parameters of `lookup_cloudtrail_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupCloudtrailEventsParams {
    /// Look up by this attribute (with `attribute_value`).
    #[serde(default)]
    pub attribute_key: Option<LookupKey>,
    /// The attribute's value.
    #[serde(default)]
    pub attribute_value: Option<String>,
    /// Start of the window (default `now-24h`).
    #[serde(default)]
    pub from: Option<TimeBound>,
    /// End of the window (default `now`).
    #[serde(default)]
    pub to: Option<TimeBound>,
    /// Events per page, 1 to 50 (default 50).
    #[serde(default = "default_fifty")]
    #[schemars(range(min = 1, max = 50))]
    pub limit: u32,
    /// The region, default the connection's.
    #[serde(default)]
    pub region: Option<String>,
}

/// Parameters of `list_instances`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInstancesParams {
    /// EC2 filters, e.g. `{"instance-state-name": ["running"], "tag:team": ["payments"]}`; at most 10.
    #[serde(default)]
    pub filters: BTreeMap<String, Vec<String>>,
    /// Instances per page, 5 to 1000 (default 100).
    #[serde(default = "default_hundred")]
    #[schemars(range(min = 5, max = 1000))]
    pub limit: u32,
    /// The region, default the connection's.
    #[serde(default)]
    pub region: Option<String>,
}

/// Parameters of `list_eks_clusters`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEksClustersParams {
    /// Clusters per page, 1 to 100 (default 100).
    #[serde(default = "default_hundred")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    /// The region, default the connection's.
    #[serde(default)]
    pub region: Option<String>,
}

fn default_fifty() -> u32 {
    50
}
fn default_hundred() -> u32 {
    100
}
fn default_wait() -> u32 {
    60
}
fn default_datapoints() -> u32 {
    360
}
fn default_stat() -> String {
    "Average".to_owned()
}
fn default_period() -> u32 {
    300
}

/// The handler of the operations: one assumed session in one account.
pub struct AwsApi<'a> {
    /// The platform (endpoints, HTTP client).
    pub platform: &'a Platform,
    /// The assumed session.
    pub session: Session,
    /// The connection's region.
    pub region: String,
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

fn time_text(time: Option<&AwsDateTime>) -> Value {
    time.and_then(|time| time.fmt(Format::DateTime).ok())
        .map_or(Value::Null, Value::String)
}

fn millis_text(millis: Option<i64>) -> Value {
    millis
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or(Value::Null, |time| Value::String(time.to_rfc3339()))
}

fn aws_time(time: chrono::DateTime<Utc>) -> AwsDateTime {
    AwsDateTime::from_secs(time.timestamp())
}

fn build_error(what: &str, error: impl std::fmt::Display) -> Error {
    Error::invalid_input(what, format!("invalid `{what}`: {error}")).with_connector(CONNECTOR_ID)
}

/// Cuts `text` to [`MAX_MESSAGE_CHARS`], saying whether it did.
fn cut(text: &str) -> (String, bool) {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((index, _)) => (format!("{}…", &text[..index]), true),
        None => (text.to_owned(), false),
    }
}

impl AwsApi<'_> {
    /// The SDK clients for `region` (default the connection's).
    fn clients(&self, region: Option<&str>) -> Result<Clients> {
        let region = match region.map(str::trim).filter(|region| !region.is_empty()) {
            Some(region) if valid_region(region) => region,
            Some(region) => {
                return Err(Error::invalid_input(
                    "region",
                    format!("`{region}` is not an AWS region code"),
                )
                .with_connector(CONNECTOR_ID)
                .with_hint("use a region code such as us-east-1"))
            }
            None => self.region.as_str(),
        };
        Ok(self.platform.clients(&self.session, region))
    }

    fn window(
        from: Option<&TimeBound>,
        to: Option<&TimeBound>,
        lookback: TimeDelta,
    ) -> Result<TimeRange> {
        let range = TimeRange::resolve(from, to, lookback, Utc::now())
            .map_err(|error| error.with_connector(CONNECTOR_ID))?;
        if range.to - range.from > MAX_WINDOW {
            return Err(Error::invalid_input(
                "from",
                "the window from `from` to `to` is longer than 14 days",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("narrow the window to 14 days or less"));
        }
        Ok(range)
    }

    /// `list_alarms`: one page of alarms.
    async fn list_alarms(
        &self,
        params: ListAlarmsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let clients = self.clients(params.region.as_deref())?;
        let state = params.state.unwrap_or(AlarmState::Alarm);
        let answer = clients
            .cloudwatch
            .describe_alarms()
            .state_value(aws_sdk_cloudwatch::types::StateValue::from(state.as_str()))
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::MetricAlarm)
            .alarm_types(aws_sdk_cloudwatch::types::AlarmType::CompositeAlarm)
            .set_alarm_name_prefix(params.name_prefix)
            .max_records(to_i32(params.limit))
            .set_next_token(cursor)
            .send()
            .await
            .map_err(|error| clients.error("cloudwatch:DescribeAlarms", error))?;
        let mut alarms: Vec<Value> = answer
            .metric_alarms()
            .iter()
            .map(|alarm| {
                let dimensions: BTreeMap<&str, &str> = alarm
                    .dimensions()
                    .iter()
                    .map(|d| (d.name().unwrap_or_default(), d.value().unwrap_or_default()))
                    .collect();
                json!({
                    "type": "metric",
                    "name": alarm.alarm_name(),
                    "arn": alarm.alarm_arn(),
                    "state": alarm.state_value().map(|s| s.as_str()),
                    "state_reason": alarm.state_reason(),
                    "state_updated_at": time_text(alarm.state_updated_timestamp()),
                    "namespace": alarm.namespace(),
                    "metric_name": alarm.metric_name(),
                    "dimensions": dimensions,
                    "statistic": alarm.statistic().map(|s| s.as_str()),
                    "threshold": alarm.threshold(),
                    "comparison": alarm.comparison_operator().map(|c| c.as_str()),
                    "description": alarm.alarm_description(),
                })
            })
            .collect();
        alarms.extend(answer.composite_alarms().iter().map(|alarm| {
            json!({
                "type": "composite",
                "name": alarm.alarm_name(),
                "arn": alarm.alarm_arn(),
                "state": alarm.state_value().map(|s| s.as_str()),
                "state_reason": alarm.state_reason(),
                "state_updated_at": time_text(alarm.state_updated_timestamp()),
                "rule": alarm.alarm_rule(),
                "description": alarm.alarm_description(),
            })
        }));
        Ok(
            OperationOutput::new(json!({ "state": state.as_str(), "alarms": alarms }))
                .with_next_page(answer.next_token().map(str::to_owned)),
        )
    }

    /// `get_metric_data`: one page of metric series.
    async fn get_metric_data(
        &self,
        params: GetMetricDataParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
        if params.queries.is_empty() || params.queries.len() > 20 {
            return Err(Error::invalid_input(
                "queries",
                format!(
                    "`queries` must hold 1 to 20 metrics; got {}",
                    params.queries.len()
                ),
            )
            .with_connector(CONNECTOR_ID));
        }
        let clients = self.clients(params.region.as_deref())?;
        let range = Self::window(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(1),
        )?;
        let mut queries = Vec::with_capacity(params.queries.len());
        for query in params.queries {
            let mut dimensions = Vec::new();
            for (name, value) in query.dimensions {
                dimensions.push(Dimension::builder().name(name).value(value).build());
            }
            let metric = Metric::builder()
                .namespace(query.namespace)
                .metric_name(query.metric_name)
                .set_dimensions(Some(dimensions))
                .build();
            let stat = MetricStat::builder()
                .metric(metric)
                .period(to_i32(query.period))
                .stat(query.stat)
                .build();
            queries.push(
                MetricDataQuery::builder()
                    .id(query.id)
                    .metric_stat(stat)
                    .return_data(true)
                    .build(),
            );
        }
        let answer = clients
            .cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(queries))
            .start_time(aws_time(range.from))
            .end_time(aws_time(range.to))
            .max_datapoints(to_i32(params.limit))
            .set_next_token(cursor)
            .send()
            .await
            .map_err(|error| clients.error("cloudwatch:GetMetricData", error))?;
        let mut truncated = false;
        let series: Vec<Value> = answer
            .metric_data_results()
            .iter()
            .map(|result| {
                let points: Vec<Value> = result
                    .timestamps()
                    .iter()
                    .zip(result.values())
                    .take(MAX_DATAPOINTS)
                    .map(|(time, value)| json!([time_text(Some(time)), value]))
                    .collect();
                truncated |= result.timestamps().len() > MAX_DATAPOINTS;
                json!({
                    "id": result.id(),
                    "label": result.label(),
                    "status": result.status_code().map(|s| s.as_str()),
                    "points": points,
                })
            })
            .collect();
        let messages: Vec<Value> = answer
            .messages()
            .iter()
            .map(|m| json!({"code": m.code(), "message": m.value()}))
            .collect();
        Ok(OperationOutput::new(json!({
            "from": range.from.to_rfc3339(),
            "to": range.to.to_rfc3339(),
            "series": series,
            "messages": messages,
        }))
        .truncated(truncated)
        .with_next_page(answer.next_token().map(str::to_owned)))
    }

    /// `filter_log_events`: one page of matching events.
    async fn filter_log_events(
        &self,
        params: FilterLogEventsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let clients = self.clients(params.region.as_deref())?;
        let range = Self::window(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(1),
        )?;
        let answer = clients
            .logs
            .filter_log_events()
            .log_group_name(&params.log_group_name)
            .set_filter_pattern(params.filter_pattern)
            .set_log_stream_name_prefix(params.log_stream_name_prefix)
            .start_time(range.from.timestamp_millis())
            .end_time(range.to.timestamp_millis())
            .limit(to_i32(params.limit))
            .set_next_token(cursor)
            .send()
            .await
            .map_err(|error| clients.error("logs:FilterLogEvents", error))?;
        let mut truncated = false;
        let events: Vec<Value> = answer
            .events()
            .iter()
            .map(|event| {
                let (message, cut_short) = cut(event.message().unwrap_or_default());
                truncated |= cut_short;
                json!({
                    "timestamp": millis_text(event.timestamp()),
                    "log_stream": event.log_stream_name(),
                    "message": message,
                })
            })
            .collect();
        Ok(OperationOutput::new(json!({
            "log_group": params.log_group_name,
            "from": range.from.to_rfc3339(),
            "to": range.to.to_rfc3339(),
            "events": events,
        }))
        .truncated(truncated)
        .with_next_page(answer.next_token().map(str::to_owned)))
    }

    /// `query_logs_insights`: start, poll up to [`INSIGHTS_TIMEOUT`], stop on timeout.
    async fn query_logs_insights(
        &self,
        params: QueryLogsInsightsParams,
    ) -> Result<OperationOutput> {
        use aws_sdk_cloudwatchlogs::types::QueryStatus;
        if params.log_group_names.is_empty() || params.log_group_names.len() > 10 {
            return Err(Error::invalid_input(
                "log_group_names",
                format!(
                    "`log_group_names` must name 1 to 10 log groups; got {}",
                    params.log_group_names.len()
                ),
            )
            .with_connector(CONNECTOR_ID));
        }
        if params.query.trim().is_empty() || params.query.len() > 10_000 {
            return Err(
                Error::invalid_input("query", "`query` must be 1 to 10000 characters")
                    .with_connector(CONNECTOR_ID),
            );
        }
        let clients = self.clients(params.region.as_deref())?;
        let range = Self::window(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(1),
        )?;
        let started = clients
            .logs
            .start_query()
            .set_log_group_names(Some(params.log_group_names.clone()))
            .query_string(&params.query)
            .start_time(range.from.timestamp())
            .end_time(range.to.timestamp())
            .limit(to_i32(params.limit))
            .send()
            .await
            .map_err(|error| clients.error("logs:StartQuery", error))?;
        let query_id = started.query_id().unwrap_or_default().to_owned();
        let wait = Duration::from_secs(u64::from(params.wait_seconds)).min(INSIGHTS_TIMEOUT);
        let deadline = tokio::time::Instant::now() + wait;
        let mut pause = Duration::from_millis(250);
        loop {
            let answer = clients
                .logs
                .get_query_results()
                .query_id(&query_id)
                .send()
                .await
                .map_err(|error| clients.error("logs:GetQueryResults", error))?;
            let status = answer.status().cloned().unwrap_or(QueryStatus::Running);
            let finished = matches!(
                status,
                QueryStatus::Complete
                    | QueryStatus::Failed
                    | QueryStatus::Cancelled
                    | QueryStatus::Timeout
            );
            let timed_out = !finished && tokio::time::Instant::now() + pause > deadline;
            if finished || timed_out {
                if timed_out {
                    clients
                        .logs
                        .stop_query()
                        .query_id(&query_id)
                        .send()
                        .await
                        .map_err(|error| clients.error("logs:StopQuery", error))?;
                }
                let mut truncated = timed_out;
                let rows: Vec<Value> = answer
                    .results()
                    .iter()
                    .map(|row| {
                        let fields: serde_json::Map<String, Value> = row
                            .iter()
                            .filter(|field| field.field() != Some("@ptr"))
                            .map(|field| {
                                let (value, cut_short) = cut(field.value().unwrap_or_default());
                                truncated |= cut_short;
                                (
                                    field.field().unwrap_or_default().to_owned(),
                                    Value::String(value),
                                )
                            })
                            .collect();
                        Value::Object(fields)
                    })
                    .collect();
                let statistics = answer.statistics().map(|s| {
                    json!({
                        "records_matched": s.records_matched(),
                        "records_scanned": s.records_scanned(),
                        "bytes_scanned": s.bytes_scanned(),
                    })
                });
                let status_text = if timed_out {
                    "Stopped".to_owned()
                } else {
                    status.as_str().to_owned()
                };
                return Ok(OperationOutput::new(json!({
                    "query_id": query_id,
                    "status": status_text,
                    "from": range.from.to_rfc3339(),
                    "to": range.to.to_rfc3339(),
                    "results": rows,
                    "statistics": statistics,
                }))
                .truncated(truncated));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// `lookup_cloudtrail_events`: one page of management events.
    async fn lookup_cloudtrail_events(
        &self,
        params: LookupCloudtrailEventsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        use aws_sdk_cloudtrail::types::{LookupAttribute, LookupAttributeKey};
        let clients = self.clients(params.region.as_deref())?;
        let range = Self::window(
            params.from.as_ref(),
            params.to.as_ref(),
            TimeDelta::hours(24),
        )?;
        let attributes = match (params.attribute_key, params.attribute_value) {
            (Some(key), Some(value)) => Some(vec![LookupAttribute::builder()
                .attribute_key(LookupAttributeKey::from(key.as_str()))
                .attribute_value(value)
                .build()
                .map_err(|error| build_error("attribute_value", error))?]),
            (None, None) => None,
            (Some(_), None) => {
                return Err(Error::invalid_input(
                    "attribute_value",
                    "`attribute_key` needs an `attribute_value`",
                )
                .with_connector(CONNECTOR_ID))
            }
            (None, Some(_)) => {
                return Err(Error::invalid_input(
                    "attribute_key",
                    "`attribute_value` needs an `attribute_key`",
                )
                .with_connector(CONNECTOR_ID))
            }
        };
        let answer = clients
            .cloudtrail
            .lookup_events()
            .set_lookup_attributes(attributes)
            .start_time(aws_time(range.from))
            .end_time(aws_time(range.to))
            .max_results(to_i32(params.limit))
            .set_next_token(cursor)
            .send()
            .await
            .map_err(|error| clients.error("cloudtrail:LookupEvents", error))?;
        let events: Vec<Value> = answer
            .events()
            .iter()
            .map(|event| {
                let detail: Value = event
                    .cloud_trail_event()
                    .and_then(|text| serde_json::from_str(text).ok())
                    .unwrap_or(Value::Null);
                json!({
                    "event_id": event.event_id(),
                    "event_name": event.event_name(),
                    "event_time": time_text(event.event_time()),
                    "event_source": event.event_source(),
                    "username": event.username(),
                    "read_only": event.read_only(),
                    "resources": event.resources().iter().map(|r| json!({
                        "type": r.resource_type(),
                        "name": r.resource_name(),
                    })).collect::<Vec<_>>(),
                    "source_ip": detail.get("sourceIPAddress"),
                    "error_code": detail.get("errorCode"),
                    "error_message": detail.get("errorMessage"),
                })
            })
            .collect();
        Ok(OperationOutput::new(json!({
            "from": range.from.to_rfc3339(),
            "to": range.to.to_rfc3339(),
            "events": events,
        }))
        .with_next_page(answer.next_token().map(str::to_owned)))
    }

    /// `list_instances`: one page of instances, flattened out of reservations.
    async fn list_instances(
        &self,
        params: ListInstancesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        use aws_sdk_ec2::types::Filter;
        if params.filters.len() > 10 {
            return Err(Error::invalid_input(
                "filters",
                format!(
                    "`filters` may have at most 10 entries; got {}",
                    params.filters.len()
                ),
            )
            .with_connector(CONNECTOR_ID));
        }
        let clients = self.clients(params.region.as_deref())?;
        let filters: Vec<Filter> = params
            .filters
            .into_iter()
            .map(|(name, values)| {
                Filter::builder()
                    .name(name)
                    .set_values(Some(values))
                    .build()
            })
            .collect();
        let answer = clients
            .ec2
            .describe_instances()
            .set_filters((!filters.is_empty()).then_some(filters))
            .max_results(to_i32(params.limit))
            .set_next_token(cursor)
            .send()
            .await
            .map_err(|error| clients.error("ec2:DescribeInstances", error))?;
        let total: usize = answer
            .reservations()
            .iter()
            .map(|reservation| reservation.instances().len())
            .sum();
        let instances: Vec<Value> = answer
            .reservations()
            .iter()
            .flat_map(|reservation| reservation.instances())
            .take(params.limit as usize)
            .map(|instance| {
                let tags: BTreeMap<&str, &str> = instance
                    .tags()
                    .iter()
                    .map(|tag| {
                        (
                            tag.key().unwrap_or_default(),
                            tag.value().unwrap_or_default(),
                        )
                    })
                    .collect();
                json!({
                    "instance_id": instance.instance_id(),
                    "name": tags.get("Name"),
                    "state": instance.state().and_then(|s| s.name()).map(|n| n.as_str()),
                    "instance_type": instance.instance_type().map(|t| t.as_str()),
                    "availability_zone": instance.placement().and_then(|p| p.availability_zone()),
                    "private_ip": instance.private_ip_address(),
                    "public_ip": instance.public_ip_address(),
                    "vpc_id": instance.vpc_id(),
                    "image_id": instance.image_id(),
                    "launch_time": time_text(instance.launch_time()),
                    "tags": tags,
                })
            })
            .collect();
        Ok(OperationOutput::new(json!({ "instances": instances }))
            .truncated(total > params.limit as usize)
            .with_next_page(answer.next_token().map(str::to_owned)))
    }

    /// `list_eks_clusters`: one page of cluster names.
    async fn list_eks_clusters(
        &self,
        params: ListEksClustersParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let clients = self.clients(params.region.as_deref())?;
        let answer = clients
            .eks
            .list_clusters()
            .max_results(to_i32(params.limit))
            .set_next_token(cursor)
            .send()
            .await
            .map_err(|error| clients.error("eks:ListClusters", error))?;
        Ok(
            OperationOutput::new(json!({ "clusters": answer.clusters() }))
                .with_next_page(answer.next_token().map(str::to_owned)),
        )
    }
}
