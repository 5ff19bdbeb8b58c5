//! The GitHub connector: connect through an OAuth App or with a personal access
//! token (github.com or GitHub Enterprise Server), validate the token and its
//! scopes, run read-only repository queries (files, commits, pull requests,
//! workflow runs, deployments, code search) and turn signed webhooks into change
//! events for root-cause analysis.
//!
//! See the crate README for the connect fields, scopes and webhook setup.
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
    EnvVar, Error, ErrorKind, FromEnv, NoSecrets, OAuthClientCredentials, OAuthSpec, QueryOutput,
    Result, RevokeOutcome, UnverifiedDelivery, ValidationReport, VerifiedDelivery, WebhookAuth,
    WebhookDescriptor, WebhookMethod, WebhookOutcome,
};
use patchbay_http::{HttpClient, Method};
use serde_json::{json, Value};

pub use auth::{from_grant, split_scopes, ConnectForm};
use client::{api_url_with, map_status, GitHubClient, GitHubResponse, ACCEPT, API_VERSION};
pub use config::{normalize_api_url, GitHubConfig, TokenKind, DEFAULT_API_URL};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "github";

/// The OAuth scopes requested: `repo` to read private repositories, `read:org`
/// for organisation repositories, `read:user` for the profile (never `user`,
/// which grants profile writes).
pub const OAUTH_SCOPES: &[&str] = &["repo", "read:org", "read:user"];

/// Scopes the query operations need, each checked by validation.
pub const REQUIRED_SCOPES: &[&str] = &["repo", "read:org"];

