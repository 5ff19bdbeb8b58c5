//! The Microsoft Azure connector: connect with a service principal (client
//! credentials, with an optional read-only principal for queries) or through the
//! delegated authorization-code flow at `/azure/callback`; validate the token, the
//! subscriptions, the chosen subscription, read and write permissions and the
//! client secret's expiry; query Resource Graph, metrics, the activity log, alerts,
//! AKS clusters and Log Analytics.
//!
//! See the crate README for the connect fields, checks and operations.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, ErrorKind, FromEnv, OAuthClientCredentials, OAuthSpec, QueryOutput, Result,
    SecretString, ValidationCheck, ValidationReport,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{AzureSecrets, ConnectForm, SUBSCRIPTION_OPTION};
use client::{Audience, Auth, AzureClient, Principal, TokenCache};
pub use client::{INSUFFICIENT_PRIVILEGES, INVALID_CREDENTIALS, REPLY_URL_MISMATCH};
pub use config::{AuthType, AzureConfig, Endpoints};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "azure";

/// The environment variable holding the delegated flow's OAuth client id.
pub const CLIENT_ID_VAR: &str = "AZURE_CLIENT_ID";
/// The environment variable holding the delegated flow's OAuth client secret.
pub const CLIENT_SECRET_VAR: &str = "AZURE_CLIENT_SECRET";
/// The delegated flow's authorize endpoint (work and school accounts of any tenant).
pub const AUTHORIZE_URL: &str =
    "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize";
/// The delegated flow's token endpoint.
pub const TOKEN_URL: &str = "https://login.microsoftonline.com/organizations/oauth2/v2.0/token";
/// The delegated scopes: Azure Service Management as the user, and a refresh token.
pub const OAUTH_SCOPES: &[&str] = &[
    "https://management.azure.com/user_impersonation",
    "offline_access",
    "openid",
];
/// The guide's message when no subscription is Enabled.
pub const NO_ENABLED_SUBSCRIPTION: &str = "No enabled subscription found";
/// Warn when the client secret expires within this many days.
pub const SECRET_WARNING_DAYS: i64 = 30;
/// The subscriptions API version.
pub const SUBSCRIPTIONS_API: &str = "2022-12-01";
/// The permissions API version.
pub const PERMISSIONS_API: &str = "2022-04-01";
/// The most subscription pages validation reads.
pub const MAX_SUBSCRIPTION_PAGES: usize = 10;

/// What the registry knows about the Azure connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Microsoft Azure",
    category: Category::Cloud,
    auth_kinds: &[AuthKind::ServicePrincipal, AuthKind::Oauth2],
    env_vars: &[
        EnvVar {
            name: CLIENT_ID_VAR,
            required: false,
            secret: false,
            description: "Application (client) ID of Patchbay's own app registration, for delegated (OAuth) connections only; service principals work without it",
        },
        EnvVar {
            name: CLIENT_SECRET_VAR,
            required: false,
            secret: true,
            description: "Client secret of Patchbay's own app registration, for delegated (OAuth) connections only",
        },
        EnvVar {
            name: config::AUTHORITY_VAR,
            required: false,
            secret: false,
            description: "Login authority for service-principal tokens (default https://login.microsoftonline.com)",
        },
        EnvVar {
            name: config::ARM_VAR,
            required: false,
            secret: false,
            description: "Azure Resource Manager base URL (default https://management.azure.com)",
        },
        EnvVar {
            name: config::GRAPH_VAR,
            required: false,
            secret: false,
            description: "Microsoft Graph base URL, read for the client secret's expiry (default https://graph.microsoft.com)",
        },
        EnvVar {
            name: config::LOG_ANALYTICS_VAR,
            required: false,
            secret: false,
            description: "Log Analytics query API base URL (default https://api.loganalytics.io)",
        },
    ],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    oauth: Some(OAuthSpec {
        authorize_url: AUTHORIZE_URL,
        token_url: TOKEN_URL,
        // Microsoft offers no endpoint to revoke one grant's refresh token.
        revoke_url: None,
        api_base_url: Some(config::DEFAULT_ARM),
        start_options: &[SUBSCRIPTION_OPTION],
        scopes: OAUTH_SCOPES,
        scope_separator: " ",
        extra_authorize_params: &[("response_mode", "query")],
        client_auth: ClientAuthStyle::RequestBody,
        pkce: true,
        client_id_env: &[CLIENT_ID_VAR],
        client_secret_env: &[CLIENT_SECRET_VAR],
        callback_path: "/azure/callback",
        feature_flag: None,
        disabled_message: None,
    }),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<AzureConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);
