//! The PagerDuty connector: connect with a REST API key or through OAuth (US or EU
//! accounts), validate the credentials one scope at a time, read incidents, their
//! alerts, timelines, notes and related changes, services, on-calls, schedules and
//! escalation policies, and turn signed Generic Webhooks (v3) into alerts.
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
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, ErrorKind, FromEnv, OAuthSpec, QueryOutput, Result, UnverifiedDelivery,
    ValidationCheck, ValidationReport, VerifiedDelivery, WebhookAuth, WebhookDescriptor,
    WebhookMethod, WebhookOutcome,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{missing_scopes, ConnectForm, PagerdutySecrets};
use client::PagerdutyClient;
pub use config::{AuthType, PagerdutyConfig, Region, EU_API_BASE, US_API_BASE};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "pagerduty";

/// The environment variable holding the OAuth client id.
pub const CLIENT_ID_VAR: &str = "PAGERDUTY_CLIENT_ID";
/// The environment variable holding the OAuth client secret.
pub const CLIENT_SECRET_VAR: &str = "PAGERDUTY_CLIENT_SECRET";
/// The flag that opens the OAuth flow; API tokens work without it.
pub const OAUTH_FLAG: &str = "NEXT_PUBLIC_ENABLE_PAGERDUTY_OAUTH";
/// What the OAuth routes answer while [`OAUTH_FLAG`] is off.
pub const OAUTH_DISABLED_MESSAGE: &str = "PagerDuty OAuth is not enabled";
/// PagerDuty's OAuth authorization endpoint (shared by US and EU accounts).
pub const AUTHORIZE_URL: &str = "https://identity.pagerduty.com/oauth/authorize";
/// PagerDuty's OAuth token endpoint.
pub const TOKEN_URL: &str = "https://identity.pagerduty.com/oauth/token";

/// The scopes requested (Scoped OAuth): `openid`, the user and abilities reads
/// validation makes, and one read scope per kind of thing the operations read.
pub const OAUTH_SCOPES: &[&str] = &[
    "openid",
    "users.read",
    "abilities.read",
    "incidents.read",
    "services.read",
    "oncalls.read",
    "schedules.read",
    "escalation_policies.read",
    "change_events.read",
];

