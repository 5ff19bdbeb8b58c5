//! The query operations over Google Cloud, declared once with
//! [`patchbay_core::operations!`]: names, descriptions, parameter schemas and
//! dispatch come from the declaration; parameter checks, opaque cursors and output
//! caps from the toolkit. Every operation but `list_projects` takes a `project`
//! that must be one of the connection's selected projects.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::{
    GcpClient, Needs, CLOUD_ASSET, COMPUTE, CONTAINER, LOGGING, MONITORING, RESOURCE_MANAGER,
};
use crate::config::GcpConfig;
use crate::CONNECTOR_ID;

/// Default look-back of `query_logs` and `query_metrics`.
pub const DEFAULT_WINDOW_MINUTES: i64 = 60;
/// Longest window `query_logs` and `query_metrics` accept.
pub const MAX_WINDOW_DAYS: i64 = 7;
/// Longest user filter passed to Logging, Monitoring, Compute or Cloud Asset.
pub const MAX_FILTER_CHARS: usize = 2_000;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_>,
    /// List the Google Cloud projects the connection can reach (Resource Manager
    /// projects:search), marking the ones selected for this connection.
    read list_projects(ListProjectsParams), paged;
    /// Read log entries of a project (Cloud Logging entries:list), newest first, over a
    /// window (default the last hour, at most 7 days), with an optional Logging filter
    /// such as severity>=ERROR AND resource.type="k8s_container".
    read query_logs(QueryLogsParams), paged;
    /// Read metric time series of a project (Cloud Monitoring timeSeries.list) for a
    /// Monitoring filter such as metric.type="compute.googleapis.com/instance/cpu/utilization",
    /// over a window (default the last hour, at most 7 days), optionally aligned.
    read query_metrics(QueryMetricsParams), paged;
    /// List Compute Engine VM instances of a project across all zones (aggregated list)
    /// with zone, status, machine type, IPs and labels.
    read list_instances(ListInstancesParams), paged;
    /// List Cloud Monitoring alert policies of a project with their conditions and state.
    read list_alert_policies(ListAlertPoliciesParams), paged;
    /// List GKE clusters of a project (all locations by default) with status, versions
    /// and node pools.
    read list_gke_clusters(ListGkeClustersParams);
    /// Search resources of a project with Cloud Asset Inventory (searchAllResources),
    /// by query (e.g. name:checkout, state:RUNNING) and asset types.
    read search_assets(SearchAssetsParams), paged;
}

/// Parameters of `list_projects`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListProjectsParams {
    /// A Resource Manager search query, e.g. `displayName:prod*` or `labels.env:prod`.
    #[serde(default)]
    pub query: Option<String>,
    /// Projects per page, 1 to 500 (default 100).
    #[serde(default = "default_100")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `query_logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryLogsParams {
    /// The project id; one of the connection's projects (optional when it has one).
    #[serde(default)]
    pub project: Option<String>,
    /// A Cloud Logging filter, e.g. `severity>=ERROR AND resource.type="gce_instance"`;
    /// the time window is added to it.
    #[serde(default)]
    pub filter: Option<String>,
    /// Start of the window, RFC 3339 (default: one hour before `end_time`).
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    /// End of the window, RFC 3339 (default: now).
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// Entries per page, 1 to 1000 (default 100).
    #[serde(default = "default_100")]
    #[schemars(range(min = 1, max = 1000))]
    pub limit: u32,
}

/// Parameters of `query_metrics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryMetricsParams {
    /// The project id; one of the connection's projects (optional when it has one).
    #[serde(default)]
    pub project: Option<String>,
    /// A Monitoring filter naming the metric type, e.g.
    /// `metric.type="compute.googleapis.com/instance/cpu/utilization"`.
    pub filter: String,
    /// Start of the window, RFC 3339 (default: one hour before `end_time`).
    #[serde(default)]
    pub start_time: Option<DateTime<Utc>>,
    /// End of the window, RFC 3339 (default: now).
    #[serde(default)]
    pub end_time: Option<DateTime<Utc>>,
    /// Align each series to periods of this many seconds, 60 to 86400 (default: raw points).
    #[serde(default)]
    #[schemars(range(min = 60, max = 86400))]
    pub alignment_period_secs: Option<u32>,
    /// The aligner with `alignment_period_secs`, e.g. ALIGN_MEAN, ALIGN_MAX, ALIGN_RATE
    /// (default ALIGN_MEAN).
    #[serde(default)]
    pub per_series_aligner: Option<String>,
    /// Time series per page, 1 to 100 (default 20).
    #[serde(default = "default_20")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
    /// Points kept per series, newest first, 1 to 500 (default 60).
    #[serde(default = "default_60")]
    #[schemars(range(min = 1, max = 500))]
    pub max_points: u32,
}