patchbay_core::register_oauth_errors!(CONNECTOR_ID, client::explain_oauth_error);

/// The Azure connector: the HTTP client, the endpoints and the in-process token
/// cache (one token per principal and audience); never stored credentials.
#[derive(Debug, Clone)]
pub struct AzureConnector {
    http: HttpClient,
    endpoints: Endpoints,
    cache: TokenCache,
    /// Patchbay's own app (`AZURE_CLIENT_ID`/`AZURE_CLIENT_SECRET`), pinned to the
    /// sign-in's endpoints, for delegated tokens of APIs other than Resource Manager.
    oauth_client: Option<OAuthClientCredentials>,
}

impl AzureConnector {
    /// A connector that sends requests through `http` to `endpoints`.
    pub fn new(http: HttpClient, endpoints: Endpoints) -> Self {
        Self {
            http,
            endpoints,
            cache: TokenCache::default(),
            oauth_client: None,
        }
    }

    /// The same connector with Patchbay's own app registration, so delegated
    /// connections can get Log Analytics tokens with their refresh token.
    pub fn with_oauth_client(mut self, client_id: &str, client_secret: SecretString) -> Self {
        if let Some(spec) = &DESCRIPTOR.oauth {
            self.oauth_client = Some(OAuthClientCredentials::for_spec(
                client_id,
                client_secret,
                spec,
            ));
        }
        self
    }

    /// The token cache, for tests.
    pub fn token_cache(&self) -> &TokenCache {
        &self.cache
    }
}

impl FromEnv for AzureConnector {
    /// A connector whose HTTP client is configured from `env` (`PATCHBAY_HTTP_*`,
    /// `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`) and whose endpoints come from
    /// `AZURE_AUTHORITY_HOST`, `AZURE_RESOURCE_MANAGER_URL`, `AZURE_GRAPH_URL` and
    /// `AZURE_LOG_ANALYTICS_URL` when set.
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        let http = HttpClient::from_env(env)?;
        let endpoints = Endpoints::from_env(env, &http)?;
        let connector = Self::new(http, endpoints);
        Ok(match (env.get(CLIENT_ID_VAR), env.get(CLIENT_SECRET_VAR)) {
            (Some(id), Some(secret)) => {
                connector.with_oauth_client(id.trim(), SecretString::from(secret.trim()))
            }
            _ => connector,
        })
    }
}

/// Check ids and descriptions, one line per capability.
const TOKEN_CHECK: (&str, &str) = (
    "token",
    "Microsoft Entra ID issues a Resource Manager token (client credentials, POST /{tenant}/oauth2/v2.0/token)",
);
const SUBSCRIPTIONS_CHECK: (&str, &str) = (
    "subscriptions",
    "The principal sees at least one Enabled subscription (GET /subscriptions, following nextLink)",
);
const SUBSCRIPTION_CHECK: (&str, &str) = (
    "subscription",
    "The chosen subscription is visible and Enabled (GET /subscriptions/{id})",
);
const READ_CHECK: (&str, &str) = (
    "permission_read",
    "The principal can read the subscription's resources (*/read, as the Reader role grants)",
);
const WRITE_CHECK: (&str, &str) = (
    "permission_write",
    "The principal can change resources (*, as the Contributor role grants); Patchbay's operations only read",
);
const SECRET_CHECK: (&str, &str) = (
    "client_secret_expiry",
    "The client secret is not about to expire (Microsoft Graph passwordCredentials, when Graph allows reading them)",
);
const RO_TOKEN_CHECK: (&str, &str) = (
    "read_only_token",
    "Microsoft Entra ID issues a Resource Manager token to the read-only principal",
);
const RO_SUBSCRIPTION_CHECK: (&str, &str) = (
    "read_only_subscription",
    "The read-only principal sees the subscription Enabled",
);
const RO_READ_CHECK: (&str, &str) = (
    "read_only_permission_read",
    "The read-only principal can read the subscription's resources (*/read)",
);
const RO_WRITE_CHECK: (&str, &str) = (
    "read_only_no_write",
    "The read-only principal cannot change resources (no * or */write)",
);
const RO_SECRET_CHECK: (&str, &str) = (
    "read_only_client_secret_expiry",
    "The read-only principal's client secret is not about to expire",
);

