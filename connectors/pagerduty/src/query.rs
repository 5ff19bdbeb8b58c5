//! Read-only query operations over the PagerDuty REST API, declared once with
//! [`patchbay_core::operations!`].
//!
//! Lists use PagerDuty's offset paging (`limit` ≤ 100, `offset`, `total=false`,
//! `more`): one call reads pages until it has `limit` items, PagerDuty says there
//! are no `more`, or [`MAX_PAGES`] pages were read; the opaque `next_cursor` carries
//! the offset of the first item not returned. Windows default to a recent span and
//! are capped at PagerDuty's six months.

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use patchbay_core::time::{TimeBound, TimeRange};
use patchbay_core::{Error, OperationOutput, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::client::PagerdutyClient;
use crate::CONNECTOR_ID;

/// The most pages one call reads.
pub const MAX_PAGES: u32 = 5;
/// PagerDuty's largest page.
pub const PAGE_SIZE: u32 = 100;
/// PagerDuty serves classic offset paging up to this many records.
pub const MAX_OFFSET: u64 = 10_000;
/// The longest window PagerDuty searches (six months).
pub const MAX_WINDOW_DAYS: i64 = 180;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Api<'_>,
    /// List incidents, newest first, over the last 24 hours by default, by status, service, team or urgency (GET /incidents).
    read list_incidents(ListIncidentsParams), paged;
    /// Get one incident by id with its service, assignees, priority and escalation policy (GET /incidents/{id}).
    read get_incident(GetIncidentParams);
    /// List the alerts grouped into an incident (GET /incidents/{id}/alerts).
    read list_incident_alerts(ListIncidentAlertsParams), paged;
    /// List an incident's timeline: triggers, notifications, acknowledgements, escalations, resolution; at most 200 (GET /incidents/{id}/log_entries).
    read list_incident_log_entries(ListIncidentLogEntriesParams), paged;
    /// List the notes responders wrote on an incident (GET /incidents/{id}/notes).
    read list_incident_notes(IncidentNotesParams);
    /// List change events (deploys, config changes) PagerDuty relates to an incident (GET /incidents/{id}/related_change_events).
    read list_related_change_events(RelatedChangeEventsParams);
    /// List services, by name or team (GET /services).
    read list_services(ListServicesParams), paged;
    /// Get one service by id with its escalation policy, teams and integrations (GET /services/{id}).
    read get_service(GetServiceParams);
    /// List who is on call now (or over a window), by schedule or escalation policy (GET /oncalls).
    read list_oncalls(ListOncallsParams), paged;
    /// List change events (deploys, config changes) over the last 24 hours by default (GET /change_events).
    read list_change_events(ListChangeEventsParams), paged;
    /// List on-call schedules (GET /schedules).
    read list_schedules(ListSchedulesParams), paged;
    /// List escalation policies (GET /escalation_policies).
    read list_escalation_policies(ListEscalationPoliciesParams), paged;
}

/// The OAuth scope each operation needs, by operation name; validation probes each.
pub const REQUIRED_SCOPES: &[(&str, &str)] = &[
    ("list_incidents", "incidents.read"),
    ("get_incident", "incidents.read"),
    ("list_incident_alerts", "incidents.read"),
    ("list_incident_log_entries", "incidents.read"),
    ("list_incident_notes", "incidents.read"),
    ("list_related_change_events", "incidents.read"),
    ("list_services", "services.read"),
    ("get_service", "services.read"),
    ("list_oncalls", "oncalls.read"),
    ("list_change_events", "change_events.read"),
    ("list_schedules", "schedules.read"),
    ("list_escalation_policies", "escalation_policies.read"),
];

fn default_limit() -> u32 {
    25
}

fn default_large_limit() -> u32 {
    100
}

/// An incident's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Open and not yet acknowledged.
    Triggered,
    /// Someone is working on it.
    Acknowledged,
    /// Over.
    Resolved,
}

/// An incident's urgency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Pages people.
    High,
    /// Notifies without paging.
    Low,
}

/// An alert's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Still firing.
    Triggered,
    /// Over.
    Resolved,
}

/// Order of incidents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSort {
    /// Newest first (default).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
}

