//! The Datadog connector: connect with an API key and an application key, prove
//! each permission with a read-only probe, run read-only queries (logs, metrics,
//! monitors, events, hosts, incidents) and normalise monitor webhooks.
//!
//! See the crate README for the connect fields, sites and webhook setup.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;
pub mod webhook;

use async_trait::async_trait;
use chrono::Utc;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckTimer, Connector,
    ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, Error, FromEnv, QueryOutput,
    Result, ValidationCheck, ValidationReport, VerifiedDelivery, WebhookAuth, WebhookDescriptor,
    WebhookMethod, WebhookOutcome,
};
use patchbay_http::HttpClient;
use serde_json::{json, Value};

pub use auth::{ConnectForm, DatadogSecrets};
use client::{probe_error, DatadogClient};
pub use config::{parse_site, DatadogConfig, DatadogSite, SITES};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "datadog";

/// The header Datadog is told to send with the per-connection webhook token.
pub const WEBHOOK_TOKEN_HEADER: &str = "X-Patchbay-Token";

/// What the registry knows about the Datadog connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Datadog",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    // The setup guide names no environment variables: keys and site come from the UI.
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/datadog/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::Token {
            header: WEBHOOK_TOKEN_HEADER,
        },
    }),
    oauth: None,
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<DatadogConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Datadog connector; holds only the shared HTTP client, never keys.
#[derive(Debug, Clone)]
pub struct DatadogConnector {
    http: HttpClient,
}

impl DatadogConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for DatadogConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

/// A read-only probe proving one application-key permission.
struct Probe {
    kind: ProbeKind,
    permission: &'static str,
    description: &'static str,
}

/// The request each probe makes.
#[derive(Debug, Clone, Copy)]
enum ProbeKind {
    Monitors,
    Events,
    Hosts,
    Timeseries,
    Logs,
    Incidents,
    Org,
}

const API_KEY_CHECK: (&str, &str) = (
    "api_key",
    "The API key is valid for the selected site (GET /api/v1/validate)",
);

const APP_KEY_CHECK: (&str, &str) = (
    "app_key",
    "The application key is accepted (proven by the first permission probe that succeeds)",
);

const PROBES: &[Probe] = &[
    Probe {
        kind: ProbeKind::Monitors,
        permission: "monitors_read",
        description: "The application key can read monitors (GET /api/v1/monitor)",
    },
    Probe {
        kind: ProbeKind::Events,
        permission: "events_read",
        description: "The application key can read events (GET /api/v1/events)",
    },
    Probe {
        kind: ProbeKind::Hosts,
        permission: "hosts_read",
        description: "The application key can list hosts (GET /api/v1/hosts)",
    },
    Probe {
        kind: ProbeKind::Timeseries,
        permission: "timeseries_query",
        description: "The application key can query metrics (GET /api/v1/query)",
    },
    Probe {
        kind: ProbeKind::Logs,
        permission: "logs_read_data",
        description: "The application key can search logs (POST /api/v2/logs/events/search)",
    },
    Probe {
        kind: ProbeKind::Incidents,
        permission: "incident_read",
        description: "The application key can read incidents (GET /api/v2/incidents)",
    },
    Probe {
        kind: ProbeKind::Org,
        permission: "org_management",
        description: "The application key can read the organisation name (GET /api/v1/org)",
    },
];

impl DatadogConnector {
    /// Runs one probe; on `org_management` success fills the org name and id.
    async fn probe(
        &self,
        client: &DatadogClient<'_>,
        kind: ProbeKind,
        config: &mut DatadogConfig,
    ) -> Result<String> {
        let now = Utc::now();
        let hour_ago = now - chrono::TimeDelta::hours(1);
        match kind {
            ProbeKind::Monitors => {
                client
                    .get(
                        "validate",
                        "/api/v1/monitor",
                        &[("page", "0".to_owned()), ("page_size", "1".to_owned())],
                    )
                    .await?;
                Ok("monitors are readable".to_owned())
            }
            ProbeKind::Events => {
                client
                    .get(
                        "validate",
                        "/api/v1/events",
                        &[
                            ("start", hour_ago.timestamp().to_string()),
                            ("end", now.timestamp().to_string()),
                        ],
                    )
                    .await?;
                Ok("events are readable".to_owned())
            }
            ProbeKind::Hosts => {
                client
                    .get("validate", "/api/v1/hosts", &[("count", "1".to_owned())])
                    .await?;
                Ok("hosts are readable".to_owned())
            }
            ProbeKind::Timeseries => {
                client
                    .get(
                        "validate",
                        "/api/v1/query",
                        &[
                            ("from", hour_ago.timestamp().to_string()),
                            ("to", now.timestamp().to_string()),
                            ("query", "avg:system.load.1{*}".to_owned()),
                        ],
                    )
                    .await?;
                Ok("metrics can be queried".to_owned())
            }
            ProbeKind::Logs => {
                let body = json!({
                    "filter": {"query": "*", "from": "now-15m", "to": "now"},
                    "page": {"limit": 1},
                });
                client
                    .post_search("validate", "/api/v2/logs/events/search", &body)
                    .await?;
                Ok("logs can be searched".to_owned())
            }
            ProbeKind::Incidents => {
                client
                    .get(
                        "validate",
                        "/api/v2/incidents",
                        &[("page[size]", "1".to_owned())],
                    )
                    .await?;
                Ok("incidents are readable".to_owned())
            }
            ProbeKind::Org => {
                let orgs = client.get("validate", "/api/v1/org", &[]).await?;
                let org = orgs.pointer("/orgs/0");
                let text = |key: &str| {
                    org.and_then(|org| org.get(key))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                config.org_name = text("name");
                config.org_id = text("public_id");
                Ok(match &config.org_name {
                    Some(name) => format!("organisation `{name}`"),
                    None => "the organisation is readable".to_owned(),
                })
            }
        }
    }
}

#[async_trait]
impl Connector for DatadogConnector {
    type Config = DatadogConfig;
    type Secrets = DatadogSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<DatadogConfig, DatadogSecrets>> {
        let AuthRequest::Form(fields) = request else {
            return Err(Error::unsupported(
                "Datadog connects with an API key and an application key form",
            )
            .with_connector(CONNECTOR_ID));
        };
        let (config, secrets) = ConnectForm::from_fields(fields)
            .and_then(ConnectForm::into_parts)
            .map_err(|error| error.with_connector(CONNECTOR_ID))?;
        Ok(Credentials::new(config, secrets))
    }

