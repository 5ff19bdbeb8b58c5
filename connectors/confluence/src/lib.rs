//! The Confluence connector: Confluence Cloud through Atlassian OAuth 2.0 (3LO),
//! or Confluence Data Center with a base URL and a personal access token. It
//! validates the connection one capability per line, resolves page links, reads
//! pages as storage HTML and Markdown, reads runbooks as numbered steps with their
//! commands, searches with CQL (with helpers for similar incidents and runbooks)
//! and lists spaces.
//!
//! See the crate README for the connect fields, checks and operations.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;
pub mod render;
pub mod urls;

use async_trait::async_trait;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, ErrorKind, FromEnv, NoSecrets, OAuthSpec, QueryOutput, Result, ValidationCheck,
    ValidationReport,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, SITE_OPTION};
use client::{ConfluenceClient, Site, CREDENTIALS_EXPIRED, PAT_HINT, PAT_INVALID, RECONNECT_HINT};
pub use config::{AuthType, ConfluenceConfig};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "confluence";

/// The feature flag that enables the whole connector.
pub const FEATURE_FLAG: &str = "NEXT_PUBLIC_ENABLE_CONFLUENCE";
/// What every Confluence route answers while [`FEATURE_FLAG`] is off.
pub const DISABLED_MESSAGE: &str = "Confluence connector not enabled";

/// The OAuth scopes requested: the guide's three read scopes, and `offline_access`
/// for refresh tokens.
pub const OAUTH_SCOPES: &[&str] = &[
    "read:page:confluence",
    "read:space:confluence",
    "read:user:confluence",
    "offline_access",
];

