//! The Google Cloud connector: connects a Google account through OAuth 2.0 (offline
//! access, PKCE, read-only scope) or an uploaded service-account key (RS256
//! JWT-bearer assertions at the key's own `token_uri`), lets the user pick projects,
//! validates one line per guide API per project, and reads projects, logs, metrics,
//! VM instances, alert policies, GKE clusters and assets.
//!
//! See the crate README for the connect fields, checks and operations.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{Duration, Utc};
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, ErrorKind, FromEnv, OAuthClientCredentials, OAuthSpec, QueryOutput, Result,
    RevokeOutcome, SecretString, ValidationCheck, ValidationReport,
};
use patchbay_http::HttpClient;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use auth::{messages, ConnectForm, GcpSecrets, ServiceAccountKey, PROJECTS_OPTION};
use client::{mint_token, GcpClient, MintedToken, Needs, RESOURCE_MANAGER};
pub use config::{AuthType, GcpConfig, ProjectSummary};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "gcp";

/// The environment variable holding the OAuth client id (the guide's name).
pub const CLIENT_ID_VAR: &str = "CLIENT_ID";
/// The environment variable holding the OAuth client secret (the guide's name).
pub const CLIENT_SECRET_VAR: &str = "CLIENT_SECRET";
/// The OAuth scopes requested: read-only Cloud access, and the email for the identity line.
pub const OAUTH_SCOPES: &[&str] = &[client::READ_ONLY_SCOPE, client::EMAIL_SCOPE];
/// The callback path registered in the Google OAuth client.
pub const CALLBACK_PATH: &str = "/callback";

