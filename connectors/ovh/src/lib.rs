//! The OVHcloud connector: connect through OAuth 2.0 in one of OVHcloud's three
//! regions (each with its own OAuth client) or with an application key whose every
//! request is signed, validate the account and its Public Cloud and bare-metal
//! access, and read projects, instances, Kubernetes clusters, databases, private
//! networks, quotas and dedicated servers.
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
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    ClientAuthStyle, Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials,
    EnvVar, Error, FromEnv, OAuthRegion, OAuthSpec, QueryOutput, RegionalOAuth, Result,
    ValidationReport,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, OvhSecrets};
use client::OvhClient;
pub use config::{ApiBases, AuthMethod, OvhConfig, Region};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "ovh";
/// The flag that turns the connector on.
pub const FEATURE_FLAG: &str = "NEXT_PUBLIC_ENABLE_OVH";
/// What every OVHcloud route answers while [`FEATURE_FLAG`] is off.
pub const DISABLED_MESSAGE: &str = "OVH connector not enabled";
/// The OAuth callback route (the same in every region).
pub const CALLBACK_PATH: &str = "/ovh_api/ovh/oauth2/callback";
/// What starting OAuth in a region without client credentials answers.
pub const NOT_CONFIGURED_MESSAGE: &str = "OAuth2 credentials not configured for {region}";
/// The OAuth scope requested: OVHcloud's authorization-code clients know only `all`;
/// what the token may do is bounded by the account's IAM policies.
pub const OAUTH_SCOPES: &[&str] = &["all"];

const fn region_spec(
    authorize_url: &'static str,
    token_url: &'static str,
    api_base_url: &'static str,
    client_id_env: &'static [&'static str],
    client_secret_env: &'static [&'static str],
) -> OAuthSpec {
    OAuthSpec {
        authorize_url,
        token_url,
        revoke_url: None,
        api_base_url: Some(api_base_url),
        start_options: &["region"],
        scopes: OAUTH_SCOPES,
        scope_separator: " ",
        extra_authorize_params: &[],
        client_auth: ClientAuthStyle::RequestBody,
        pkce: true,
        client_id_env,
        client_secret_env,
        callback_path: CALLBACK_PATH,
        feature_flag: None,
        disabled_message: None,
    }
}

const EU_SPEC: OAuthSpec = region_spec(
    "https://www.ovh.com/auth/oauth2/authorize",
    "https://www.ovh.com/auth/oauth2/token",
    "https://eu.api.ovh.com/1.0",
    &["OVH_EU_CLIENT_ID"],
    &["OVH_EU_CLIENT_SECRET"],
);

/// OVHcloud's OAuth clients, one per region: the region is the `region` start option,
/// and each region's client secret goes only to that region's endpoints.
pub const REGIONAL_OAUTH: RegionalOAuth = RegionalOAuth {
    connector: CONNECTOR_ID,
    option: "region",
    regions: &[
        OAuthRegion {
            name: "ovh-eu",
            spec: EU_SPEC,
            redirect_uri_env: Some("OVH_EU_REDIRECT_URI"),
        },
        OAuthRegion {
            name: "ovh-ca",
            spec: region_spec(
                "https://ca.ovh.com/auth/oauth2/authorize",
                "https://ca.ovh.com/auth/oauth2/token",
                "https://ca.api.ovh.com/1.0",
                &["OVH_CA_CLIENT_ID"],
                &["OVH_CA_CLIENT_SECRET"],
            ),
            redirect_uri_env: Some("OVH_CA_REDIRECT_URI"),
        },
        OAuthRegion {
            name: "ovh-us",
            spec: region_spec(
                "https://us.ovhcloud.com/auth/oauth2/authorize",
                "https://us.ovhcloud.com/auth/oauth2/token",
                "https://api.us.ovhcloud.com/1.0",
                &["OVH_US_CLIENT_ID"],
                &["OVH_US_CLIENT_SECRET"],
            ),
            redirect_uri_env: Some("OVH_US_REDIRECT_URI"),
        },
    ],
    not_configured_message: NOT_CONFIGURED_MESSAGE,
};

patchbay_core::register_regional_oauth!(REGIONAL_OAUTH);

const fn var(name: &'static str, secret: bool, description: &'static str) -> EnvVar {
    EnvVar {
        name,
        required: false,
        secret,
        description,
    }
}

/// What the registry knows about the OVHcloud connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "OVHcloud",
    category: Category::Cloud,
    auth_kinds: &[AuthKind::Oauth2, AuthKind::ApiKey],
    env_vars: &[
        var("OVH_EU_CLIENT_ID", false, "Client ID of the OAuth2 client created in the EU API console (OAuth in ovh-eu)"),
        var("OVH_EU_CLIENT_SECRET", true, "Client secret of the EU OAuth2 client"),
        var("OVH_EU_REDIRECT_URI", false, "The HTTPS callback URL registered on the EU client, ending in /ovh_api/ovh/oauth2/callback; sent exactly as written"),
        var("OVH_CA_CLIENT_ID", false, "Client ID of the OAuth2 client created in the CA API console (optional: OAuth in ovh-ca)"),
        var("OVH_CA_CLIENT_SECRET", true, "Client secret of the CA OAuth2 client"),
        var("OVH_CA_REDIRECT_URI", false, "The HTTPS callback URL registered on the CA client; sent exactly as written"),
        var("OVH_US_CLIENT_ID", false, "Client ID of the OAuth2 client created in the US API console (optional: OAuth in ovh-us)"),
        var("OVH_US_CLIENT_SECRET", true, "Client secret of the US OAuth2 client"),
        var("OVH_US_REDIRECT_URI", false, "The HTTPS callback URL registered on the US client; sent exactly as written"),
        var("OVH_EU_API_URL", false, "Replaces https://eu.api.ovh.com/1.0 (an egress proxy); must pass the outbound address policy"),
        var("OVH_CA_API_URL", false, "Replaces https://ca.api.ovh.com/1.0; must pass the outbound address policy"),
        var("OVH_US_API_URL", false, "Replaces https://api.us.ovhcloud.com/1.0; must pass the outbound address policy"),
    ],
    feature_flag: Some(FEATURE_FLAG),
    disabled_message: Some(DISABLED_MESSAGE),
    webhook: None,
    // The EU client; the other regions' are in REGIONAL_OAUTH, chosen by the `region` option.
    oauth: Some(EU_SPEC),
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<OvhConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The OVHcloud connector; holds the shared HTTP client and the API base of each
/// region, never credentials.
#[derive(Debug, Clone)]
pub struct OvhConnector {
    http: HttpClient,
    bases: ApiBases,
}