/// Parameters of `list_incidents`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListIncidentsParams {
    /// Only incidents in these states: `triggered`, `acknowledged`, `resolved` (default all).
    #[serde(default)]
    pub statuses: Vec<IncidentStatus>,
    /// Start of the window: `now-24h` (default), an RFC 3339 time, or epoch seconds; at most 6 months before `until`.
    #[serde(default)]
    pub since: Option<TimeBound>,
    /// End of the window: `now` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub until: Option<TimeBound>,
    /// Search all time instead of a window (PagerDuty's `date_range=all`); `since` and `until` must then be absent.
    #[serde(default)]
    pub all_time: bool,
    /// Only incidents of these service ids, e.g. `PF9KMXH`.
    #[serde(default)]
    pub service_ids: Vec<String>,
    /// Only incidents of these team ids.
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// Only incidents of these urgencies: `high`, `low`.
    #[serde(default)]
    pub urgencies: Vec<Urgency>,
    /// Only the incident with this de-duplication key.
    #[serde(default)]
    pub incident_key: Option<String>,
    /// `newest` (default) or `oldest` first, by creation time.
    #[serde(default)]
    pub sort: IncidentSort,
    /// How many incidents to return, 1 to 500 (default 25).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `get_incident`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetIncidentParams {
    /// The incident id, e.g. `PGR0VU2` (the `id` of `list_incidents`, or `external_id` of a PagerDuty alert).
    pub incident_id: String,
}

/// Parameters of `list_incident_alerts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListIncidentAlertsParams {
    /// The incident id.
    pub incident_id: String,
    /// Only alerts in these states: `triggered`, `resolved`.
    #[serde(default)]
    pub statuses: Vec<AlertStatus>,
    /// Only the alert with this de-duplication key.
    #[serde(default)]
    pub alert_key: Option<String>,
    /// How many alerts to return, 1 to 500 (default 100).
    #[serde(default = "default_large_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `list_incident_log_entries`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListIncidentLogEntriesParams {
    /// The incident id.
    pub incident_id: String,
    /// Only entries after this time: an RFC 3339 time, `now-2h`, or epoch seconds.
    #[serde(default)]
    pub since: Option<TimeBound>,
    /// Only entries before this time.
    #[serde(default)]
    pub until: Option<TimeBound>,
    /// Only the most important entries (PagerDuty's `is_overview`).
    #[serde(default)]
    pub overview: bool,
    /// How many entries to return, 1 to 200 (default 100).
    #[serde(default = "default_large_limit")]
    #[schemars(range(min = 1, max = 200))]
    pub limit: u32,
}

/// Parameters of `list_incident_notes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentNotesParams {
    /// The incident id.
    pub incident_id: String,
}

/// Parameters of `list_related_change_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelatedChangeEventsParams {
    /// The incident id.
    pub incident_id: String,
    /// How many change events to return, 1 to 100 (default 25).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub limit: u32,
}

/// Parameters of `list_services`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListServicesParams {
    /// Only services whose name contains this text.
    #[serde(default)]
    pub query: Option<String>,
    /// Only services of these team ids.
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// How many services to return, 1 to 500 (default 100).
    #[serde(default = "default_large_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `get_service`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetServiceParams {
    /// The service id, e.g. `PF9KMXH`.
    pub service_id: String,
}

