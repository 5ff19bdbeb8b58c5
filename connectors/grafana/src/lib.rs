//! The Grafana connector: connect Grafana Cloud or a self-hosted Grafana with a
//! service account token and the Grafana URL (checked against the SSRF policy at
//! connect time and on every request), validate the token and the permissions the
//! operations need, run read-only queries (dashboards, data sources, PromQL and
//! LogQL, alert rules, active alerts, annotations), and turn the alerting contact
//! point's webhooks (HMAC-signed or with a bearer credential) into alerts.
//!
//! See the crate README for the connect fields, checks, operations and webhook setup.
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
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, Error, ErrorKind,
    FromEnv, QueryOutput, Result, UnverifiedDelivery, ValidationCheck, ValidationReport,
    VerifiedDelivery, WebhookAuth, WebhookDescriptor, WebhookMethod, WebhookOutcome, WebhookSetup,
    WebhookSetupField,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, GrafanaSecrets};
use client::{role_granting, GrafanaClient};
pub use config::{GrafanaConfig, WebhookAuthMode, DEFAULT_SIGNATURE_HEADER};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "grafana";

/// The permissions validation checks, one line each: those the operations need
/// that a Viewer has (`datasources:read`, which a Viewer may lack, has its own
/// check through `GET /api/datasources`).
pub const CHECKED_PERMISSIONS: &[&str] = &[
    "dashboards:read",
    "datasources:query",
    "alert.rules:read",
    "alert.instances:read",
    "annotations:read",
];

/// What the registry knows about the Grafana connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Grafana",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/grafana/alerts/webhook/{user_id}",
        methods: &[WebhookMethod::Post, WebhookMethod::Put],
        auth: WebhookAuth::Signature,
    }),
    oauth: None,
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<GrafanaConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Grafana connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct GrafanaConnector {
    http: HttpClient,
}

impl GrafanaConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }

    fn client<'a>(
        &'a self,
        credentials: &'a Credentials<GrafanaConfig, GrafanaSecrets>,
    ) -> GrafanaClient<'a> {
        GrafanaClient::new(
            &self.http,
            &credentials.config.base_url,
            &credentials.secrets.api_token,
        )
    }
}

impl FromEnv for GrafanaConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_ALLOWED_PRIVATE_NETWORKS`, `PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const HEALTH_CHECK: (&str, &str) = (
    "health",
    "Grafana answers at the URL and reports its version (GET /api/health)",
);
const USER_CHECK: (&str, &str) = (
    "user",
    "Grafana accepts the service account token (GET /api/user)",
);
const ORG_CHECK: (&str, &str) = ("org", "The token belongs to an organisation (GET /api/org)");
const DATASOURCES_CHECK: (&str, &str) = (
    "datasources",
    "The token can list data sources (GET /api/datasources; needs datasources:read, which a Viewer may lack)",
);

fn permission_check_id(permission: &str) -> String {
    format!("permission:{permission}")
}

fn permission_description(permission: &str) -> String {
    let used_by: Vec<&str> = query::REQUIRED_PERMISSIONS
        .iter()
        .filter(|(_, needed)| *needed == permission)
        .map(|(operation, _)| *operation)
        .collect();
    format!(
        "The service account has `{permission}` (for {})",
        used_by.join(", ")
    )
}

fn text_of<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

impl GrafanaConnector {
    /// One line per permission in [`CHECKED_PERMISSIONS`], from the token's own
    /// permission list (`GET /api/access-control/user/permissions`).
    async fn permission_checks(client: &GrafanaClient<'_>) -> Vec<ValidationCheck> {
        let timers: Vec<CheckTimer> = CHECKED_PERMISSIONS
            .iter()
            .map(|_| CheckTimer::start())
            .collect();
        let listed = client
            .get(
                "validate",
                &["api", "access-control", "user", "permissions"],
                &[],
                None,
            )
            .await;
        CHECKED_PERMISSIONS
            .iter()
            .zip(timers)
            .map(|(permission, timer)| {
                let id = permission_check_id(permission);
                let description = permission_description(permission);
                let result = match &listed {
                    Ok(Value::Object(granted)) => {
                        if granted.contains_key(*permission) {
                            Ok(format!("granted `{permission}`"))
                        } else {
                            Err(Error::new(
                                ErrorKind::PermissionDenied,
                                format!("the service account lacks `{permission}`"),
                            )
                            .with_connector(CONNECTOR_ID)
                            .with_hint(role_granting(permission)))
                        }
                    }
                    Ok(_) => Err(
                        Error::internal("Grafana's permission list is not a JSON object")
                            .with_connector(CONNECTOR_ID),
                    ),
                    Err(error) if error.kind() == ErrorKind::NotFound => Ok(
                        "not checked: this Grafana has no access-control permissions API; \
                         an operation lacking a permission names it"
                            .to_owned(),
                    ),
                    Err(error) => Err(copy_error(error)),
                };
                timer.finish(&id, &description, false, result)
            })
            .collect()
    }
}