impl OvhConnector {
    /// A connector that sends requests through `http` to OVHcloud's own API bases.
    pub fn new(http: HttpClient) -> Self {
        Self {
            http,
            bases: ApiBases::official(),
        }
    }

    /// A connector that sends requests through `http` to `bases`.
    pub fn with_bases(http: HttpClient, bases: ApiBases) -> Self {
        Self { http, bases }
    }
}

impl FromEnv for OvhConnector {
    /// A connector whose HTTP client is configured from `env` (`PATCHBAY_HTTP_*`,
    /// `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`) and whose API bases may be replaced by
    /// `OVH_<REGION>_API_URL`.
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        let http = HttpClient::from_env(env)?;
        let bases = ApiBases::from_env(env, &http)?;
        Ok(Self::with_bases(http, bases))
    }
}

const CREDENTIALS_CHECK: (&str, &str) = (
    "credentials",
    "OVHcloud accepts the credentials and names the account (GET /me; signed requests use the clock of GET /auth/time)",
);
const PROJECTS_CHECK: (&str, &str) = (
    "cloud_projects",
    "The credentials can list Public Cloud projects (GET /cloud/project)",
);
const SERVERS_CHECK: (&str, &str) = (
    "dedicated_servers",
    "The credentials can list dedicated servers (GET /dedicated/server)",
);

fn count(body: &Value) -> usize {
    body.as_array().map_or(0, Vec::len)
}

#[async_trait]
impl Connector for OvhConnector {
    type Config = OvhConfig;
    type Secrets = OvhSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<OvhConfig, OvhSecrets>> {
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
                Ok(Credentials::new(config, OvhSecrets::default()).with_tokens(tokens))
            }
            _ => Err(Error::unsupported(
                "OVHcloud connects through OAuth or with an application key",
            )
            .with_connector(CONNECTOR_ID)),
        }
    }

    /// `GET /me` (mandatory, after `GET /auth/time` for signed requests), then
    /// `GET /cloud/project` and `GET /dedicated/server` (each optional: a 403 names
    /// the missing IAM permission).
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<OvhConfig, OvhSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating OVHcloud credentials");
        let client = OvhClient::new(&self.http, &self.bases, credentials)?;
        let region = credentials.config.region;
        let signed = credentials.config.auth_method == AuthMethod::ApplicationKey;

        let (id, description) = CREDENTIALS_CHECK;
        let timer = CheckTimer::start();
        let me = async {
            let delta = if signed {
                Some(client.time_delta().await?)
            } else {
                None
            };
            let me = client.get("validate", "/me", &["me"], &[]).await?;
            Ok::<_, Error>((me, delta))
        }
        .await;
        let nichandle = me.as_ref().ok().and_then(|(me, _)| {
            me.get("nichandle")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let credentials_check = timer.finish(
            id,
            description,
            true,
            me.map(|(_, delta)| {
                format!(
                    "authenticated as {} in {}{}",
                    nichandle.as_deref().unwrap_or("an OVHcloud account"),
                    region.name(),
                    delta
                        .map(|delta| format!(" (OVHcloud's clock is {delta:+} s from ours)"))
                        .unwrap_or_default()
                )
            }),
        );
        if credentials_check.outcome != CheckOutcome::Ok {
            return Ok(ValidationReport::new(
                CONNECTOR_ID,
                vec![
                    credentials_check,
                    CheckTimer::skipped(PROJECTS_CHECK.0, PROJECTS_CHECK.1, false),
                    CheckTimer::skipped(SERVERS_CHECK.0, SERVERS_CHECK.1, false),
                ],
            ));
        }

        let (id, description) = PROJECTS_CHECK;
        let timer = CheckTimer::start();
        let projects = client
            .get("validate", "/cloud/project", &["cloud", "project"], &[])
            .await
            .map(|body| count(&body));
        let project_count = projects.as_ref().ok().copied();
        let projects_check = timer.finish(
            id,
            description,
            false,
            projects.map(|count| format!("{count} Public Cloud project(s)")),
        );

        let (id, description) = SERVERS_CHECK;
        let timer = CheckTimer::start();
        let servers = client
            .get(
                "validate",
                "/dedicated/server",
                &["dedicated", "server"],
                &[],
            )
            .await
            .map(|body| format!("{} dedicated server(s)", count(&body)));
        let servers_check = timer.finish(id, description, false, servers);

        credentials.config.nichandle = nichandle;
        credentials.config.project_count = project_count;
        Ok(ValidationReport::new(
            CONNECTOR_ID,
            vec![credentials_check, projects_check, servers_check],
        ))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<OvhConfig, OvhSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "OVHcloud query");
        let client = OvhClient::new(&self.http, &self.bases, credentials)?.for_queries();
        query::run(&query::Api::new(client), ctx, operation, params).await
    }
}