/// Parameters of `list_oncalls`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListOncallsParams {
    /// Only on-calls of these schedule ids.
    #[serde(default)]
    pub schedule_ids: Vec<String>,
    /// Only on-calls of these escalation policy ids.
    #[serde(default)]
    pub escalation_policy_ids: Vec<String>,
    /// Start of the window (default now): an RFC 3339 time, `now-1h`, or epoch seconds; at most 90 days before `until`.
    #[serde(default)]
    pub since: Option<TimeBound>,
    /// End of the window (default `since`).
    #[serde(default)]
    pub until: Option<TimeBound>,
    /// Only the first on-call of each escalation level (PagerDuty's `earliest`).
    #[serde(default)]
    pub earliest: bool,
    /// How many on-calls to return, 1 to 500 (default 100).
    #[serde(default = "default_large_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `list_change_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListChangeEventsParams {
    /// Start of the window: `now-24h` (default), an RFC 3339 time, or epoch seconds.
    #[serde(default)]
    pub since: Option<TimeBound>,
    /// End of the window: `now` (default).
    #[serde(default)]
    pub until: Option<TimeBound>,
    /// Only change events of these team ids.
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// How many change events to return, 1 to 500 (default 25).
    #[serde(default = "default_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `list_schedules`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSchedulesParams {
    /// Only schedules whose name contains this text.
    #[serde(default)]
    pub query: Option<String>,
    /// How many schedules to return, 1 to 500 (default 100).
    #[serde(default = "default_large_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Parameters of `list_escalation_policies`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEscalationPoliciesParams {
    /// Only policies whose name contains this text.
    #[serde(default)]
    pub query: Option<String>,
    /// Only policies of these team ids.
    #[serde(default)]
    pub team_ids: Vec<String>,
    /// Only policies that page these user ids.
    #[serde(default)]
    pub user_ids: Vec<String>,
    /// How many policies to return, 1 to 500 (default 100).
    #[serde(default = "default_large_limit")]
    #[schemars(range(min = 1, max = 500))]
    pub limit: u32,
}

/// Runs the operations for one connection, resolving relative times against `now`.
pub struct Api<'a> {
    client: PagerdutyClient<'a>,
    now: DateTime<Utc>,
}

impl<'a> Api<'a> {
    /// The operations over `client`, with `now` as the end of default windows.
    pub fn new(client: PagerdutyClient<'a>, now: DateTime<Utc>) -> Self {
        Self { client, now }
    }

    async fn list_incidents(
        &self,
        params: ListIncidentsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = Vec::new();
        if params.all_time {
            if params.since.is_some() || params.until.is_some() {
                return Err(Error::invalid_input(
                    "all_time",
                    "`all_time` searches every incident; leave out `since` and `until`",
                )
                .with_connector(CONNECTOR_ID));
            }
            query.push(("date_range", "all".to_owned()));
        } else {
            let range = window(
                params.since.as_ref(),
                params.until.as_ref(),
                TimeDelta::hours(24),
                MAX_WINDOW_DAYS,
                self.now,
            )?;
            query.push(("since", rfc3339(range.from)));
            query.push(("until", rfc3339(range.to)));
        }
        for status in &params.statuses {
            query.push(("statuses[]", enum_text(status)));
        }
        push_all(&mut query, "service_ids[]", &params.service_ids);
        push_all(&mut query, "team_ids[]", &params.team_ids);
        for urgency in &params.urgencies {
            query.push(("urgencies[]", enum_text(urgency)));
        }
        push_text(&mut query, "incident_key", params.incident_key);
        let order = match params.sort {
            IncidentSort::Newest => "created_at:desc",
            IncidentSort::Oldest => "created_at:asc",
        };
        query.push(("sort_by", order.to_owned()));
        for include in ["assignees", "services", "priorities"] {
            query.push(("include[]", include.to_owned()));
        }
        self.list(
            "list_incidents",
            "/incidents",
            &["incidents"],
            "incidents",
            query,
            params.limit,
            cursor,
            slim_incident,
        )
        .await
    }

    async fn get_incident(&self, params: GetIncidentParams) -> Result<OperationOutput> {
        let id = id_param("incident_id", &params.incident_id)?;
        let body = self
            .client
            .get(
                "get_incident",
                "/incidents/{id}",
                &["incidents", id],
                &[
                    ("include[]", "assignees".to_owned()),
                    ("include[]", "services".to_owned()),
                    ("include[]", "priorities".to_owned()),
                    ("include[]", "escalation_policies".to_owned()),
                    ("include[]", "teams".to_owned()),
                ],
            )
            .await?;
        let incident = body.get("incident").cloned().unwrap_or(Value::Null);
        Ok(OperationOutput::new(
            json!({ "incident": slim_incident(incident) }),
        ))
    }