/// What the registry knows about the GitHub connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "GitHub",
    category: Category::Communication,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::Pat],
    env_vars: &[
        EnvVar {
            name: "GH_OAUTH_CLIENT_ID",
            required: false,
            secret: false,
            description: "Client ID of the GitHub OAuth App (needed for OAuth connections; personal access tokens work without it)",
        },
        EnvVar {
            name: "GH_OAUTH_CLIENT_SECRET",
            required: false,
            secret: true,
            description: "Client secret of the GitHub OAuth App (needed for OAuth connections and for revoking grants on disconnect)",
        },
        EnvVar {
            name: "NEXT_PUBLIC_GITHUB_CLIENT_ID",
            required: false,
            secret: false,
            description: "The OAuth App client ID as exposed to the web UI; informational, the server reads GH_OAUTH_CLIENT_ID",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/github/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::Signature,
    }),
    oauth: Some(OAuthSpec {
        authorize_url: "https://github.com/login/oauth/authorize",
        token_url: "https://github.com/login/oauth/access_token",
        // Grants are deleted through the REST API (`/applications/{client_id}/grant`).
        revoke_url: None,
        api_base_url: Some(DEFAULT_API_URL),
        // OAuth grants are github.com only; Enterprise Server connects with a token.
        start_options: &[],
        scopes: OAUTH_SCOPES,
        scope_separator: " ",
        extra_authorize_params: &[("prompt", "select_account")],
        client_auth: ClientAuthStyle::RequestBody,
        pkce: true,
        client_id_env: &["GH_OAUTH_CLIENT_ID"],
        client_secret_env: &["GH_OAUTH_CLIENT_SECRET"],
        callback_path: "/github/callback",
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<GitHubConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The GitHub connector; holds only the shared HTTP client, never tokens.
#[derive(Debug, Clone)]
pub struct GitHubConnector {
    http: HttpClient,
}

impl GitHubConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for GitHubConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const USER_CHECK: (&str, &str) = ("token", "GitHub accepts the token (GET /user)");
const REPOS_CHECK: (&str, &str) = (
    "repos_read",
    "The token can list repositories (GET /user/repos?per_page=1)",
);
const RATE_LIMIT_CHECK: (&str, &str) = (
    "rate_limit",
    "Remaining API requests (GET /rate_limit; informational)",
);

fn scope_check_id(scope: &str) -> String {
    format!("scope_{}", scope.replace(':', "_"))
}

fn scope_check_description(scope: &str) -> String {
    match scope {
        "repo" => {
            "The token has the `repo` scope (read repositories, commits, pull requests, Actions)"
                .to_owned()
        }
        "read:org" => "The token has the `read:org` scope (organisation repositories)".to_owned(),
        other => format!("The token has the `{other}` scope"),
    }
}

/// Scopes that include `scope` (GitHub's scope hierarchy).
fn satisfied_by(scope: &str) -> &'static [&'static str] {
    match scope {
        "repo" => &["repo"],
        "read:org" => &["read:org", "write:org", "admin:org"],
        _ => &[],
    }
}

/// One scope line: fine-grained tokens report no scopes, so the line is an OK
/// that says the scope was not checked.
fn scope_result(scope: &str, reported: Option<&[String]>) -> Result<String> {
    let Some(granted) = reported else {
        return Ok(
            "skipped: GitHub does not report scopes for fine-grained tokens and GitHub Apps; \
             the repository checks below show what the token can read"
                .to_owned(),
        );
    };
    if satisfied_by(scope)
        .iter()
        .any(|accepted| granted.iter().any(|granted| granted == accepted))
    {
        Ok(format!("granted (token scopes: {})", granted.join(", ")))
    } else {
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!("the token lacks the `{scope}` scope"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint(format!(
            "reconnect GitHub and approve the `{scope}` scope, or create a token that has it"
        )))
    }
}

impl GitHubConnector {
    async fn check_repos(client: &GitHubClient<'_>) -> Result<String> {
        let response = client
            .get(
                "validate",
                &["user", "repos"],
                &[("per_page", "1".to_owned())],
            )
            .await?;
        match response.body.as_array().and_then(|repos| repos.first()) {
            Some(repo) => Ok(format!(
                "repositories are visible (e.g. `{}`)",
                repo.get("full_name").and_then(Value::as_str).unwrap_or("?")
            )),
            None => Err(Error::new(
                ErrorKind::PermissionDenied,
                "the token sees no repositories",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint(
                "give a fine-grained token access to the repositories to investigate, or grant \
                 the OAuth App access to your organisations (GitHub > Settings > Applications)",
            )),
        }
    }

    async fn check_rate_limit(client: &GitHubClient<'_>) -> Result<String> {
        let response = client.get("validate", &["rate_limit"], &[]).await?;
        let core = response
            .body
            .pointer("/resources/core")
            .or_else(|| response.body.get("rate"));
        let number = |key: &str| core.and_then(|core| core.get(key)).and_then(Value::as_u64);
        Ok(match (number("remaining"), number("limit")) {
            (Some(remaining), Some(limit)) => {
                let reset = number("reset")
                    .and_then(|reset| i64::try_from(reset).ok())
                    .and_then(|reset| chrono::DateTime::from_timestamp(reset, 0))
                    .map(|reset| format!(", resets at {}", reset.to_rfc3339()))
                    .unwrap_or_default();
                format!("{remaining} of {limit} core requests left{reset}")
            }
            _ => "rate limits are not enabled on this server".to_owned(),
        })
    }
}

#[async_trait]
impl Connector for GitHubConnector {
    type Config = GitHubConfig;
    type Secrets = NoSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<GitHubConfig, NoSecrets>> {
        let parts = match request {
            AuthRequest::Form(fields) => {
                ConnectForm::from_fields(fields).and_then(|form| form.into_parts(&self.http))
            }
            AuthRequest::OAuth(grant) => from_grant(grant),
            _ => Err(Error::unsupported(
                "GitHub connects through its OAuth App or with a personal access token",
            )),
        };
        let (config, tokens) = parts.map_err(|error| error.with_connector(CONNECTOR_ID))?;
        Ok(Credentials::new(config, NoSecrets {}).with_tokens(tokens))
    }

    /// Proves the token with `GET /user` (mandatory), then checks scopes, repository
    /// access and the rate limit; fills `login`, `user_id` and `granted_scopes`.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<GitHubConfig, NoSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating GitHub credentials");
        let mut config = credentials.config.clone();
        let client = GitHubClient::new(
            &self.http,
            &credentials.config,
            credentials.access_token(CONNECTOR_ID)?,
        );
        let (user_id, user_description) = USER_CHECK;

        let timer = CheckTimer::start();
        let user = client.get("validate", &["user"], &[]).await;
        let user_result = user.as_ref().map_err(copy_error).map(|response| {
            let login = response.body.get("login").and_then(Value::as_str);
            config.login = login.map(str::to_owned);
            config.user_id = response.body.get("id").and_then(Value::as_u64);
            match login {
                Some(login) => format!("authenticated as `{login}`"),
                None => "the token is accepted".to_owned(),
            }
        });
        let user_check = timer.finish(user_id, user_description, true, user_result);
        let scope_checks: Vec<(String, String)> = REQUIRED_SCOPES
            .iter()
            .map(|scope| (scope_check_id(scope), scope_check_description(scope)))
            .collect();
        let (repos_id, repos_description) = REPOS_CHECK;
        let (rate_id, rate_description) = RATE_LIMIT_CHECK;

        let response: &GitHubResponse = match (&user, user_check.outcome) {
            (Ok(response), CheckOutcome::Ok) => response,
            _ => {
                let mut checks = vec![user_check];
                checks.extend(
                    scope_checks
                        .iter()
                        .map(|(id, description)| CheckTimer::skipped(id, description, false)),
                );
                checks.push(CheckTimer::skipped(repos_id, repos_description, false));
                checks.push(CheckTimer::skipped(rate_id, rate_description, false));
                return Ok(ValidationReport::new(CONNECTOR_ID, checks));
            }
        };

        let reported = response
            .oauth_scopes
            .as_deref()
            .map(|header| split_scopes(&[header]));
        if let Some(granted) = &reported {
            config.granted_scopes.clone_from(granted);
        }
        let mut checks = vec![user_check.clone()];
        for (scope, (id, description)) in REQUIRED_SCOPES.iter().zip(&scope_checks) {
            let timer = CheckTimer::start();
            checks.push(timer.finish(
                id,
                description,
                false,
                scope_result(scope, reported.as_deref()),
            ));
        }
        let timer = CheckTimer::start();
        let repos = Self::check_repos(&client).await;
        checks.push(timer.finish(repos_id, repos_description, false, repos));
        let timer = CheckTimer::start();
        let rate = Self::check_rate_limit(&client).await;
        checks.push(timer.finish(rate_id, rate_description, false, rate));

        credentials.config = config;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<GitHubConfig, NoSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "GitHub query");
        let client = GitHubClient::new(
            &self.http,
            &credentials.config,
            credentials.access_token(CONNECTOR_ID)?,
        );
        query::run(&query::Api::new(client, Utc::now()), ctx, operation, params).await
    }

    /// Checks `X-Hub-Signature-256` with the connection's `webhook_secret`.
    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<GitHubConfig, NoSecrets>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        let secret = credentials.and_then(|credentials| credentials.webhook_secret.as_ref());
        webhook::verify(secret, delivery)
    }

    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &GitHubConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        webhook::normalize(delivery)
    }

    /// Deletes an OAuth App grant (`DELETE /applications/{client_id}/grant`), which
    /// revokes every token of the app for the user. Personal access tokens can only
    /// be revoked by their owner, so they are `NotOffered`.
    ///
    /// The request carries the OAuth App's client secret, so it always goes to the
    /// spec's API base (github.com), never to a URL stored with the connection.
    async fn revoke(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<GitHubConfig, NoSecrets>,
        client: Option<&OAuthClientCredentials>,
    ) -> Result<RevokeOutcome> {
        if credentials.config.auth_kind != TokenKind::Oauth {
            return Ok(RevokeOutcome::NotOffered);
        }
        let Some(client) = client else {
            return Err(Error::invalid_config(
                "GH_OAUTH_CLIENT_ID",
                "revoking a GitHub OAuth grant needs the OAuth App's client credentials",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("set GH_OAUTH_CLIENT_ID and GH_OAUTH_CLIENT_SECRET, or revoke the app at GitHub > Settings > Applications"));
        };
        tracing::debug!(connection_id = ?ctx.connection_id, "revoking the GitHub OAuth grant");
        let segments = ["applications", client.client_id.as_str(), "grant"];
        let url = api_url_with(DEFAULT_API_URL, &segments)?;
        let response = self
            .http
            .request(Method::DELETE, url.as_str())
            .connector(CONNECTOR_ID)
            .operation("revoke")
            .header("Accept", ACCEPT)
            .header("X-GitHub-Api-Version", API_VERSION)
            .client_basic_auth(client)
            .json(&json!({"access_token": credentials.access_token(CONNECTOR_ID)?.expose()}))
            .send()
            .await?;
        map_status(response, "/applications/{client_id}/grant")?;
        Ok(RevokeOutcome::Revoked)
    }
}

/// A copy of an error's kind, message and context, so a probe's result can be reported
/// while the response stays borrowed.
fn copy_error(error: &Error) -> Error {
    let mut copy = Error::new(error.kind(), error.message()).with_connector(CONNECTOR_ID);
    if let Some(hint) = error.hint() {
        copy = copy.with_hint(hint);
    }
    if let Some(status) = error.provider_status() {
        copy = copy.with_provider_status(status);
    }
    if let Some(wait) = error.retry_after() {
        copy = copy.with_retry_after(wait);
    }
    copy
}