/// Parameters of `list_instances`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListInstancesParams {
    /// The project id; one of the connection's projects (optional when it has one).
    #[serde(default)]
    pub project: Option<String>,
    /// A Compute Engine filter, e.g. `status = RUNNING` or `labels.app = checkout`.
    #[serde(default)]
    pub filter: Option<String>,
    /// Instances per page (maxResults), 1 to 500 (default 100).
    #[serde(default = "default_100")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `list_alert_policies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAlertPoliciesParams {
    /// The project id; one of the connection's projects (optional when it has one).
    #[serde(default)]
    pub project: Option<String>,
    /// A Monitoring filter over policies, e.g. `enabled=true`.
    #[serde(default)]
    pub filter: Option<String>,
    /// Policies per page, 1 to 100 (default 50).
    #[serde(default = "default_50")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `list_gke_clusters`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListGkeClustersParams {
    /// The project id; one of the connection's projects (optional when it has one).
    #[serde(default)]
    pub project: Option<String>,
    /// A location (`us-central1`, `europe-west1-b`) or `-` for all (default).
    #[serde(default)]
    pub location: Option<String>,
    /// Most clusters returned, 1 to 100 (default 50); more sets `truncated`.
    #[serde(default = "default_50")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `search_assets`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchAssetsParams {
    /// The project id; one of the connection's projects (optional when it has one).
    #[serde(default)]
    pub project: Option<String>,
    /// A Cloud Asset search query, e.g. `name:checkout` or `state:RUNNING`.
    #[serde(default)]
    pub query: Option<String>,
    /// Asset types to search, e.g. `compute.googleapis.com/Instance` (at most 20).
    #[serde(default)]
    pub asset_types: Vec<String>,
    /// Results per page, 1 to 500 (default 100).
    #[serde(default = "default_100")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

fn default_20() -> u32 {
    20
}
fn default_50() -> u32 {
    50
}
fn default_60() -> u32 {
    60
}
fn default_100() -> u32 {
    100
}

/// The handler of the operations: one client and the connection's settings.
#[derive(Debug)]
pub struct Api<'a> {
    client: GcpClient<'a>,
    config: &'a GcpConfig,
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The window `[start, end]`: defaults to the last hour, at most seven days.
fn window(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let end = end.unwrap_or_else(Utc::now);
    let start = start.unwrap_or(end - Duration::minutes(DEFAULT_WINDOW_MINUTES));
    if start >= end {
        return Err(Error::invalid_input(
            "start_time",
            format!(
                "`start_time` ({}) must be before `end_time` ({})",
                rfc3339(start),
                rfc3339(end)
            ),
        ));
    }
    if end - start > Duration::days(MAX_WINDOW_DAYS) {
        return Err(Error::invalid_input(
            "start_time",
            format!("the window may span at most {MAX_WINDOW_DAYS} days"),
        )
        .with_hint("narrow the window, or page through shorter windows"));
    }
    Ok((start, end))
}

fn filter_text(field: &str, filter: Option<&str>) -> Result<Option<String>> {
    match filter.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(None),
        Some(text) if text.chars().count() > MAX_FILTER_CHARS => Err(Error::invalid_input(
            field,
            format!("`{field}` may be at most {MAX_FILTER_CHARS} characters"),
        )),
        Some(text) => Ok(Some(text.to_owned())),
    }
}

fn page_token(body: &Value) -> Option<String> {
    body.get("nextPageToken")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .map(str::to_owned)
}

fn pick(object: &Value, keys: &[&str]) -> Value {
    let mut picked = Map::new();
    for key in keys {
        if let Some(value) = object.get(*key).filter(|value| !value.is_null()) {
            picked.insert((*key).to_owned(), value.clone());
        }
    }
    Value::Object(picked)
}

fn last_segment(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .and_then(|text| text.rsplit('/').next())
        .map(str::to_owned)
}

impl<'a> Api<'a> {
    /// The handler for one connection.
    pub fn new(client: GcpClient<'a>, config: &'a GcpConfig) -> Self {
        Self { client, config }
    }