/// What the registry knows about the PagerDuty connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "PagerDuty",
    category: Category::Observability,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::ApiKey],
    env_vars: &[
        EnvVar {
            name: CLIENT_ID_VAR,
            required: false,
            secret: false,
            description: "Client ID of the PagerDuty OAuth app (OAuth connections only; API tokens work without it)",
        },
        EnvVar {
            name: CLIENT_SECRET_VAR,
            required: false,
            secret: true,
            description: "Client secret of the PagerDuty OAuth app (OAuth connections only)",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/pagerduty/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::ProviderSignature,
    }),
    oauth: Some(OAuthSpec {
        authorize_url: AUTHORIZE_URL,
        token_url: TOKEN_URL,
        revoke_url: None,
        api_base_url: Some(US_API_BASE),
        start_options: &["region"],
        scopes: OAUTH_SCOPES,
        scope_separator: " ",
        extra_authorize_params: &[],
        // Scoped OAuth needs both PKCE and the client secret, sent in the form body.
        client_auth: ClientAuthStyle::RequestBody,
        pkce: true,
        client_id_env: &[CLIENT_ID_VAR],
        client_secret_env: &[CLIENT_SECRET_VAR],
        callback_path: "/pagerduty/oauth/callback",
        feature_flag: Some(OAUTH_FLAG),
        disabled_message: Some(OAUTH_DISABLED_MESSAGE),
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<PagerdutyConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The PagerDuty connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct PagerdutyConnector {
    http: HttpClient,
}

impl PagerdutyConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for PagerdutyConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

/// One `limit=1` read proving a scope the operations need.
pub struct ScopeProbe {
    /// The OAuth scope, also the check id.
    pub scope: &'static str,
    /// The collection read (`/incidents`).
    pub path: &'static str,
    /// What the check proves.
    pub description: &'static str,
}

/// The scope probes, one per scope in [`query::REQUIRED_SCOPES`].
pub const SCOPE_PROBES: &[ScopeProbe] = &[
    ScopeProbe {
        scope: "incidents.read",
        path: "incidents",
        description: "The credentials can read incidents (GET /incidents?limit=1)",
    },
    ScopeProbe {
        scope: "services.read",
        path: "services",
        description: "The credentials can read services (GET /services?limit=1)",
    },
    ScopeProbe {
        scope: "oncalls.read",
        path: "oncalls",
        description: "The credentials can read on-calls (GET /oncalls?limit=1)",
    },
    ScopeProbe {
        scope: "schedules.read",
        path: "schedules",
        description: "The credentials can read schedules (GET /schedules?limit=1)",
    },
    ScopeProbe {
        scope: "escalation_policies.read",
        path: "escalation_policies",
        description:
            "The credentials can read escalation policies (GET /escalation_policies?limit=1)",
    },
    ScopeProbe {
        scope: "change_events.read",
        path: "change_events",
        description: "The credentials can read change events (GET /change_events?limit=1)",
    },
];

const USER_CHECK: (&str, &str) = (
    "credentials",
    "PagerDuty accepts the credentials (GET /users/me; account-level keys: GET /services?limit=1)",
);
const ABILITIES_CHECK: (&str, &str) = (
    "abilities",
    "The account's plan abilities (GET /abilities; informational)",
);
const OAUTH_SCOPE_CHECK: (&str, &str) = (
    "oauth_scopes",
    "PagerDuty granted the OAuth scopes requested (it drops unknown scopes silently)",
);
const WEBHOOK_SECRET_CHECK: (&str, &str) = (
    "webhook_secret",
    "A webhook signing secret is stored (needed before webhooks are accepted)",
);

/// The subdomain of a PagerDuty web URL (`acme` of `https://acme.pagerduty.com/...`).
fn subdomain(html_url: Option<&str>) -> Option<String> {
    let host = url::Url::parse(html_url?).ok()?.host_str()?.to_owned();
    let sub = host
        .strip_suffix(".eu.pagerduty.com")
        .or_else(|| host.strip_suffix(".pagerduty.com"))?;
    (!sub.is_empty()).then(|| sub.to_owned())
}

/// A copy of an error, so a probe's result can be reported while the original is kept.
fn hint_with(error: Error, hint: &str) -> Error {
    error.with_hint(hint.to_owned())
}

impl PagerdutyConnector {
    /// `GET /users/me`, falling back to `GET /services?limit=1` for account-level
    /// keys (which have no user); fills the account details into `config`.
    async fn check_user(
        client: &PagerdutyClient<'_>,
        config: &mut PagerdutyConfig,
    ) -> Result<String> {
        match client
            .get("validate", "/users/me", &["users", "me"], &[])
            .await
        {
            Ok(body) => {
                let user = body.get("user").cloned().unwrap_or(Value::Null);
                let field = |key: &str| user.get(key).and_then(Value::as_str).map(str::to_owned);
                config.user_email = field("email");
                config.user_name = field("name");
                config.account_subdomain = subdomain(user.get("html_url").and_then(Value::as_str));
                config.account_level_key = false;
                Ok(format!(
                    "authenticated as {}{}",
                    config.user_name.as_deref().unwrap_or("a PagerDuty user"),
                    config
                        .account_subdomain
                        .as_deref()
                        .map(|sub| format!(" in account `{sub}`"))
                        .unwrap_or_default()
                ))
            }
            Err(error)
                if error.provider_status() == Some(400)
                    && error
                        .message()
                        .to_ascii_lowercase()
                        .contains("account-level") =>
            {
                let body = client
                    .get(
                        "validate",
                        "/services",
                        &["services"],
                        &[("limit", "1".to_owned()), ("total", "false".to_owned())],
                    )
                    .await?;
                config.account_level_key = true;
                config.user_email = None;
                config.user_name = None;
                config.account_subdomain =
                    subdomain(body.pointer("/services/0/html_url").and_then(Value::as_str));
                Ok(format!(
                    "account-level API key accepted{}",
                    config
                        .account_subdomain
                        .as_deref()
                        .map(|sub| format!(" (account `{sub}`)"))
                        .unwrap_or_default()
                ))
            }
            Err(error) => Err(error),
        }
    }

    async fn check_abilities(client: &PagerdutyClient<'_>) -> Result<String> {
        let body = client
            .get("validate", "/abilities", &["abilities"], &[])
            .await?;
        let abilities: Vec<&str> = body
            .get("abilities")
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let shown: Vec<&str> = abilities.iter().take(12).copied().collect();
        Ok(format!(
            "{} abilities{}{}",
            abilities.len(),
            if shown.is_empty() { "" } else { ": " },
            shown.join(", ")
        ) + if abilities.len() > shown.len() {
            ", …"
        } else {
            ""
        })
    }

    async fn check_scope(client: &PagerdutyClient<'_>, probe: &ScopeProbe) -> Result<String> {
        client
            .get(
                "validate",
                probe.path,
                &[probe.path],
                &[("limit", "1".to_owned()), ("total", "false".to_owned())],
            )
            .await
            .map_err(|error| {
                if error.kind() == ErrorKind::PermissionDenied {
                    hint_with(
                        error,
                        &format!(
                            "grant the `{}` scope (OAuth) or use an API key whose user can read {}",
                            probe.scope,
                            probe.path.replace('_', " ")
                        ),
                    )
                } else {
                    error
                }
            })?;
        Ok(format!("{} are readable", probe.path.replace('_', " ")))
    }
}

/// The OAuth scope line: `openid` alone fails connecting, a narrower grant is a
/// failed optional check naming what is missing.
fn oauth_scope_check(config: &PagerdutyConfig) -> ValidationCheck {
    let (id, description) = OAUTH_SCOPE_CHECK;
    let timer = CheckTimer::start();
    let granted = &config.granted_scopes;
    let missing = missing_scopes(granted);
    let only_openid = granted.iter().all(|scope| scope == "openid");
    let result = if missing.is_empty() {
        Ok(format!("granted: {}", granted.join(" ")))
    } else {
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "PagerDuty granted a narrower set of scopes than requested: granted `{}`, missing `{}`",
                if granted.is_empty() { "(none)".to_owned() } else { granted.join(" ") },
                missing.join(" ")
            ),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint(
            "enable these scopes on the PagerDuty app (Integrations > Developer Mode > My Apps), \
             then connect again",
        ))
    };
    timer.finish(id, description, only_openid, result)
}