/// What the registry knows about the Confluence connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Confluence",
    category: Category::Documentation,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::Pat],
    env_vars: &[
        EnvVar {
            name: "CONFLUENCE_CLIENT_ID",
            required: false,
            secret: false,
            description: "Client ID of the Atlassian OAuth 2.0 (3LO) app for Confluence Cloud (Data Center connects with a personal access token without it)",
        },
        EnvVar {
            name: "CONFLUENCE_CLIENT_SECRET",
            required: false,
            secret: true,
            description: "Client secret of the Atlassian OAuth 2.0 (3LO) app for Confluence Cloud",
        },
        EnvVar {
            name: "ATLASSIAN_CLIENT_ID",
            required: false,
            secret: false,
            description: "Read when CONFLUENCE_CLIENT_ID is not set (the older name for the same Atlassian app)",
        },
        EnvVar {
            name: "ATLASSIAN_CLIENT_SECRET",
            required: false,
            secret: true,
            description: "Read when CONFLUENCE_CLIENT_SECRET is not set (the older name for the same Atlassian app)",
        },
    ],
    feature_flag: Some(FEATURE_FLAG),
    disabled_message: Some(DISABLED_MESSAGE),
    webhook: None,
    oauth: Some(OAuthSpec {
        authorize_url: "https://auth.atlassian.com/authorize",
        token_url: "https://auth.atlassian.com/oauth/token",
        // Atlassian offers no token revocation endpoint for 3LO apps.
        revoke_url: None,
        api_base_url: Some(config::CLOUD_API_GATEWAY),
        start_options: &[SITE_OPTION],
        scopes: OAUTH_SCOPES,
        scope_separator: " ",
        extra_authorize_params: &[("audience", "api.atlassian.com"), ("prompt", "consent")],
        client_auth: ClientAuthStyle::JsonBody,
        pkce: false,
        client_id_env: &["CONFLUENCE_CLIENT_ID", "ATLASSIAN_CLIENT_ID"],
        client_secret_env: &["CONFLUENCE_CLIENT_SECRET", "ATLASSIAN_CLIENT_SECRET"],
        callback_path: "/confluence/callback",
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<ConfluenceConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Confluence connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct ConfluenceConnector {
    http: HttpClient,
}

impl ConfluenceConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for ConfluenceConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

/// Check ids and descriptions, one line per capability.
const SITE_CHECK: (&str, &str) = (
    "site",
    "Atlassian lists a Confluence site for the token (GET /oauth/token/accessible-resources)",
);
const IDENTITY_CHECK: (&str, &str) = (
    "identity",
    "Confluence accepts the token and names its user (GET /rest/api/user/current)",
);
const PAT_CHECK: (&str, &str) = (
    "pat",
    "Confluence Data Center accepts the personal access token (GET /rest/api/user/current)",
);
const SPACE_CHECK: (&str, &str) = (
    "space_read",
    "The user can read spaces (list_spaces; GET spaces?limit=1)",
);
const SEARCH_CHECK: (&str, &str) = (
    "search",
    "CQL search works (search_pages and its helpers; GET /rest/api/content/search?cql=type=page&limit=1)",
);

/// A site's URL without a trailing slash, lower-cased, for comparisons.
fn site_key(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Whether `requested` (a URL, a bare host, a site name or a cloud id) names `site`.
fn names_site(requested: &str, site: &Site) -> bool {
    let wanted = site_key(requested);
    let url = site_key(&site.url);
    let host = url.split("://").nth(1).unwrap_or(&url);
    wanted == url
        || wanted == host
        || wanted == site.id.to_ascii_lowercase()
        || format!("{wanted}.atlassian.net") == host
        || wanted == site.name.to_ascii_lowercase()
}

fn site_list(sites: &[Site]) -> String {
    sites
        .iter()
        .map(|site| format!("{} ({}, cloud id {})", site.url, site.name, site.id))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Chooses the connection's site among the token's Confluence sites: the stored one
/// on re-validation, else the one the `site` option names, else the only one. Several
/// sites and no choice is an error listing them, never the first one.
fn choose_site<'s>(config: &ConfluenceConfig, sites: &'s [Site]) -> Result<&'s Site> {
    if let Some(cloud_id) = &config.cloud_id {
        return sites
            .iter()
            .find(|site| &site.id == cloud_id)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::PermissionDenied,
                    format!(
                        "the connected Confluence site {} is no longer accessible with this token",
                        config.base_url.as_deref().unwrap_or(cloud_id)
                    ),
                )
                .with_hint(RECONNECT_HINT)
            });
    }
    let how_to_choose = |choices: &[Site]| {
        format!(
            "start connecting again with the option `site` set to one of: {}; e.g. \
             POST /api/connections/oauth/confluence/start {{\"options\": {{\"site\": \"{}\"}}}}",
            choices
                .iter()
                .map(|site| site.url.clone())
                .collect::<Vec<_>>()
                .join(", "),
            choices
                .first()
                .map_or("https://yourcompany.atlassian.net", |site| site
                    .url
                    .as_str())
        )
    };
    if let Some(requested) = &config.requested_site {
        return sites
            .iter()
            .find(|site| names_site(requested, site))
            .ok_or_else(|| {
                Error::invalid_config(
                    SITE_OPTION,
                    format!(
                        "the Confluence site `{requested}` is not among the sites this Atlassian authorization can reach: {}",
                        site_list(sites)
                    ),
                )
                .with_hint(how_to_choose(sites))
            });
    }
    match sites {
        [only] => Ok(only),
        _ => Err(Error::invalid_config(
            SITE_OPTION,
            format!(
                "this Atlassian account can reach {} Confluence sites, so Patchbay will not pick one: {}",
                sites.len(),
                site_list(sites)
            ),
        )
        .with_hint(how_to_choose(sites))),
    }
}

/// A copy of an error's kind, message and context, so a probe's result can be
/// reported while the original stays borrowed.
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