/// What the registry knows about the Google Cloud connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Google Cloud",
    category: Category::Cloud,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::ServiceAccountKey],
    env_vars: &[
        EnvVar {
            name: CLIENT_ID_VAR,
            required: false,
            secret: false,
            description: "Client ID of the Google OAuth web client (…apps.googleusercontent.com); service-account keys connect without it",
        },
        EnvVar {
            name: CLIENT_SECRET_VAR,
            required: false,
            secret: true,
            description: "Client secret of the Google OAuth web client (GOCSPX-…)",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    oauth: Some(OAuthSpec {
        authorize_url: client::AUTHORIZE_URL,
        token_url: client::TOKEN_URL,
        revoke_url: Some(client::REVOKE_URL),
        api_base_url: None,
        start_options: &[PROJECTS_OPTION],
        scopes: OAUTH_SCOPES,
        scope_separator: " ",
        // Without both, a returning user's consent yields no refresh token.
        extra_authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        client_auth: ClientAuthStyle::RequestBody,
        pkce: true,
        client_id_env: &[CLIENT_ID_VAR],
        client_secret_env: &[CLIENT_SECRET_VAR],
        callback_path: CALLBACK_PATH,
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<GcpConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);
patchbay_core::register_oauth_errors!(CONNECTOR_ID, client::explain_oauth_error);

/// Access tokens minted from service-account keys, by the key's SHA-256, kept only
/// in this process.
type TokenCache = Arc<Mutex<HashMap<[u8; 32], MintedToken>>>;

/// The Google Cloud connector; holds the shared HTTP client and an in-process cache
/// of service-account access tokens, never stored credentials.
#[derive(Debug, Clone)]
pub struct GcpConnector {
    http: HttpClient,
    minted: TokenCache,
}

impl GcpConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self {
            http,
            minted: TokenCache::default(),
        }
    }
}

impl FromEnv for GcpConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

/// Check ids and descriptions.
const TOKEN_CHECK: (&str, &str) = (
    "token",
    "Google issues an access token (OAuth grant with a refresh token, or the service-account key's JWT-bearer exchange)",
);
const IDENTITY_CHECK: (&str, &str) = (
    "identity",
    "Google names the account (GET /oauth2/v2/userinfo, or the key's client_email)",
);
const PROJECTS_CHECK: (&str, &str) = (
    "projects",
    "Cloud Resource Manager lists accessible projects and the selected ones are among them (GET /v3/projects:search)",
);

/// One validation line per guide API, per selected project.
const API_CHECKS: &[(&str, &str, Needs)] = &[
    (
        "resource_manager",
        "Cloud Resource Manager API reads the project (GET /v3/projects/{project})",
        Needs::new("cloudresourcemanager.googleapis.com", "resourcemanager.projects.get"),
    ),
    (
        "compute",
        "Compute Engine API lists zones (GET /compute/v1/projects/{project}/zones?maxResults=1); used by list_instances",
        Needs::new("compute.googleapis.com", "compute.zones.list"),
    ),
    (
        "logging",
        "Cloud Logging API reads entries (POST /v2/entries:list, pageSize 1); used by query_logs",
        Needs::new("logging.googleapis.com", "logging.logEntries.list"),
    ),
    (
        "monitoring",
        "Cloud Monitoring API lists metric descriptors (GET /v3/projects/{project}/metricDescriptors?pageSize=1); used by query_metrics and list_alert_policies",
        Needs::new("monitoring.googleapis.com", "monitoring.metricDescriptors.list"),
    ),
];

fn key_of(json: &SecretString) -> [u8; 32] {
    Sha256::digest(json.expose().as_bytes()).into()
}

fn no_credentials() -> Error {
    Error::new(ErrorKind::NeedsReauth, messages::NO_CREDENTIALS)
        .with_connector(CONNECTOR_ID)
        .with_hint("connect Google Cloud again")
}

fn project_list(projects: &[ProjectSummary]) -> String {
    projects
        .iter()
        .map(|project| match &project.display_name {
            Some(name) if name != &project.project_id => format!("{} ({name})", project.project_id),
            _ => project.project_id.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chooses the connection's projects among the accessible ones: those asked for
/// (each must be accessible), else the ones already selected that are still
/// accessible, else all of them when there are at most five. Otherwise the person
/// must choose: an error listing the projects, never a silent pick.
fn choose_projects(config: &GcpConfig, accessible: &[ProjectSummary]) -> Result<Vec<String>> {
    let reachable = |id: &str| accessible.iter().any(|p| p.project_id == id);
    let choose_hint = || {
        format!(
            "choose with the `{PROJECTS_OPTION}` option (OAuth: POST /api/connections/oauth/gcp/start {{\"options\": {{\"projects\": [\"{}\"]}}}}; service-account key: the `projects` field)",
            accessible.first().map_or("your-project-id", |p| p.project_id.as_str())
        )
    };
    if !config.requested_projects.is_empty() {
        if let Some(missing) = config.requested_projects.iter().find(|id| !reachable(id)) {
            return Err(Error::invalid_config(
                PROJECTS_OPTION,
                format!(
                    "project `{missing}` is not accessible with these credentials; accessible projects: {}",
                    project_list(accessible)
                ),
            )
            .with_hint(choose_hint()));
        }
        return Ok(config.requested_projects.clone());
    }
    if !config.projects.is_empty() {
        return Ok(config
            .projects
            .iter()
            .filter(|id| reachable(id))
            .cloned()
            .collect());
    }
    if accessible.len() <= config::AUTO_SELECT_LIMIT {
        return Ok(accessible.iter().map(|p| p.project_id.clone()).collect());
    }
    Err(Error::invalid_config(
        PROJECTS_OPTION,
        format!(
            "these credentials reach {} projects, so Patchbay will not pick them: {}",
            accessible.len(),
            project_list(accessible)
        ),
    )
    .with_hint(choose_hint()))
}

async fn accessible_projects(client: &GcpClient<'_>) -> Result<Vec<ProjectSummary>> {
    let body = client
        .get(
            "validate",
            &format!("{RESOURCE_MANAGER}/v3/projects:search"),
            &[("pageSize", config::MAX_LISTED_PROJECTS.to_string())],
            Needs::new(
                "cloudresourcemanager.googleapis.com",
                "resourcemanager.projects.get",
            ),
            None,
        )
        .await?;
    Ok(body["projects"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|project| {
            project["state"]
                .as_str()
                .is_none_or(|state| state == "ACTIVE")
        })
        .filter_map(|project| {
            Some(ProjectSummary {
                project_id: project["projectId"].as_str()?.to_owned(),
                display_name: project["displayName"].as_str().map(str::to_owned),
                name: project["name"].as_str().map(str::to_owned),
            })
        })
        .take(config::MAX_LISTED_PROJECTS)
        .collect())
}

/// One guide API's probe for `project`.
async fn probe_api(
    client: &GcpClient<'_>,
    api: &str,
    service: Needs,
    project: &str,
) -> Result<String> {
    match api {
        "resource_manager" => {
            let body = client
                .get(
                    "validate",
                    &format!("{RESOURCE_MANAGER}/v3/projects/{project}"),
                    &[],
                    service,
                    Some(project),
                )
                .await?;
            Ok(format!(
                "project `{project}` is {}",
                body["state"].as_str().unwrap_or("readable")
            ))
        }
        "compute" => {
            client
                .get(
                    "validate",
                    &format!("{}/compute/v1/projects/{project}/zones", client::COMPUTE),
                    &[("maxResults", "1".to_owned())],
                    service,
                    Some(project),
                )
                .await?;
            Ok("Compute Engine API is enabled and zones are readable".to_owned())
        }
        "logging" => {
            client
                .post_read(
                    "validate",
                    &format!("{}/v2/entries:list", client::LOGGING),
                    &serde_json::json!({"resourceNames": [format!("projects/{project}")], "pageSize": 1}),
                    service,
                    Some(project),
                )
                .await?;
            Ok("Cloud Logging API is enabled and entries are readable".to_owned())
        }
        _ => {
            client
                .get(
                    "validate",
                    &format!(
                        "{}/v3/projects/{project}/metricDescriptors",
                        client::MONITORING
                    ),
                    &[("pageSize", "1".to_owned())],
                    service,
                    Some(project),
                )
                .await?;
            Ok("Cloud Monitoring API is enabled and metrics are readable".to_owned())
        }
    }
}

/// The identity (informational) and projects (mandatory) lines, not run because
/// no token was issued.
fn skipped_after_token(checks: &mut Vec<ValidationCheck>) {
    checks.push(CheckTimer::skipped(
        IDENTITY_CHECK.0,
        IDENTITY_CHECK.1,
        false,
    ));
    checks.push(CheckTimer::skipped(
        PROJECTS_CHECK.0,
        PROJECTS_CHECK.1,
        true,
    ));
}

impl GcpConnector {
    /// A fresh token for a service-account key: from the cache unless `force` or it
    /// expires within five minutes.
    async fn service_account_token(
        &self,
        json: &SecretString,
        force: bool,
    ) -> Result<SecretString> {
        let id = key_of(json);
        if !force {
            let cached = self
                .minted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&id)
                .filter(|token| token.expires_at - Duration::minutes(5) > Utc::now())
                .map(|token| token.access_token.clone());
            if let Some(token) = cached {
                return Ok(token);
            }
        }
        let key = ServiceAccountKey::parse(json.expose(), &self.http)?;
        let minted = mint_token(&self.http, &key).await?;
        let token = minted.access_token.clone();
        let mut cache = self
            .minted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|_, cached| cached.expires_at > Utc::now());
        cache.insert(id, minted);
        Ok(token)
    }

    /// The bearer token for a query.
    async fn token_for(
        &self,
        credentials: &Credentials<GcpConfig, GcpSecrets>,
        force: bool,
    ) -> Result<SecretString> {
        match credentials.config.auth_type {
            AuthType::ServiceAccount => {
                let json = credentials
                    .secrets
                    .service_account_json
                    .as_ref()
                    .ok_or_else(no_credentials)?;
                self.service_account_token(json, force).await
            }
            AuthType::Oauth => credentials
                .access_token(CONNECTOR_ID)
                .cloned()
                .map_err(|_| no_credentials()),
        }
    }

    /// The token line: the OAuth grant's refresh token, or a JWT-bearer exchange.
    async fn token_check(
        &self,
        credentials: &Credentials<GcpConfig, GcpSecrets>,
    ) -> (ValidationCheck, Option<SecretString>) {
        let timer = CheckTimer::start();
        let result = match credentials.config.auth_type {
            AuthType::ServiceAccount => match &credentials.secrets.service_account_json {
                None => Err(no_credentials()),
                Some(json) => self.service_account_token(json, true).await.map(|token| {
                    (
                        token,
                        format!(
                            "Google issued an access token for `{}` at the key's token_uri",
                            credentials
                                .config
                                .email
                                .as_deref()
                                .unwrap_or("the service account")
                        ),
                    )
                }),
            },
            AuthType::Oauth => {
                let has_refresh = credentials
                    .tokens
                    .as_ref()
                    .and_then(|tokens| tokens.refresh_token.as_ref())
                    .is_some_and(|token| !token.is_empty());
                match credentials.access_token(CONNECTOR_ID) {
                    Err(_) => Err(no_credentials()),
                    Ok(_) if !has_refresh => Err(Error::new(
                        ErrorKind::AuthFailed,
                        messages::NO_REFRESH_TOKEN,
                    )
                    .with_connector(CONNECTOR_ID)
                    .with_hint(
                        "connect again: Patchbay asks for offline access with prompt=consent",
                    )),
                    Ok(token) => Ok((
                        token.clone(),
                        match credentials.tokens.as_ref().and_then(|t| t.expires_at) {
                            Some(expiry) => format!(
                                "OAuth access token with a refresh token, valid until {}",
                                expiry.to_rfc3339()
                            ),
                            None => "OAuth access token with a refresh token".to_owned(),
                        },
                    )),
                }
            }
        };
        let (token, result) = match result {
            Ok((token, detail)) => (Some(token), Ok(detail)),
            Err(error) => (None, Err(error)),
        };
        (
            timer.finish(TOKEN_CHECK.0, TOKEN_CHECK.1, true, result),
            token,
        )
    }
}

#[async_trait]
impl Connector for GcpConnector {
    type Config = GcpConfig;
    type Secrets = GcpSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<GcpConfig, GcpSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .and_then(|form| form.into_parts(&self.http))
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            AuthRequest::OAuth(grant) => {
                let (config, tokens) =
                    auth::from_grant(grant).map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, GcpSecrets::default()).with_tokens(tokens))
            }
            _ => Err(Error::unsupported(
                "Google Cloud connects through Google OAuth or with a service-account key",
            )
            .with_connector(CONNECTOR_ID)),
        }
    }

    /// The token (mandatory), the identity (informational), the accessible and
    /// selected projects (mandatory), then per selected project one line per guide
    /// API: Resource Manager, Compute, Logging and Monitoring.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<GcpConfig, GcpSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Google Cloud credentials");
        let (token_check, token) = self.token_check(credentials).await;
        let mut checks = vec![token_check];
        let Some(token) = token else {
            skipped_after_token(&mut checks);
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        };
        let client = GcpClient::new(&self.http, token);
        let mut config = credentials.config.clone();

        let timer = CheckTimer::start();
        let identity = match config.auth_type {
            AuthType::ServiceAccount => Ok(format!(
                "service account `{}`",
                config.email.as_deref().unwrap_or("?")
            )),
            AuthType::Oauth => client.userinfo_email().await.map(|email| {
                let detail = format!("Google account `{email}`");
                config.email = Some(email);
                detail
            }),
        };
        checks.push(timer.finish(IDENTITY_CHECK.0, IDENTITY_CHECK.1, false, identity));

        let timer = CheckTimer::start();
        let projects = accessible_projects(&client).await;
        let projects_result = match projects {
            Err(error) if error.kind() == ErrorKind::AuthFailed => Err(Error::new(
                ErrorKind::AuthFailed,
                match config.auth_type {
                    AuthType::ServiceAccount => messages::REJECTED,
                    AuthType::Oauth => "Google rejected the access token",
                },
            )
            .with_connector(CONNECTOR_ID)
            .with_provider_status(401)
            .with_hint(format!("connect again ({})", error.message()))),
            Err(error) => Err(error),
            Ok(accessible) if accessible.is_empty() => Err(Error::new(
                ErrorKind::PermissionDenied,
                match config.auth_type {
                    AuthType::ServiceAccount => messages::SA_NO_PROJECTS,
                    AuthType::Oauth => messages::USER_NO_PROJECTS,
                },
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("grant the account roles/viewer (or roles/browser) on a project, then connect again")),
            Ok(accessible) => {
                // A choice only the person can make is an error, not a check.
                let chosen = choose_projects(&config, &accessible)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                config.accessible_projects = accessible;
                if chosen.is_empty() {
                    Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "none of the selected projects is accessible any more",
                    )
                    .with_connector(CONNECTOR_ID)
                    .with_hint("connect again and choose projects with the `projects` option"))
                } else {
                    let detail = format!(
                        "{} accessible; selected: {}",
                        config.accessible_projects.len(),
                        chosen.join(", ")
                    );
                    config.projects = chosen;
                    Ok(detail)
                }
            }
        };
        let projects_check =
            timer.finish(PROJECTS_CHECK.0, PROJECTS_CHECK.1, true, projects_result);
        let passed = projects_check.outcome == CheckOutcome::Ok;
        checks.push(projects_check);
        if !passed {
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }

        for project in &config.projects {
            for (api, description, service) in API_CHECKS {
                let timer = CheckTimer::start();
                let result = probe_api(&client, api, *service, project).await;
                checks.push(timer.finish(
                    &format!("{api}:{project}"),
                    &description.replace("{project}", project),
                    false,
                    result,
                ));
            }
        }
        config.requested_projects.clear();
        credentials.config = config;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<GcpConfig, GcpSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Google Cloud query");
        let token = self.token_for(credentials, false).await?;
        let api = query::Api::new(GcpClient::new(&self.http, token), &credentials.config);
        let outcome = query::run(&api, ctx, operation, params.clone()).await;
        match outcome {
            // A minted token Google stopped accepting: mint once more and retry.
            Err(error)
                if error.kind() == ErrorKind::AuthFailed
                    && credentials.config.auth_type == AuthType::ServiceAccount =>
            {
                let token = self.token_for(credentials, true).await?;
                let api = query::Api::new(GcpClient::new(&self.http, token), &credentials.config);
                query::run(&api, ctx, operation, params).await
            }
            outcome => outcome,
        }
    }

    /// OAuth: revokes the grant at Google (the refresh token, which ends every
    /// access token of the grant). Service-account keys are deleted by their owner.
    async fn revoke(
        &self,
        _ctx: &ConnectorContext,
        credentials: &Credentials<GcpConfig, GcpSecrets>,
        _client: Option<&OAuthClientCredentials>,
    ) -> Result<RevokeOutcome> {
        if credentials.config.auth_type == AuthType::ServiceAccount {
            return Ok(RevokeOutcome::NotOffered);
        }
        let Some(tokens) = credentials.tokens.as_ref() else {
            return Ok(RevokeOutcome::NotOffered);
        };
        let token = tokens
            .refresh_token
            .as_ref()
            .filter(|token| !token.is_empty())
            .unwrap_or(&tokens.access_token);
        client::revoke(&self.http, token).await?;
        Ok(RevokeOutcome::Revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str) -> ProjectSummary {
        ProjectSummary {
            project_id: id.to_owned(),
            display_name: Some(format!("{id} name")),
            name: None,
        }
    }

    #[test]
    fn projects_are_chosen_by_request_or_when_few_never_silently_among_many() {
        let few: Vec<ProjectSummary> = ["acme-prod", "acme-stage"].map(project).to_vec();
        let mut config = GcpConfig::oauth(Vec::new(), Vec::new());
        assert_eq!(
            choose_projects(&config, &few).unwrap(),
            ["acme-prod", "acme-stage"]
        );
        config.requested_projects = vec!["acme-stage".to_owned()];
        assert_eq!(choose_projects(&config, &few).unwrap(), ["acme-stage"]);
        config.requested_projects = vec!["acme-other".to_owned()];
        let error = choose_projects(&config, &few).unwrap_err();
        assert_eq!(error.field(), Some(PROJECTS_OPTION));
        assert!(
            error.message().contains("acme-prod (acme-prod name)"),
            "{error}"
        );
        let many: Vec<ProjectSummary> = (0..6).map(|n| project(&format!("acme-p{n:04}"))).collect();
        config.requested_projects.clear();
        let error = choose_projects(&config, &many).unwrap_err();
        assert!(error.message().contains("reach 6 projects"), "{error}");
        config.projects = vec!["acme-p0001".to_owned(), "gone-project".to_owned()];
        assert_eq!(choose_projects(&config, &many).unwrap(), ["acme-p0001"]);
    }
}