    /// Proves the API key, then each permission with a read-only probe. The app
    /// key is mandatory and proven by the first probe Datadog accepts.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<DatadogConfig, DatadogSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Datadog credentials");
        let mut config = credentials.config.clone();
        let client = DatadogClient::new(&self.http, &credentials.config, &credentials.secrets);
        let (api_id, api_description) = API_KEY_CHECK;
        let (app_id, app_description) = APP_KEY_CHECK;

        let timer = CheckTimer::start();
        let api_key_result = client
            .validate_api_key()
            .await
            .map(|()| format!("the API key is valid for {}", config.site));
        let api_key_check = timer.finish(api_id, api_description, true, api_key_result);
        if api_key_check.outcome != patchbay_core::CheckOutcome::Ok {
            let mut checks = vec![
                api_key_check,
                CheckTimer::skipped(app_id, app_description, true),
            ];
            checks.extend(
                PROBES
                    .iter()
                    .map(|probe| CheckTimer::skipped(probe.permission, probe.description, false)),
            );
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }

        // The app-key check ends at the first probe Datadog accepts.
        let mut app_key_timer = Some(CheckTimer::start());
        let mut app_key_check: Option<ValidationCheck> = None;
        let mut rejection_statuses = Vec::new();
        let mut permission_checks = Vec::with_capacity(PROBES.len());
        for probe in PROBES {
            let timer = CheckTimer::start();
            let result = self
                .probe(&client, probe.kind, &mut config)
                .await
                .map_err(|error| probe_error(error, probe.permission));
            match &result {
                Ok(_) => {
                    if let Some(timer) = app_key_timer.take() {
                        let detail = format!("accepted by the {} probe", probe.permission);
                        app_key_check =
                            Some(timer.finish(app_id, app_description, true, Ok(detail)));
                    }
                }
                Err(error) => rejection_statuses.push(error.provider_status()),
            }
            permission_checks.push(timer.finish(
                probe.permission,
                probe.description,
                false,
                result,
            ));
        }
        let app_key_check = match (app_key_check, app_key_timer) {
            (Some(check), _) => check,
            (None, timer) => timer.unwrap_or_else(CheckTimer::start).finish(
                app_id,
                app_description,
                true,
                Err(app_key_error(&rejection_statuses)),
            ),
        };

        let mut checks = vec![api_key_check, app_key_check];
        checks.extend(permission_checks);
        let report = ValidationReport::new(CONNECTOR_ID, checks);
        credentials.config = config;
        Ok(report)
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<DatadogConfig, DatadogSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Datadog query");
        let client = DatadogClient::new(&self.http, &credentials.config, &credentials.secrets);
        query::run(
            &query::Api::new(&client, Utc::now()),
            ctx,
            operation,
            params,
        )
        .await
    }

    /// Normalises a delivery whose token the host verified.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        config: &DatadogConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        let alert = webhook::normalize(config, delivery)?;
        Ok(WebhookOutcome {
            events: vec![alert],
            reply: None,
        })
    }
}

/// Why no probe accepted the application key.
fn app_key_error(provider_statuses: &[Option<u16>]) -> Error {
    let rejected = !provider_statuses.is_empty()
        && provider_statuses
            .iter()
            .all(|status| matches!(status, Some(401 | 403)));
    if rejected {
        Error::new(
            patchbay_core::ErrorKind::AuthFailed,
            "Datadog rejected the application key on every permission probe",
        )
        .with_field("app_key")
        .with_connector(CONNECTOR_ID)
        .with_hint(
            "check the application key and that it belongs to the same organisation and site as the API key; \
             its owner needs at least one of monitors_read, events_read, hosts_read, timeseries_query or logs_read_data",
        )
    } else {
        Error::unavailable(
            "no permission probe got an answer from Datadog, so the application key is unproven",
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("see the other checks for the provider errors and try again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_probes_every_permission_an_operation_needs() {
        for (operation, permission) in query::REQUIRED_PERMISSIONS {
            assert!(
                PROBES.iter().any(|probe| probe.permission == *permission),
                "`{operation}` needs `{permission}`, which validation does not probe"
            );
        }
    }
}