#[async_trait]
impl Connector for GrafanaConnector {
    type Config = GrafanaConfig;
    type Secrets = GrafanaSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<GrafanaConfig, GrafanaSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .and_then(|form| form.into_parts(&self.http))
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            _ => Err(Error::unsupported(
                "Grafana connects with a service account token and its URL, not through OAuth",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("send base_url and api_token in the connect form")),
        }
    }

    /// Checks reachability and version (`/api/health`), the token (`/api/user`,
    /// `/api/org`, mandatory), one line per permission the operations need, and
    /// data-source access; fills the organisation, login and version.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<GrafanaConfig, GrafanaSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Grafana credentials");
        let mut config = credentials.config.clone();
        let client = self.client(credentials);
        let mut checks = Vec::new();

        let (id, description) = HEALTH_CHECK;
        let timer = CheckTimer::start();
        let health = client
            .get("validate", &["api", "health"], &[], None)
            .await
            .map(|body| {
                config.version = text_of(&body, "version").map(str::to_owned);
                match (&config.version, text_of(&body, "database")) {
                    (Some(version), Some(database)) => {
                        format!("Grafana {version}, database {database}")
                    }
                    (Some(version), None) => format!("Grafana {version}"),
                    _ => "Grafana answers (version not reported)".to_owned(),
                }
            });
        checks.push(timer.finish(id, description, false, health));

        let (id, description) = USER_CHECK;
        let timer = CheckTimer::start();
        let user = client
            .get("validate", &["api", "user"], &[], None)
            .await
            .map(|body| {
                config.login = text_of(&body, "login").map(str::to_owned);
                match &config.login {
                    Some(login) => format!("authenticated as `{login}`"),
                    None => "the token is accepted".to_owned(),
                }
            });
        let user_check = timer.finish(id, description, true, user);
        let user_ok = user_check.outcome == CheckOutcome::Ok;
        checks.push(user_check);

        let (org_id, org_description) = ORG_CHECK;
        let (ds_id, ds_description) = DATASOURCES_CHECK;
        if !user_ok {
            checks.push(CheckTimer::skipped(org_id, org_description, true));
            for permission in CHECKED_PERMISSIONS {
                checks.push(CheckTimer::skipped(
                    &permission_check_id(permission),
                    &permission_description(permission),
                    false,
                ));
            }
            checks.push(CheckTimer::skipped(ds_id, ds_description, false));
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }

        let timer = CheckTimer::start();
        let org = client
            .get("validate", &["api", "org"], &[], None)
            .await
            .map(|body| {
                config.org_id = body.get("id").and_then(Value::as_i64);
                config.org_name = text_of(&body, "name").map(str::to_owned);
                match (&config.org_name, config.org_id) {
                    (Some(name), Some(id)) => format!("organisation `{name}` (id {id})"),
                    _ => "the token belongs to an organisation".to_owned(),
                }
            });
        checks.push(timer.finish(org_id, org_description, true, org));

        checks.extend(Self::permission_checks(&client).await);

        let timer = CheckTimer::start();
        let datasources = client
            .get(
                "validate",
                &["api", "datasources"],
                &[],
                Some("datasources:read"),
            )
            .await
            .map(|body| {
                let sources = body.as_array().cloned().unwrap_or_default();
                let count = |kind: &str| {
                    sources
                        .iter()
                        .filter(|source| source.get("type").and_then(Value::as_str) == Some(kind))
                        .count()
                };
                format!(
                    "{} data sources ({} Prometheus, {} Loki)",
                    sources.len(),
                    count("prometheus"),
                    count("loki")
                )
            });
        checks.push(timer.finish(ds_id, ds_description, false, datasources));

        credentials.config = config;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<GrafanaConfig, GrafanaSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Grafana query");
        let api = query::Api::new(self.client(credentials), Utc::now());
        query::run(&api, ctx, operation, params).await
    }

    /// Checks the HMAC signature (and timestamp) or the bearer credential, as the
    /// connection's `webhook_auth` says, with the connection's webhook secret.
    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<GrafanaConfig, GrafanaSecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        webhook::verify(
            credentials.map(|credentials| &credentials.config),
            credentials.and_then(|credentials| credentials.webhook_secret.as_ref()),
            delivery,
            Utc::now(),
        )
    }

    /// One alert per `alerts[]` element; an empty list is a test delivery.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &GrafanaConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        webhook::normalize(delivery)
    }

    /// The Grafana contact point's settings for this connection.
    fn webhook_setup(&self, config: &GrafanaConfig) -> Option<WebhookSetup> {
        Some(webhook_setup(config))
    }
}