/// One subscription of `GET /subscriptions`.
#[derive(Debug, Clone)]
struct Subscription {
    id: String,
    name: String,
    state: String,
    tenant: Option<String>,
}

fn subscription_of(value: &Value) -> Option<Subscription> {
    Some(Subscription {
        id: value.get("subscriptionId")?.as_str()?.to_ascii_lowercase(),
        name: value
            .get("displayName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        state: value
            .get("state")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        tenant: value
            .get("tenantId")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase),
    })
}

/// Whether an ARM action pattern (`*`, `*/read`, `Microsoft.Compute/*`) covers `action`.
fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    match pattern.split_once('*') {
        None => pattern == action,
        Some((prefix, suffix)) => {
            action.len() >= prefix.len() + suffix.len()
                && action.starts_with(prefix)
                && action.ends_with(suffix)
        }
    }
}

/// Whether the permission sets allow `action` (some `actions` entry covers it and
/// no `notActions` entry of the same set does).
fn allows(permissions: &[Value], action: &str) -> bool {
    let list = |permission: &Value, key: &str| -> Vec<String> {
        permission
            .get(key)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    permissions.iter().any(|permission| {
        list(permission, "actions")
            .iter()
            .any(|pattern| action_matches(pattern, action))
            && !list(permission, "notActions")
                .iter()
                .any(|pattern| action_matches(pattern, action))
    })
}

/// The probe read for read permission, and the one for write permission.
const READ_PROBE_ACTION: &str = "Microsoft.Resources/subscriptions/resourceGroups/read";
const WRITE_PROBE_ACTION: &str = "Microsoft.Resources/subscriptions/resourceGroups/write";

fn failed(message: String, hint: &str) -> Error {
    Error::new(ErrorKind::PermissionDenied, message)
        .with_connector(CONNECTOR_ID)
        .with_hint(hint.to_owned())
}

/// A copy of an error for a second report line (errors are not `Clone`).
fn copy_error(error: &Error) -> Error {
    let mut copy =
        Error::new(error.kind(), error.message().to_owned()).with_connector(CONNECTOR_ID);
    if let Some(hint) = error.hint() {
        copy = copy.with_hint(hint.to_owned());
    }
    if let Some(status) = error.provider_status() {
        copy = copy.with_provider_status(status);
    }
    copy
}

fn skipped_with(id: &str, description: &str, mandatory: bool, detail: &str) -> ValidationCheck {
    let mut check = CheckTimer::skipped(id, description, mandatory);
    check.detail = detail.to_owned();
    check
}

/// What validation learned about one principal.
struct PrincipalChecks {
    checks: Vec<ValidationCheck>,
    subscription: Option<Subscription>,
    can_write: Option<bool>,
    secret_expires_at: Option<DateTime<Utc>>,
}

/// Which lines to run for a principal.
struct Lines {
    token: (&'static str, &'static str),
    subscriptions: Option<(&'static str, &'static str)>,
    subscription: (&'static str, &'static str),
    read: (&'static str, &'static str),
    write: (&'static str, &'static str),
    /// Whether the write line fails when writes are allowed (the read-only principal).
    write_must_be_absent: bool,
    secret: (&'static str, &'static str),
}

const MAIN_LINES: Lines = Lines {
    token: TOKEN_CHECK,
    subscriptions: Some(SUBSCRIPTIONS_CHECK),
    subscription: SUBSCRIPTION_CHECK,
    read: READ_CHECK,
    write: WRITE_CHECK,
    write_must_be_absent: false,
    secret: SECRET_CHECK,
};

const READ_ONLY_LINES: Lines = Lines {
    token: RO_TOKEN_CHECK,
    subscriptions: None,
    subscription: RO_SUBSCRIPTION_CHECK,
    read: RO_READ_CHECK,
    write: RO_WRITE_CHECK,
    write_must_be_absent: true,
    secret: RO_SECRET_CHECK,
};

impl AzureConnector {
    fn client(&self, auth: Auth) -> AzureClient<'_> {
        AzureClient::new(&self.http, &self.endpoints, &self.cache, auth)
    }

    /// A client for `auth`; a delegated one also gets the refresh token and
    /// Patchbay's app, when both exist, for Log Analytics tokens.
    fn client_for(
        &self,
        auth: Auth,
        credentials: &Credentials<AzureConfig, AzureSecrets>,
    ) -> AzureClient<'_> {
        let client = self.client(auth.clone());
        let refresh = credentials
            .tokens
            .as_ref()
            .and_then(|tokens| tokens.refresh_token.clone());
        match (&auth, refresh, &self.oauth_client) {
            (Auth::Delegated(_), Some(refresh), Some(app)) => {
                client.with_delegated_refresh(refresh, app)
            }
            _ => client,
        }
    }

    /// The auth of the main principal, or of the delegated user.
    fn main_auth(credentials: &Credentials<AzureConfig, AzureSecrets>) -> Result<Auth> {
        let config = &credentials.config;
        match config.auth_type {
            AuthType::Oauth => Ok(Auth::Delegated(
                credentials.access_token(CONNECTOR_ID)?.clone(),
            )),
            AuthType::ServicePrincipal => {
                match (
                    &config.tenant_id,
                    &config.client_id,
                    &credentials.secrets.client_secret,
                ) {
                    (Some(tenant), Some(client_id), Some(secret)) => {
                        Ok(Auth::Principal(Principal {
                            tenant: config::check_tenant("tenant_id", tenant)?,
                            client_id: client_id.clone(),
                            secret: secret.clone(),
                        }))
                    }
                    _ => Err(Error::new(
                        ErrorKind::NeedsReauth,
                        "No Azure credentials found. Please authenticate with Azure.",
                    )
                    .with_connector(CONNECTOR_ID)
                    .with_hint("disconnect Azure and connect it again")),
                }
            }
        }
    }

    /// The read-only principal, when the connection has one.
    fn read_only_auth(
        credentials: &Credentials<AzureConfig, AzureSecrets>,
    ) -> Result<Option<Auth>> {
        let config = &credentials.config;
        match (
            &config.read_only_tenant_id,
            &config.read_only_client_id,
            &credentials.secrets.read_only_client_secret,
        ) {
            (Some(tenant), Some(client_id), Some(secret)) => Ok(Some(Auth::Principal(Principal {
                tenant: config::check_tenant("read_only_tenant_id", tenant)?,
                client_id: client_id.clone(),
                secret: secret.clone(),
            }))),
            _ => Ok(None),
        }
    }

    /// Every visible subscription, following `nextLink`.
    async fn subscriptions(client: &AzureClient<'_>) -> Result<Vec<Subscription>> {
        let url = client.arm_url(&["subscriptions"], SUBSCRIPTIONS_API)?;
        let (items, _) = client
            .list(
                "validate",
                url,
                "subscriptions",
                MAX_SUBSCRIPTION_PAGES,
                usize::MAX,
            )
            .await?;
        Ok(items.iter().filter_map(subscription_of).collect())
    }

    async fn permissions(client: &AzureClient<'_>, subscription: &str) -> Result<Vec<Value>> {
        let url = client.arm_url(
            &[
                "subscriptions",
                subscription,
                "providers",
                "Microsoft.Authorization",
                "permissions",
            ],
            PERMISSIONS_API,
        )?;
        let (items, _) = client
            .list(
                "validate",
                url,
                "the subscription's permissions",
                5,
                usize::MAX,
            )
            .await?;
        Ok(items)
    }

    /// The client secret's expiry from Graph: the password credential whose `hint`
    /// (its first three characters) matches the secret, else the earliest to expire.
    async fn secret_expiry(
        client: &AzureClient<'_>,
        client_id: &str,
        secret: &SecretString,
    ) -> Result<Option<DateTime<Utc>>> {
        let mut url = config::join(
            &client.endpoints().graph,
            &["v1.0", &format!("applications(appId='{client_id}')")],
        )?;
        url.query_pairs_mut()
            .append_pair("$select", "appId,displayName,passwordCredentials");
        let application = client
            .call(
                Audience::Graph,
                "validate",
                &url,
                None,
                "the app registration",
            )
            .await?;
        let hint: String = secret.expose().chars().take(3).collect();
        let credentials: Vec<(Option<String>, DateTime<Utc>)> = application
            .get("passwordCredentials")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|item| {
                        let end = item.get("endDateTime")?.as_str()?;
                        let end = DateTime::parse_from_rfc3339(end).ok()?.with_timezone(&Utc);
                        let hint = item.get("hint").and_then(Value::as_str).map(str::to_owned);
                        Some((hint, end))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let matching: Vec<DateTime<Utc>> = credentials
            .iter()
            .filter(|(candidate, _)| candidate.as_deref() == Some(hint.as_str()))
            .map(|(_, end)| *end)
            .collect();
        let pool: Vec<DateTime<Utc>> = if matching.is_empty() {
            credentials.iter().map(|(_, end)| *end).collect()
        } else {
            matching
        };
        Ok(pool.into_iter().min())
    }

    /// The lines of one principal: token, subscriptions (main only), subscription,
    /// read, write, secret expiry.
    async fn check_principal(
        &self,
        auth: Auth,
        lines: &Lines,
        wanted: Option<&str>,
        now: DateTime<Utc>,
    ) -> PrincipalChecks {
        let client = self.client(auth.clone());
        let mut result = PrincipalChecks {
            checks: Vec::new(),
            subscription: None,
            can_write: None,
            secret_expires_at: None,
        };
        let skip_rest = |result: &mut PrincipalChecks, from_subscriptions: bool| {
            if from_subscriptions {
                if let Some((id, description)) = lines.subscriptions {
                    result
                        .checks
                        .push(CheckTimer::skipped(id, description, true));
                }
            }
            for (id, description, mandatory) in [
                (lines.subscription.0, lines.subscription.1, true),
                (lines.read.0, lines.read.1, false),
                (lines.write.0, lines.write.1, false),
            ] {
                result
                    .checks
                    .push(CheckTimer::skipped(id, description, mandatory));
            }
        };

        // Token.
        let timer = CheckTimer::start();
        let token = match &auth {
            Auth::Delegated(_) => {
                Ok("delegated Resource Manager token from the sign-in".to_owned())
            }
            Auth::Principal(principal) => client
                .token(Audience::Arm)
                .await
                .map(|_| format!("token issued to application {}", principal.client_id)),
        };
        let token_ok = token.is_ok();
        result
            .checks
            .push(timer.finish(lines.token.0, lines.token.1, true, token));
        if !token_ok {
            skip_rest(&mut result, true);
            result
                .checks
                .push(CheckTimer::skipped(lines.secret.0, lines.secret.1, false));
            return result;
        }

        // Subscriptions, following nextLink (the read-only principal is checked
        // against the main principal's subscription only).
        let timer = CheckTimer::start();
        let listed = match lines.subscriptions {
            Some(_) => Self::subscriptions(&client).await,
            None => Ok(Vec::new()),
        };
        let enabled: Vec<Subscription> = listed
            .as_ref()
            .map(|all| {
                all.iter()
                    .filter(|subscription| subscription.state.eq_ignore_ascii_case("Enabled"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let listed_ok = listed.is_ok() && !enabled.is_empty();
        if let Some((id, description)) = lines.subscriptions {
            let outcome = match listed {
                Ok(all) if !enabled.is_empty() => Ok(format!(
                    "{} subscription(s), {} Enabled",
                    all.len(),
                    enabled.len()
                )),
                Ok(all) => Err(failed(
                    format!(
                        "{NO_ENABLED_SUBSCRIPTION} ({} subscription(s) visible, none Enabled)",
                        all.len()
                    ),
                    "Assign Reader/Contributor role to the app in subscription IAM; it can take 1–2 \
                     minutes for Azure permissions to propagate",
                )),
                Err(error) => Err(error),
            };
            result
                .checks
                .push(timer.finish(id, description, true, outcome));
            if !listed_ok {
                skip_rest(&mut result, false);
                result
                    .checks
                    .push(CheckTimer::skipped(lines.secret.0, lines.secret.1, false));
                return result;
            }
        }

        // The chosen subscription.
        let timer = CheckTimer::start();
        let chosen: Result<Subscription> = match wanted {
            Some(wanted) => {
                let url = client.arm_url(&["subscriptions", wanted], SUBSCRIPTIONS_API);
                match url {
                    Err(error) => Err(error),
                    Ok(url) => match client
                        .call(Audience::Arm, "validate", &url, None, "subscription")
                        .await
                    {
                        Ok(value) => match subscription_of(&value) {
                            Some(subscription) if subscription.state.eq_ignore_ascii_case("Enabled") => {
                                Ok(subscription)
                            }
                            Some(subscription) => Err(failed(
                                format!(
                                    "Subscription {} ({}) is {}, not Enabled",
                                    subscription.id, subscription.name, subscription.state
                                ),
                                "choose an Enabled subscription, or reactivate this one in the Azure portal",
                            )),
                            None => Err(Error::internal("Azure answered without a subscription id")
                                .with_connector(CONNECTOR_ID)),
                        },
                        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => Err(failed(
                            format!("Subscription {wanted} is not visible to this principal ({})", error.message()),
                            client::ROLE_HINT,
                        )),
                        Err(error) => Err(error),
                    },
                }
            }
            None => enabled.first().cloned().ok_or_else(|| {
                failed(
                    NO_ENABLED_SUBSCRIPTION.to_owned(),
                    "Assign Reader/Contributor role to the app in subscription IAM",
                )
            }),
        };
        let chosen_id = chosen
            .as_ref()
            .ok()
            .map(|subscription| subscription.id.clone());
        result.checks.push(
            timer.finish(
                lines.subscription.0,
                lines.subscription.1,
                true,
                chosen
                    .as_ref()
                    .map(|subscription| {
                        format!(
                            "{} ({}){}",
                            subscription.name,
                            subscription.id,
                            if wanted.is_none() {
                                ", the first Enabled one"
                            } else {
                                ""
                            }
                        )
                    })
                    .map_err(copy_error),
            ),
        );
        let Some(subscription) = chosen_id else {
            for (id, description) in [lines.read, lines.write] {
                result
                    .checks
                    .push(CheckTimer::skipped(id, description, false));
            }
            result
                .checks
                .push(CheckTimer::skipped(lines.secret.0, lines.secret.1, false));
            return result;
        };
        result.subscription = chosen.ok();

        // Permissions: read and write.
        let timer = CheckTimer::start();
        let permissions = Self::permissions(&client, &subscription).await;
        let read = match &permissions {
            Ok(sets) if allows(sets, READ_PROBE_ACTION) => Ok("*/read is allowed".to_owned()),
            Ok(_) => Err(failed(
                format!("{INSUFFICIENT_PRIVILEGES}: the principal cannot read the subscription's resources"),
                client::ROLE_HINT,
            )),
            Err(error) => Err(copy_error(error)),
        };
        result
            .checks
            .push(timer.finish(lines.read.0, lines.read.1, false, read));
        let timer = CheckTimer::start();
        let write = match &permissions {
            Ok(sets) => {
                let can_write = allows(sets, WRITE_PROBE_ACTION);
                result.can_write = Some(can_write);
                match (can_write, lines.write_must_be_absent) {
                    (true, false) => Ok("writes are allowed (Contributor or broader)".to_owned()),
                    (false, true) => Ok("no write permission, as a read-only principal should have".to_owned()),
                    (false, false) => Err(failed(
                        "The principal cannot change resources (Reader): write actions are not available".to_owned(),
                        "assign Contributor instead of Reader only if Patchbay should be able to change resources",
                    )),
                    (true, true) => Err(failed(
                        "The read-only principal can change resources: it holds * or */write on the subscription".to_owned(),
                        "give the read-only principal the Reader role only",
                    )),
                }
            }
            Err(error) => Err(copy_error(error)),
        };
        result
            .checks
            .push(timer.finish(lines.write.0, lines.write.1, false, write));

        // The client secret's expiry, when Graph can tell.
        let timer = CheckTimer::start();
        match &auth {
            Auth::Delegated(_) => result.checks.push(skipped_with(
                lines.secret.0,
                lines.secret.1,
                false,
                "a delegated connection has no client secret of its own",
            )),
            Auth::Principal(principal) => {
                match Self::secret_expiry(&client, &principal.client_id, &principal.secret).await {
                    Ok(Some(expires_at)) => {
                        result.secret_expires_at = Some(expires_at);
                        let days = (expires_at - now).num_days();
                        let date = expires_at.format("%Y-%m-%d");
                        let outcome = if expires_at <= now {
                            Err(failed(
                                format!("The client secret expired on {date}"),
                                "create a new client secret (Certificates & secrets) and connect again",
                            ))
                        } else if expires_at - now <= TimeDelta::days(SECRET_WARNING_DAYS) {
                            Err(failed(
                                format!("The client secret expires on {date}, in {days} day(s)"),
                                "create a new client secret (Certificates & secrets) before then and connect again with it",
                            ))
                        } else {
                            Ok(format!("the client secret expires on {date}"))
                        };
                        result.checks.push(timer.finish(lines.secret.0, lines.secret.1, false, outcome));
                    }
                    Ok(None) => result.checks.push(skipped_with(
                        lines.secret.0,
                        lines.secret.1,
                        false,
                        "Microsoft Graph lists no client secret with an expiry date for this app",
                    )),
                    Err(error) => result.checks.push(skipped_with(
                        lines.secret.0,
                        lines.secret.1,
                        false,
                        &format!(
                            "Microsoft Graph cannot tell the secret's expiry: {} (grant Application.Read.All to let Patchbay warn before it lapses)",
                            error.message()
                        ),
                    )),
                }
            }
        }
        result
    }
}

#[async_trait]
impl Connector for AzureConnector {
    type Config = AzureConfig;
    type Secrets = AzureSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<AzureConfig, AzureSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(&fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            AuthRequest::OAuth(grant) => {
                let (config, tokens) =
                    auth::from_grant(grant).map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, AzureSecrets::default()).with_tokens(tokens))
            }
            _ => Err(Error::unsupported(
                "Microsoft Azure connects with a service principal or through OAuth",
            )
            .with_connector(CONNECTOR_ID)),
        }
    }

    /// Token, subscriptions (following nextLink), the chosen subscription Enabled,
    /// read and write permission, and the client secret's expiry; the same lines
    /// for the read-only principal when there is one.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<AzureConfig, AzureSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Azure credentials");
        let now = Utc::now();
        let main = Self::main_auth(credentials)?;
        let wanted = credentials.config.subscription_id.clone();
        let checked = self
            .check_principal(main, &MAIN_LINES, wanted.as_deref(), now)
            .await;
        let mut checks = checked.checks;
        let mut config = credentials.config.clone();
        if let Some(subscription) = &checked.subscription {
            config.subscription_id = Some(subscription.id.clone());
            config.subscription_name = Some(subscription.name.clone());
            if config.auth_type == AuthType::Oauth {
                config.tenant_id = subscription.tenant.clone();
            }
        }
        config.can_write = checked.can_write;
        config.secret_expires_at = checked.secret_expires_at;
        if let Some(read_only) = Self::read_only_auth(credentials)? {
            let main_ok = checks
                .iter()
                .all(|check| !check.mandatory || check.outcome == CheckOutcome::Ok);
            if main_ok {
                let checked = self
                    .check_principal(
                        read_only,
                        &READ_ONLY_LINES,
                        config.subscription_id.as_deref(),
                        now,
                    )
                    .await;
                checks.extend(checked.checks);
                config.read_only_secret_expires_at = checked.secret_expires_at;
            } else {
                for (id, description, mandatory) in [
                    (RO_TOKEN_CHECK.0, RO_TOKEN_CHECK.1, true),
                    (RO_SUBSCRIPTION_CHECK.0, RO_SUBSCRIPTION_CHECK.1, true),
                    (RO_READ_CHECK.0, RO_READ_CHECK.1, false),
                    (RO_WRITE_CHECK.0, RO_WRITE_CHECK.1, false),
                    (RO_SECRET_CHECK.0, RO_SECRET_CHECK.1, false),
                ] {
                    checks.push(CheckTimer::skipped(id, description, mandatory));
                }
            }
        }
        credentials.config = config;
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    /// Runs an operation as the read-only principal when the connection has one,
    /// else as the main principal or the delegated user.
    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<AzureConfig, AzureSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Azure query");
        let auth = match Self::read_only_auth(credentials)? {
            Some(read_only) => read_only,
            None => Self::main_auth(credentials)?,
        };
        let api = query::Api::new(
            self.client_for(auth, credentials),
            &credentials.config,
            Utc::now(),
        );
        query::run(&api, ctx, operation, params).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn permission_patterns_follow_arm_wildcards() {
        let reader = [json!({"actions": ["*/read"], "notActions": []})];
        assert!(allows(&reader, READ_PROBE_ACTION));
        assert!(!allows(&reader, WRITE_PROBE_ACTION));
        let contributor =
            [json!({"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Write"]})];
        assert!(allows(&contributor, WRITE_PROBE_ACTION));
        let denied = [json!({"actions": ["*"], "notActions": ["*"]})];
        assert!(!allows(&denied, READ_PROBE_ACTION));
        assert!(!allows(&[], READ_PROBE_ACTION));
    }
}