    async fn list_incident_alerts(
        &self,
        params: ListIncidentAlertsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let id = id_param("incident_id", &params.incident_id)?;
        let mut query = Vec::new();
        for status in &params.statuses {
            query.push(("statuses[]", enum_text(status)));
        }
        push_text(&mut query, "alert_key", params.alert_key);
        self.list(
            "list_incident_alerts",
            "/incidents/{id}/alerts",
            &["incidents", id, "alerts"],
            "alerts",
            query,
            params.limit,
            cursor,
            slim,
        )
        .await
    }

    async fn list_incident_log_entries(
        &self,
        params: ListIncidentLogEntriesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let id = id_param("incident_id", &params.incident_id)?;
        let mut query = Vec::new();
        if let Some(since) = &params.since {
            query.push(("since", rfc3339(since.resolve("since", self.now)?)));
        }
        if let Some(until) = &params.until {
            query.push(("until", rfc3339(until.resolve("until", self.now)?)));
        }
        if params.overview {
            query.push(("is_overview", "true".to_owned()));
        }
        self.list(
            "list_incident_log_entries",
            "/incidents/{id}/log_entries",
            &["incidents", id, "log_entries"],
            "log_entries",
            query,
            params.limit,
            cursor,
            slim,
        )
        .await
    }

    async fn list_incident_notes(&self, params: IncidentNotesParams) -> Result<OperationOutput> {
        let id = id_param("incident_id", &params.incident_id)?;
        let body = self
            .client
            .get(
                "list_incident_notes",
                "/incidents/{id}/notes",
                &["incidents", id, "notes"],
                &[],
            )
            .await?;
        let notes: Vec<Value> = items(&body, "notes").into_iter().map(slim).collect();
        Ok(OperationOutput::new(json!({ "notes": notes })))
    }

    async fn list_related_change_events(
        &self,
        params: RelatedChangeEventsParams,
    ) -> Result<OperationOutput> {
        let id = id_param("incident_id", &params.incident_id)?;
        let body = self
            .client
            .get(
                "list_related_change_events",
                "/incidents/{id}/related_change_events",
                &["incidents", id, "related_change_events"],
                &[("limit", params.limit.to_string())],
            )
            .await?;
        let events: Vec<Value> = items(&body, "change_events")
            .into_iter()
            .map(slim)
            .collect();
        Ok(OperationOutput::new(json!({ "change_events": events })))
    }

    async fn list_services(
        &self,
        params: ListServicesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = Vec::new();
        push_text(&mut query, "query", params.query);
        push_all(&mut query, "team_ids[]", &params.team_ids);
        query.push(("sort_by", "name".to_owned()));
        self.list(
            "list_services",
            "/services",
            &["services"],
            "services",
            query,
            params.limit,
            cursor,
            slim,
        )
        .await
    }

    async fn get_service(&self, params: GetServiceParams) -> Result<OperationOutput> {
        let id = id_param("service_id", &params.service_id)?;
        let body = self
            .client
            .get(
                "get_service",
                "/services/{id}",
                &["services", id],
                &[
                    ("include[]", "escalation_policies".to_owned()),
                    ("include[]", "teams".to_owned()),
                    ("include[]", "integrations".to_owned()),
                ],
            )
            .await?;
        let service = body.get("service").cloned().unwrap_or(Value::Null);
        Ok(OperationOutput::new(json!({ "service": slim(service) })))
    }

    async fn list_oncalls(
        &self,
        params: ListOncallsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = Vec::new();
        push_all(&mut query, "schedule_ids[]", &params.schedule_ids);
        push_all(
            &mut query,
            "escalation_policy_ids[]",
            &params.escalation_policy_ids,
        );
        if params.since.is_some() || params.until.is_some() {
            let since = match &params.since {
                Some(since) => since.resolve("since", self.now)?,
                None => self.now,
            };
            let until = match &params.until {
                Some(until) => until.resolve("until", self.now)?,
                None => since,
            };
            check_window(since, until, 90)?;
            query.push(("since", rfc3339(since)));
            query.push(("until", rfc3339(until)));
        }
        if params.earliest {
            query.push(("earliest", "true".to_owned()));
        }
        self.list(
            "list_oncalls",
            "/oncalls",
            &["oncalls"],
            "oncalls",
            query,
            params.limit,
            cursor,
            slim,
        )
        .await
    }