/// What to enter in the Grafana contact point for a connection with `config`.
pub fn webhook_setup(config: &GrafanaConfig) -> WebhookSetup {
    let mut fields = vec![
        WebhookSetupField::text("Integration", "Webhook"),
        WebhookSetupField::url("URL"),
        WebhookSetupField::text(
            "Optional Webhook settings > HTTP Method",
            "POST (PUT is accepted too)",
        ),
    ];
    match config.webhook_auth {
        WebhookAuthMode::Hmac => {
            fields.push(WebhookSetupField::credential(
                "Optional Webhook settings > HMAC Signature > Secret",
            ));
            fields.push(WebhookSetupField::text(
                "Optional Webhook settings > HMAC Signature > Header",
                config.signature_header.clone(),
            ));
            fields.push(WebhookSetupField::text(
                "Optional Webhook settings > HMAC Signature > Timestamp Header",
                config
                    .timestamp_header
                    .clone()
                    .unwrap_or_else(|| "(leave empty)".to_owned()),
            ));
        }
        WebhookAuthMode::Bearer => {
            fields.push(WebhookSetupField::text(
                "Optional Webhook settings > Authorization Header - Scheme",
                "Bearer",
            ));
            fields.push(WebhookSetupField::credential(
                "Optional Webhook settings > Authorization Header - Credentials",
            ));
        }
    }
    WebhookSetup {
        location: "Grafana: Alerting > Contact points > + Add contact point".to_owned(),
        fields,
        steps: vec![
            "Save the contact point.".to_owned(),
            "In Notification policies, route alerts to the Patchbay contact point.".to_owned(),
        ],
    }
}

/// A copy of an error's kind, message and context, so a shared probe's result can
/// be reported on several lines.
fn copy_error(error: &Error) -> Error {
    let mut copy = Error::new(error.kind(), error.message()).with_connector(CONNECTOR_ID);
    if let Some(hint) = error.hint() {
        copy = copy.with_hint(hint);
    }
    if let Some(status) = error.provider_status() {
        copy = copy.with_provider_status(status);
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_checks_every_permission_the_operations_need() {
        for (operation, permission) in query::REQUIRED_PERMISSIONS {
            assert!(
                CHECKED_PERMISSIONS.contains(permission) || *permission == "datasources:read",
                "{operation} needs {permission}, which validation does not check"
            );
        }
        for permission in CHECKED_PERMISSIONS {
            assert!(
                query::REQUIRED_PERMISSIONS
                    .iter()
                    .any(|(_, needed)| needed == permission),
                "{permission} is checked but no operation needs it"
            );
        }
    }

    #[test]
    fn the_setup_names_the_hmac_header_or_the_bearer_scheme() {
        let mut config = GrafanaConfig::new("https://acme.grafana.net".into());
        config.timestamp_header = Some("X-Grafana-Alerting-Timestamp".into());
        let shown =
            webhook_setup(&config).render("https://pb/grafana/alerts/webhook/u", Some("s3"));
        let text = shown.to_string();
        assert!(text.contains("X-Grafana-Alerting-Signature"), "{text}");
        assert!(text.contains("X-Grafana-Alerting-Timestamp"), "{text}");
        assert!(text.contains("\"s3\""), "{text}");
        config.webhook_auth = WebhookAuthMode::Bearer;
        let text = webhook_setup(&config).render("u", Some("s3")).to_string();
        assert!(text.contains("Bearer") && text.contains("\"s3\""), "{text}");
        assert!(!text.contains("HMAC"), "{text}");
    }
}