fn webhook_secret_check(count: usize) -> ValidationCheck {
    let (id, description) = WEBHOOK_SECRET_CHECK;
    let result = if count > 0 {
        Ok(format!("{count} signing secret(s) stored"))
    } else {
        Err(Error::new(
            ErrorKind::PermissionDenied,
            "no webhook signing secret is stored, so PagerDuty webhooks are refused",
        )
        .with_connector(CONNECTOR_ID)
        .with_hint(
            "create the Generic Webhooks (v3) subscription, then add the signing secret it shows \
             with POST /api/connections/{id}/webhook/secrets and validate again",
        ))
    };
    CheckTimer::start().finish(id, description, false, result)
}

#[async_trait]
impl Connector for PagerdutyConnector {
    type Config = PagerdutyConfig;
    type Secrets = PagerdutySecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<PagerdutyConfig, PagerdutySecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let parts = ConnectForm::from_fields(&fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                let mut credentials = Credentials::new(parts.config, parts.secrets);
                credentials.webhook_secrets.extend(parts.webhook_secret);
                Ok(credentials)
            }
            AuthRequest::OAuth(grant) => {
                let (config, tokens) =
                    auth::from_grant(grant).map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, PagerdutySecrets::default()).with_tokens(tokens))
            }
            _ => Err(
                Error::unsupported("PagerDuty connects with an API token or through OAuth")
                    .with_connector(CONNECTOR_ID),
            ),
        }
    }

    /// `GET /users/me` (mandatory; account-level keys fall back to a service read),
    /// `GET /abilities` (informational), one `limit=1` read per scope, the granted
    /// OAuth scopes, and whether a webhook signing secret is stored.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<PagerdutyConfig, PagerdutySecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating PagerDuty credentials");
        let mut config = credentials.config.clone();
        let client = PagerdutyClient::new(&self.http, credentials)?;
        let (user_id, user_description) = USER_CHECK;
        let (abilities_id, abilities_description) = ABILITIES_CHECK;
        let oauth = config.auth_type == AuthType::Oauth;

        let timer = CheckTimer::start();
        let user = Self::check_user(&client, &mut config).await;
        let user_check = timer.finish(user_id, user_description, true, user);
        let mut checks = vec![user_check];
        if checks[0].outcome != CheckOutcome::Ok {
            checks.push(CheckTimer::skipped(
                abilities_id,
                abilities_description,
                false,
            ));
            checks.extend(
                SCOPE_PROBES
                    .iter()
                    .map(|probe| CheckTimer::skipped(probe.scope, probe.description, false)),
            );
            if oauth {
                checks.push(oauth_scope_check(&config));
            }
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }

        let timer = CheckTimer::start();
        let abilities = Self::check_abilities(&client).await;
        checks.push(timer.finish(abilities_id, abilities_description, false, abilities));
        for probe in SCOPE_PROBES {
            let timer = CheckTimer::start();
            let result = Self::check_scope(&client, probe).await;
            checks.push(timer.finish(probe.scope, probe.description, false, result));
        }
        if oauth {
            checks.push(oauth_scope_check(&config));
        }
        checks.push(webhook_secret_check(credentials.webhook_secrets.len()));
        credentials.config = config;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<PagerdutyConfig, PagerdutySecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "PagerDuty query");
        let client = PagerdutyClient::new(&self.http, credentials)?.for_queries();
        query::run(&query::Api::new(client, Utc::now()), ctx, operation, params).await
    }

    /// Checks `X-PagerDuty-Signature` against every signing secret the connection holds.
    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<PagerdutyConfig, PagerdutySecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        let secrets = credentials.map_or(&[][..], |credentials| &credentials.webhook_secrets);
        webhook::verify(secrets, delivery)
    }

    /// One alert per incident event; other events are acknowledged and dropped.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &PagerdutyConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        Ok(WebhookOutcome {
            events: webhook::normalize(delivery)?,
            reply: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_an_operation_needs_is_probed() {
        for (operation, scope) in query::REQUIRED_SCOPES {
            assert!(
                SCOPE_PROBES.iter().any(|probe| probe.scope == *scope),
                "`{operation}` needs `{scope}`, which validation does not probe"
            );
        }
    }

    #[test]
    fn the_subdomain_comes_from_the_web_url() {
        assert_eq!(
            subdomain(Some("https://acme.pagerduty.com/users/P1")).as_deref(),
            Some("acme")
        );
        assert_eq!(
            subdomain(Some("https://acme.eu.pagerduty.com/x")).as_deref(),
            Some("acme")
        );
        assert_eq!(subdomain(Some("https://evil.example/x")), None);
    }
}