    async fn list_change_events(
        &self,
        params: ListChangeEventsParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let range = window(
            params.since.as_ref(),
            params.until.as_ref(),
            TimeDelta::hours(24),
            MAX_WINDOW_DAYS,
            self.now,
        )?;
        let mut query = vec![("since", rfc3339(range.from)), ("until", rfc3339(range.to))];
        push_all(&mut query, "team_ids[]", &params.team_ids);
        self.list(
            "list_change_events",
            "/change_events",
            &["change_events"],
            "change_events",
            query,
            params.limit,
            cursor,
            slim,
        )
        .await
    }

    async fn list_schedules(
        &self,
        params: ListSchedulesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = Vec::new();
        push_text(&mut query, "query", params.query);
        self.list(
            "list_schedules",
            "/schedules",
            &["schedules"],
            "schedules",
            query,
            params.limit,
            cursor,
            slim,
        )
        .await
    }

    async fn list_escalation_policies(
        &self,
        params: ListEscalationPoliciesParams,
        cursor: Option<String>,
    ) -> Result<OperationOutput> {
        let mut query = Vec::new();
        push_text(&mut query, "query", params.query);
        push_all(&mut query, "team_ids[]", &params.team_ids);
        push_all(&mut query, "user_ids[]", &params.user_ids);
        self.list(
            "list_escalation_policies",
            "/escalation_policies",
            &["escalation_policies"],
            "escalation_policies",
            query,
            params.limit,
            cursor,
            slim,
        )
        .await
    }

    /// Reads offset pages of `key` until `limit` items, no `more`, or [`MAX_PAGES`].
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        operation: &'static str,
        template: &str,
        segments: &[&str],
        key: &str,
        query: Vec<(&str, String)>,
        limit: u32,
        cursor: Option<String>,
        shape: fn(Value) -> Value,
    ) -> Result<OperationOutput> {
        let mut offset = offset_of(operation, cursor)?;
        let wanted = limit as usize;
        let mut collected: Vec<Value> = Vec::new();
        let mut more = true;
        let mut pages = 0;
        while more && collected.len() < wanted && pages < MAX_PAGES && offset < MAX_OFFSET {
            let page_size =
                PAGE_SIZE.min(u32::try_from(wanted - collected.len()).unwrap_or(PAGE_SIZE));
            let mut page_query = query.clone();
            page_query.push(("limit", page_size.to_string()));
            page_query.push(("offset", offset.to_string()));
            page_query.push(("total", "false".to_owned()));
            let body = self
                .client
                .get(operation, template, segments, &page_query)
                .await?;
            pages += 1;
            let page = items(&body, key);
            offset += page.len() as u64;
            more = body.get("more").and_then(Value::as_bool).unwrap_or(false) && !page.is_empty();
            collected.extend(page.into_iter().map(shape));
        }
        // More exists past PagerDuty's offset limit, but it cannot be paged to.
        let beyond_limit = more && offset >= MAX_OFFSET;
        let next = (more && !beyond_limit).then(|| offset.to_string());
        let mut data = Map::new();
        data.insert(key.to_owned(), Value::Array(collected));
        data.insert("more".to_owned(), Value::Bool(more));
        Ok(OperationOutput::new(Value::Object(data))
            .with_next_page(next)
            .truncated(beyond_limit))
    }
}