    /// The project an operation runs on: the one asked for, which must be selected,
    /// or the only selected one.
    fn project(&self, requested: Option<&str>) -> Result<String> {
        let selected = &self.config.projects;
        let listed = || selected.join(", ");
        match requested.map(str::trim).filter(|p| !p.is_empty()) {
            Some(project) if selected.iter().any(|p| p == project) => Ok(project.to_owned()),
            Some(project) => Err(Error::invalid_input(
                "project",
                format!(
                    "project `{project}` is not selected for this connection; use one of: {}",
                    listed()
                ),
            )
            .with_hint("select more projects by connecting again with the `projects` option")),
            None => match selected.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(Error::invalid_input(
                    "project",
                    "this connection has no selected project",
                )
                .with_hint(
                    "validate the connection again, or connect again with the `projects` option",
                )),
                _ => Err(Error::invalid_input(
                    "project",
                    format!("`project` is required; use one of: {}", listed()),
                )),
            },
        }
    }

    async fn list_projects(
        &self,
        params: ListProjectsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = vec![("pageSize", params.limit.to_string())];
        if let Some(text) = filter_text("query", params.query.as_deref())? {
            query.push(("query", text));
        }
        if let Some(token) = cursor {
            query.push(("pageToken", token));
        }
        let body = self
            .client
            .get(
                "list_projects",
                &format!("{RESOURCE_MANAGER}/v3/projects:search"),
                &query,
                Needs::new(
                    "cloudresourcemanager.googleapis.com",
                    "resourcemanager.projects.get",
                ),
                None,
            )
            .await?;
        let projects: Vec<Value> = body["projects"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|project| {
                let mut picked = pick(
                    project,
                    &[
                        "projectId",
                        "displayName",
                        "name",
                        "state",
                        "parent",
                        "labels",
                        "createTime",
                    ],
                );
                let selected = project["projectId"]
                    .as_str()
                    .is_some_and(|id| self.config.projects.iter().any(|p| p == id));
                picked["selected"] = json!(selected);
                picked
            })
            .collect();
        Ok(OperationOutput::new(json!({ "projects": projects })).with_next_page(page_token(&body)))
    }

    async fn query_logs(
        &self,
        params: QueryLogsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = self.project(params.project.as_deref())?;
        let (start, end) = window(params.start_time, params.end_time)?;
        let mut filter = format!(
            "timestamp>=\"{}\" AND timestamp<=\"{}\"",
            rfc3339(start),
            rfc3339(end)
        );
        if let Some(user) = filter_text("filter", params.filter.as_deref())? {
            filter = format!("{filter} AND ({user})");
        }
        let mut body = json!({
            "resourceNames": [format!("projects/{project}")],
            "filter": filter,
            "orderBy": "timestamp desc",
            "pageSize": params.limit,
        });
        if let Some(token) = cursor {
            body["pageToken"] = json!(token);
        }
        let answer = self
            .client
            .post_read(
                "query_logs",
                &format!("{LOGGING}/v2/entries:list"),
                &body,
                Needs::new("logging.googleapis.com", "logging.logEntries.list"),
                Some(&project),
            )
            .await?;
        let entries: Vec<Value> = answer["entries"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|entry| {
                pick(
                    entry,
                    &[
                        "timestamp",
                        "severity",
                        "logName",
                        "resource",
                        "textPayload",
                        "jsonPayload",
                        "protoPayload",
                        "labels",
                        "insertId",
                        "trace",
                        "httpRequest",
                    ],
                )
            })
            .collect();
        Ok(OperationOutput::new(json!({
            "project": project,
            "window": {"start": rfc3339(start), "end": rfc3339(end)},
            "filter": filter,
            "entries": entries,
        }))
        .with_next_page(page_token(&answer)))
    }

    async fn query_metrics(
        &self,
        params: QueryMetricsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = self.project(params.project.as_deref())?;
        let filter = filter_text("filter", Some(&params.filter))?.ok_or_else(|| {
            Error::invalid_input(
                "filter",
                "`filter` is required, e.g. metric.type=\"compute.googleapis.com/instance/cpu/utilization\"",
            )
        })?;
        let (start, end) = window(params.start_time, params.end_time)?;
        let mut query = vec![
            ("filter", filter.clone()),
            ("interval.startTime", rfc3339(start)),
            ("interval.endTime", rfc3339(end)),
            ("pageSize", params.limit.to_string()),
        ];
        match (params.alignment_period_secs, params.per_series_aligner) {
            (Some(period), aligner) => {
                let aligner = aligner.unwrap_or_else(|| "ALIGN_MEAN".to_owned());
                if !aligner.starts_with("ALIGN_")
                    || !aligner
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
                {
                    return Err(Error::invalid_input(
                        "per_series_aligner",
                        format!("`per_series_aligner` must be a Monitoring aligner such as ALIGN_MEAN; got `{aligner}`"),
                    ));
                }
                query.push(("aggregation.alignmentPeriod", format!("{period}s")));
                query.push(("aggregation.perSeriesAligner", aligner));
            }
            (None, Some(_)) => {
                return Err(Error::invalid_input(
                    "per_series_aligner",
                    "`per_series_aligner` needs `alignment_period_secs`",
                ))
            }
            (None, None) => {}
        }
        if let Some(token) = cursor {
            query.push(("pageToken", token));
        }
        let answer = self
            .client
            .get(
                "query_metrics",
                &format!("{MONITORING}/v3/projects/{project}/timeSeries"),
                &query,
                Needs::new("monitoring.googleapis.com", "monitoring.timeSeries.list"),
                Some(&project),
            )
            .await?;
        let max_points = params.max_points as usize;
        let mut points_cut = false;
        let series: Vec<Value> = answer["timeSeries"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|series| {
                let mut picked = pick(
                    series,
                    &["metric", "resource", "metricKind", "valueType", "unit"],
                );
                let points = series["points"].as_array().cloned().unwrap_or_default();
                if points.len() > max_points {
                    points_cut = true;
                    picked["points_total"] = json!(points.len());
                }
                picked["points"] = Value::Array(points.into_iter().take(max_points).collect());
                picked
            })
            .collect();
        Ok(OperationOutput::new(json!({
            "project": project,
            "window": {"start": rfc3339(start), "end": rfc3339(end)},
            "time_series": series,
        }))
        .truncated(points_cut)
        .with_next_page(page_token(&answer)))
    }

    async fn list_instances(
        &self,
        params: ListInstancesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = self.project(params.project.as_deref())?;
        let mut query = vec![("maxResults", params.limit.to_string())];
        if let Some(filter) = filter_text("filter", params.filter.as_deref())? {
            query.push(("filter", filter));
        }
        if let Some(token) = cursor {
            query.push(("pageToken", token));
        }
        let answer = self
            .client
            .get(
                "list_instances",
                &format!("{COMPUTE}/compute/v1/projects/{project}/aggregated/instances"),
                &query,
                Needs::new("compute.googleapis.com", "compute.instances.list"),
                Some(&project),
            )
            .await?;
        let mut instances = Vec::new();
        if let Some(scopes) = answer["items"].as_object() {
            for (scope, listing) in scopes {
                for instance in listing["instances"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    let interfaces = instance["networkInterfaces"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    let internal: Vec<Value> = interfaces
                        .iter()
                        .filter_map(|nic| nic.get("networkIP").cloned())
                        .collect();
                    let external: Vec<Value> = interfaces
                        .iter()
                        .flat_map(|nic| {
                            nic["accessConfigs"].as_array().cloned().unwrap_or_default()
                        })
                        .filter_map(|access| access.get("natIP").cloned())
                        .collect();
                    let mut picked = pick(
                        instance,
                        &["id", "name", "status", "labels", "creationTimestamp"],
                    );
                    picked["zone"] = json!(last_segment(instance.get("zone"))
                        .unwrap_or_else(|| scope.trim_start_matches("zones/").to_owned()));
                    picked["machine_type"] = json!(last_segment(instance.get("machineType")));
                    picked["internal_ips"] = Value::Array(internal);
                    picked["external_ips"] = Value::Array(external);
                    instances.push(picked);
                }
            }
        }
        Ok(
            OperationOutput::new(json!({ "project": project, "instances": instances }))
                .with_next_page(page_token(&answer)),
        )
    }

    async fn list_alert_policies(
        &self,
        params: ListAlertPoliciesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = self.project(params.project.as_deref())?;
        let mut query = vec![("pageSize", params.limit.to_string())];
        if let Some(filter) = filter_text("filter", params.filter.as_deref())? {
            query.push(("filter", filter));
        }
        if let Some(token) = cursor {
            query.push(("pageToken", token));
        }
        let answer = self
            .client
            .get(
                "list_alert_policies",
                &format!("{MONITORING}/v3/projects/{project}/alertPolicies"),
                &query,
                Needs::new("monitoring.googleapis.com", "monitoring.alertPolicies.list"),
                Some(&project),
            )
            .await?;
        let policies: Vec<Value> = answer["alertPolicies"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|policy| {
                pick(
                    policy,
                    &[
                        "name",
                        "displayName",
                        "enabled",
                        "combiner",
                        "conditions",
                        "notificationChannels",
                        "severity",
                        "userLabels",
                        "documentation",
                    ],
                )
            })
            .collect();
        Ok(
            OperationOutput::new(json!({ "project": project, "alert_policies": policies }))
                .with_next_page(page_token(&answer)),
        )
    }

    async fn list_gke_clusters(&self, params: ListGkeClustersParams) -> Result<OperationOutput> {
        let project = self.project(params.project.as_deref())?;
        let location = params
            .location
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or("-")
            .to_owned();
        if location != "-"
            && !location
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(Error::invalid_input(
                "location",
                format!("`location` must be a region or zone such as us-central1, or `-`; got `{location}`"),
            ));
        }
        let answer = self
            .client
            .get(
                "list_gke_clusters",
                &format!("{CONTAINER}/v1/projects/{project}/locations/{location}/clusters"),
                &[],
                Needs::new("container.googleapis.com", "container.clusters.list"),
                Some(&project),
            )
            .await?;
        let all = answer["clusters"].as_array().cloned().unwrap_or_default();
        let limit = params.limit as usize;
        let clusters: Vec<Value> = all
            .iter()
            .take(limit)
            .map(|cluster| {
                // Never masterAuth: legacy clusters keep client keys and passwords there.
                let mut picked = pick(
                    cluster,
                    &[
                        "name",
                        "location",
                        "status",
                        "statusMessage",
                        "currentMasterVersion",
                        "currentNodeVersion",
                        "currentNodeCount",
                        "network",
                        "resourceLabels",
                        "createTime",
                    ],
                );
                let pools: Vec<Value> = cluster["nodePools"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|pool| {
                        let mut picked = pick(
                            pool,
                            &[
                                "name",
                                "status",
                                "version",
                                "initialNodeCount",
                                "autoscaling",
                            ],
                        );
                        if let Some(machine) = pool["config"].get("machineType") {
                            picked["machineType"] = machine.clone();
                        }
                        picked
                    })
                    .collect();
                picked["nodePools"] = Value::Array(pools);
                picked
            })
            .collect();
        let mut data = json!({ "project": project, "location": location, "clusters": clusters, "total": all.len() });
        if let Some(missing) = answer
            .get("missingZones")
            .filter(|zones| zones.as_array().is_some_and(|z| !z.is_empty()))
        {
            data["missing_zones"] = missing.clone();
        }
        Ok(OperationOutput::new(data).truncated(all.len() > limit))
    }

    async fn search_assets(
        &self,
        params: SearchAssetsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let project = self.project(params.project.as_deref())?;
        if params.asset_types.len() > 20 {
            return Err(Error::invalid_input(
                "asset_types",
                format!("at most 20 asset types; got {}", params.asset_types.len()),
            ));
        }
        let mut query = vec![("pageSize", params.limit.to_string())];
        if let Some(text) = filter_text("query", params.query.as_deref())? {
            query.push(("query", text));
        }
        for asset_type in &params.asset_types {
            query.push(("assetTypes", asset_type.trim().to_owned()));
        }
        if let Some(token) = cursor {
            query.push(("pageToken", token));
        }
        let answer = self
            .client
            .get(
                "search_assets",
                &format!("{CLOUD_ASSET}/v1/projects/{project}:searchAllResources"),
                &query,
                Needs::new(
                    "cloudasset.googleapis.com",
                    "cloudasset.assets.searchAllResources",
                ),
                Some(&project),
            )
            .await?;
        let results: Vec<Value> = answer["results"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|result| {
                pick(
                    result,
                    &[
                        "name",
                        "assetType",
                        "displayName",
                        "description",
                        "location",
                        "state",
                        "labels",
                        "project",
                        "createTime",
                        "updateTime",
                    ],
                )
            })
            .collect();
        Ok(
            OperationOutput::new(json!({ "project": project, "results": results }))
                .with_next_page(page_token(&answer)),
        )
    }
}