/// An authentication failure in a validation check, with the guide's wording:
/// `auth_failed` so the check reads "failed" rather than "error".
fn token_refused(message: &str, hint: &str, error: &Error) -> Error {
    let mut refused = Error::new(ErrorKind::AuthFailed, message)
        .with_connector(CONNECTOR_ID)
        .with_hint(format!("{hint} ({})", error.message()));
    if let Some(status) = error.provider_status() {
        refused = refused.with_provider_status(status);
    }
    refused
}

async fn identity(client: &ConfluenceClient<'_>, config: &mut ConfluenceConfig) -> Result<String> {
    let body = client
        .get_json(
            "validate",
            client.v1_url(&["user", "current"])?,
            &[],
            "current user",
        )
        .await?;
    if body.get("type").and_then(Value::as_str) == Some("anonymous") {
        return Err(Error::new(
            ErrorKind::AuthFailed,
            "Confluence answered as the anonymous user: the token was not accepted",
        ));
    }
    let name = body
        .get("displayName")
        .and_then(Value::as_str)
        .map(str::to_owned);
    config.user_display_name.clone_from(&name);
    config.user_account_id = ["accountId", "userKey", "username"]
        .iter()
        .find_map(|key| body.get(*key).and_then(Value::as_str))
        .map(str::to_owned);
    Ok(match name {
        Some(name) => format!("authenticated as `{name}`"),
        None => "the token is accepted".to_owned(),
    })
}

async fn space_read(client: &ConfluenceClient<'_>) -> Result<String> {
    let url = if client.config().is_cloud() {
        client.v2_url(&["spaces"])?
    } else {
        client.v1_url(&["space"])?
    };
    let body = client
        .get_json("validate", url, &[("limit", "1".to_owned())], "space list")
        .await?;
    match body.pointer("/results/0") {
        Some(space) => Ok(format!(
            "spaces are readable (e.g. `{}`)",
            space.get("key").and_then(Value::as_str).unwrap_or("?")
        )),
        None => Err(Error::new(ErrorKind::PermissionDenied, "the user sees no spaces")
            .with_connector(CONNECTOR_ID)
            .with_hint(if client.config().is_cloud() {
                "grant the app read:space:confluence and give the user access to the spaces to search"
            } else {
                "give the token's user view permission on the spaces to search"
            })),
    }
}