/// The offset a provider cursor carries; only this module writes them.
fn offset_of(operation: &str, cursor: Option<String>) -> Result<u64> {
    cursor.map_or(Ok(0), |cursor| {
        cursor.parse().map_err(|_| {
            Error::invalid_input(
                "cursor",
                format!("`cursor` must be a `next_cursor` that `{operation}` returned"),
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("pass back the `next_cursor` of the previous page unchanged")
        })
    })
}

/// A resolved window no longer than `max_days`.
fn window(
    since: Option<&TimeBound>,
    until: Option<&TimeBound>,
    default_lookback: TimeDelta,
    max_days: i64,
    now: DateTime<Utc>,
) -> Result<TimeRange> {
    let range =
        TimeRange::resolve_fields(("since", since), ("until", until), default_lookback, now)?;
    check_window(range.from, range.to, max_days)?;
    Ok(range)
}

fn check_window(since: DateTime<Utc>, until: DateTime<Utc>, max_days: i64) -> Result<()> {
    if since > until {
        return Err(Error::invalid_input("since", "`since` is after `until`")
            .with_connector(CONNECTOR_ID)
            .with_hint("swap `since` and `until`"));
    }
    if until - since > TimeDelta::days(max_days) {
        return Err(Error::invalid_input(
            "since",
            format!("PagerDuty searches at most {max_days} days between `since` and `until`"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("narrow the window, or split it into several calls"));
    }
    Ok(())
}

/// A non-blank id, trimmed.
fn id_param<'p>(field: &str, id: &'p str) -> Result<&'p str> {
    let id = id.trim();
    if id.is_empty() {
        return Err(
            Error::invalid_input(field, format!("`{field}` must not be empty"))
                .with_connector(CONNECTOR_ID),
        );
    }
    Ok(id)
}

fn enum_text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn push_text(query: &mut Vec<(&str, String)>, name: &'static str, value: Option<String>) {
    if let Some(value) = value
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
    {
        query.push((name, value));
    }
}

fn push_all(query: &mut Vec<(&str, String)>, name: &'static str, values: &[String]) {
    for value in values {
        push_text(query, name, Some(value.clone()));
    }
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn items(body: &Value, key: &str) -> Vec<Value> {
    body.get(key)
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Drops the API links (`self`) PagerDuty puts on every object and reference;
/// `html_url` stays, for people.
fn slim(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(key, _)| key != "self")
                .map(|(key, value)| (key, slim(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(slim).collect()),
        other => other,
    }
}

/// An incident with what an investigation reads first: number, title, status,
/// urgency, priority, service, assignees, escalation policy, times and link.
fn slim_incident(incident: Value) -> Value {
    let Value::Object(mut fields) = slim(incident) else {
        return Value::Null;
    };
    let assignees: Vec<Value> = fields
        .get("assignments")
        .and_then(Value::as_array)
        .map(|assignments| {
            assignments
                .iter()
                .filter_map(|assignment| assignment.get("assignee").cloned())
                .collect()
        })
        .unwrap_or_default();
    if !assignees.is_empty() {
        fields.insert("assignees".to_owned(), Value::Array(assignees));
    }
    for noisy in ["assignments", "acknowledgements", "pending_actions"] {
        fields.remove(noisy);
    }
    Value::Object(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_names_the_scope_it_needs() {
        let mut named: Vec<&str> = REQUIRED_SCOPES.iter().map(|(op, _)| *op).collect();
        named.sort_unstable();
        let mut declared = OPERATION_NAMES.to_vec();
        declared.sort_unstable();
        assert_eq!(named, declared);
        for (_, scope) in REQUIRED_SCOPES {
            assert!(
                crate::OAUTH_SCOPES.contains(scope),
                "{scope} is not requested"
            );
        }
    }

    #[test]
    fn every_operation_schema_documents_every_field() {
        for descriptor in descriptors() {
            let schema = serde_json::to_value(&descriptor.params_schema).unwrap();
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
    fn windows_longer_than_six_months_are_refused() {
        let now = Utc::now();
        let error = window(
            Some(&TimeBound::from("now-200d")),
            None,
            TimeDelta::hours(24),
            MAX_WINDOW_DAYS,
            now,
        )
        .unwrap_err();
        assert_eq!(error.field(), Some("since"));
        assert!(window(None, None, TimeDelta::hours(24), MAX_WINDOW_DAYS, now).is_ok());
    }

    #[test]
    fn slim_drops_api_links_and_flattens_assignees() {
        let incident = json!({
            "id": "P1", "self": "https://api.pagerduty.com/incidents/P1",
            "service": {"id": "S", "self": "x", "summary": "API"},
            "assignments": [{"assignee": {"id": "U", "summary": "Ann", "self": "y"}}]
        });
        assert_eq!(
            slim_incident(incident),
            json!({"id": "P1", "service": {"id": "S", "summary": "API"},
                   "assignees": [{"id": "U", "summary": "Ann"}]})
        );
    }
}