async fn search_probe(client: &ConfluenceClient<'_>) -> Result<String> {
    let body = client
        .get_json(
            "validate",
            client.v1_url(&["content", "search"])?,
            &[("cql", "type=page".to_owned()), ("limit", "1".to_owned())],
            "search",
        )
        .await
        .map_err(|error| match error.kind() {
            ErrorKind::PermissionDenied if client.config().is_cloud() => Error::new(
                ErrorKind::PermissionDenied,
                error.message(),
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("add the search:confluence scope to the app in the Atlassian Developer Console, then reconnect"),
            _ => error,
        })?;
    let count = body
        .get("results")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    Ok(if count == 0 {
        "CQL search works (no pages visible yet)".to_owned()
    } else {
        "CQL search works".to_owned()
    })
}

fn skipped(checks: &[(&str, &str)]) -> Vec<ValidationCheck> {
    checks
        .iter()
        .map(|(id, description)| CheckTimer::skipped(id, description, false))
        .collect()
}

impl ConfluenceConnector {
    async fn validate_cloud(
        &self,
        credentials: &mut Credentials<ConfluenceConfig, NoSecrets>,
    ) -> Result<ValidationReport> {
        let mut config = credentials.config.clone();
        let token = credentials.access_token(CONNECTOR_ID)?;
        let (site_id, site_description) = SITE_CHECK;
        let timer = CheckTimer::start();
        let sites = ConfluenceClient::new(&self.http, &config, token)
            .accessible_resources()
            .await;
        let site_result = match sites {
            Err(error) if error.kind() == ErrorKind::AuthFailed => Err(token_refused(
                "Failed to validate Confluence OAuth token",
                RECONNECT_HINT,
                &error,
            )),
            Err(error) => Err(error),
            Ok(sites) => {
                let confluence: Vec<Site> =
                    sites.into_iter().filter(Site::has_confluence).collect();
                if confluence.is_empty() {
                    Err(Error::new(ErrorKind::PermissionDenied, "Token lacks confluence access")
                        .with_connector(CONNECTOR_ID)
                        .with_hint("authorize the app on a site that has Confluence, with the scopes read:page:confluence, read:space:confluence and read:user:confluence"))
                } else {
                    // Several sites and no choice is the person's to resolve: an error, not a check.
                    let site = choose_site(&config, &confluence)
                        .map_err(|error| error.with_connector(CONNECTOR_ID));
                    match site {
                        Err(error) if error.kind() == ErrorKind::InvalidConfig => {
                            return Err(error)
                        }
                        Err(error) => Err(error),
                        Ok(site) => {
                            config.cloud_id = Some(site.id.clone());
                            config.base_url = Some(site.url.trim_end_matches('/').to_owned());
                            config.site_name = Some(site.name.clone());
                            Ok(format!(
                                "site `{}` ({}, cloud id {})",
                                site.name, site.url, site.id
                            ))
                        }
                    }
                }
            }
        };
        let site_check = timer.finish(site_id, site_description, true, site_result);
        if site_check.outcome != CheckOutcome::Ok {
            let mut checks = vec![
                site_check,
                CheckTimer::skipped(IDENTITY_CHECK.0, IDENTITY_CHECK.1, true),
            ];
            checks.extend(skipped(&[SPACE_CHECK, SEARCH_CHECK]));
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }
        let mut identified = config.clone();
        let client = ConfluenceClient::new(&self.http, &config, token);
        let timer = CheckTimer::start();
        let who = identity(&client, &mut identified).await.map_err(|error| {
            if error.kind() == ErrorKind::AuthFailed {
                token_refused(
                    "Failed to validate Confluence OAuth token",
                    RECONNECT_HINT,
                    &error,
                )
            } else {
                copy_error(&error)
            }
        });
        let identity_check = timer.finish(IDENTITY_CHECK.0, IDENTITY_CHECK.1, true, who);
        let mut checks = vec![site_check, identity_check.clone()];
        if identity_check.outcome != CheckOutcome::Ok {
            checks.extend(skipped(&[SPACE_CHECK, SEARCH_CHECK]));
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }
        let timer = CheckTimer::start();
        checks.push(timer.finish(
            SPACE_CHECK.0,
            SPACE_CHECK.1,
            false,
            space_read(&client).await,
        ));
        let timer = CheckTimer::start();
        checks.push(timer.finish(
            SEARCH_CHECK.0,
            SEARCH_CHECK.1,
            false,
            search_probe(&client).await,
        ));
        credentials.config = identified;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    async fn validate_data_center(
        &self,
        credentials: &mut Credentials<ConfluenceConfig, NoSecrets>,
    ) -> Result<ValidationReport> {
        let mut config = credentials.config.clone();
        let token = credentials.access_token(CONNECTOR_ID)?;
        let client = ConfluenceClient::new(&self.http, &credentials.config, token);
        let timer = CheckTimer::start();
        let who = identity(&client, &mut config)
            .await
            .map_err(|error| match error.kind() {
                // An address the policy refuses keeps its own message: it names host and rule.
                ErrorKind::InvalidConfig => copy_error(&error),
                ErrorKind::AuthFailed | ErrorKind::NeedsReauth | ErrorKind::PermissionDenied => {
                    token_refused(PAT_INVALID, PAT_HINT, &error)
                }
                kind => Error::new(kind, PAT_INVALID)
                    .with_connector(CONNECTOR_ID)
                    .with_hint(format!("{PAT_HINT} ({})", error.message())),
            });
        let pat_check = timer.finish(PAT_CHECK.0, PAT_CHECK.1, true, who);
        let mut checks = vec![pat_check.clone()];
        if pat_check.outcome != CheckOutcome::Ok {
            checks.extend(skipped(&[SPACE_CHECK, SEARCH_CHECK]));
            return Ok(ValidationReport::new(CONNECTOR_ID, checks));
        }
        let timer = CheckTimer::start();
        checks.push(timer.finish(
            SPACE_CHECK.0,
            SPACE_CHECK.1,
            false,
            space_read(&client).await,
        ));
        let timer = CheckTimer::start();
        checks.push(timer.finish(
            SEARCH_CHECK.0,
            SEARCH_CHECK.1,
            false,
            search_probe(&client).await,
        ));
        credentials.config = config;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }
}

#[async_trait]
impl Connector for ConfluenceConnector {
    type Config = ConfluenceConfig;
    type Secrets = NoSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<ConfluenceConfig, NoSecrets>> {
        let parts = match request {
            AuthRequest::Form(fields) => {
                ConnectForm::from_fields(fields).and_then(|form| form.into_parts(&self.http))
            }
            AuthRequest::OAuth(grant) => auth::from_grant(grant),
            _ => Err(Error::unsupported(
                "Confluence connects through Atlassian OAuth (Cloud) or with a personal access token (Data Center)",
            )),
        };
        let (config, tokens) = parts.map_err(|error| error.with_connector(CONNECTOR_ID))?;
        Ok(Credentials::new(config, NoSecrets {}).with_tokens(tokens))
    }

    /// Cloud: the site from `accessible-resources` (mandatory; chosen by the `site`
    /// option when there are several), the user (mandatory), spaces and search.
    /// Data Center: the personal access token through `user/current` (mandatory),
    /// spaces and search.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<ConfluenceConfig, NoSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Confluence credentials");
        if credentials.config.is_cloud() {
            self.validate_cloud(credentials).await
        } else {
            self.validate_data_center(credentials).await
        }
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<ConfluenceConfig, NoSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Confluence query");
        let token = credentials.access_token(CONNECTOR_ID).map_err(|_| {
            Error::new(ErrorKind::NeedsReauth, CREDENTIALS_EXPIRED)
                .with_connector(CONNECTOR_ID)
                .with_hint(RECONNECT_HINT)
        })?;
        let client = ConfluenceClient::new(&self.http, &credentials.config, token);
        query::run(&query::Api::new(client), ctx, operation, params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(id: &str, url: &str, name: &str) -> Site {
        Site {
            id: id.to_owned(),
            name: name.to_owned(),
            url: url.to_owned(),
            scopes: vec!["read:page:confluence".to_owned()],
        }
    }

    #[test]
    fn a_site_is_chosen_by_url_host_name_or_id_never_by_position() {
        let sites = [
            site("id-a", "https://alpha.atlassian.net", "Alpha"),
            site("id-b", "https://beta.atlassian.net", "Beta"),
        ];
        let mut config = ConfluenceConfig::cloud(None, Vec::new());
        let error = choose_site(&config, &sites).unwrap_err();
        assert_eq!(error.field(), Some("site"));
        assert!(
            error
                .message()
                .contains("https://alpha.atlassian.net (Alpha, cloud id id-a)"),
            "{error}"
        );
        assert!(
            error.message().contains("https://beta.atlassian.net"),
            "{error}"
        );
        assert!(error.hint().unwrap().contains("\"site\""), "{error:?}");
        for requested in [
            "https://beta.atlassian.net/",
            "BETA.atlassian.net",
            "beta",
            "id-b",
            "Beta",
        ] {
            config.requested_site = Some(requested.to_owned());
            assert_eq!(
                choose_site(&config, &sites).unwrap().id,
                "id-b",
                "{requested}"
            );
        }
        config.requested_site = Some("gamma".to_owned());
        assert_eq!(
            choose_site(&config, &sites).unwrap_err().field(),
            Some("site")
        );
        config.requested_site = None;
        assert_eq!(choose_site(&config, &sites[..1]).unwrap().id, "id-a");
    }
}
