//! The Netdata connector. It connects with a Netdata Cloud API token (and
//! optionally a space URL and space name), proves the token by listing its spaces
//! and the chosen space's rooms, offers read operations over spaces, rooms, nodes
//! and alerts, and normalises Netdata's webhook deliveries (payload versions 1 and
//! 2) into alerts, authenticated by the connection's bearer token.
//!
//! See the crate README for the connect fields, checks, operations and which of
//! Netdata's endpoints are not yet verified against Netdata Cloud.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod query;
pub mod webhook;

use async_trait::async_trait;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckOutcome, CheckTimer,
    Connector, ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, Error, FromEnv,
    QueryOutput, Result, ValidationCheck, ValidationReport, VerifiedDelivery, WebhookAuth,
    WebhookDescriptor, WebhookMethod, WebhookOutcome,
};
use patchbay_http::HttpClient;
use serde_json::Value;

pub use auth::{ConnectForm, NetdataSecrets};
use client::{NetdataClient, Space};
pub use config::NetdataConfig;

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "netdata";

/// The header Netdata sends the per-connection webhook token in, as
/// `Authorization: Bearer <token>` (its webhook integration's bearer option).
pub const WEBHOOK_TOKEN_HEADER: &str = "Authorization";

/// The route Netdata's webhook integration posts alerts to.
pub const WEBHOOK_PATH: &str = "/netdata/alerts/webhook/{user_id}";

/// What the registry knows about the Netdata connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Netdata",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: WEBHOOK_PATH,
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::Token {
            header: WEBHOOK_TOKEN_HEADER,
        },
    }),
    oauth: None,
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<NetdataConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The Netdata connector; holds only the shared HTTP client, never credentials.
#[derive(Debug, Clone)]
pub struct NetdataConnector {
    http: HttpClient,
}

impl NetdataConnector {
    /// A connector that sends requests through `http`.
    pub fn new(http: HttpClient) -> Self {
        Self { http }
    }
}

impl FromEnv for NetdataConnector {
    /// A connector whose HTTP client is configured from `env`
    /// (`PATCHBAY_UPSTREAM_OVERRIDES`, `PATCHBAY_HTTP_*`).
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self::new(HttpClient::from_env(env)?))
    }
}

const SPACES_CHECK: (&str, &str) = (
    "spaces",
    "Netdata Cloud accepts the API token and lists its spaces (GET /api/v3/spaces)",
);
const SPACE_CHECK: (&str, &str) = ("space", "The space to use exists among the token's spaces");
const ROOMS_CHECK: (&str, &str) = (
    "rooms",
    "The token can list the space's rooms (GET /api/v2/spaces/{spaceID}/rooms)",
);

/// A failed check with `detail`, for failures found without a provider error.
fn failed(timer: CheckTimer, (id, description): (&str, &str), detail: String) -> ValidationCheck {
    let mut check = timer.finish(id, description, true, Ok(String::new()));
    check.outcome = CheckOutcome::Failed;
    check.detail = detail;
    check
}

/// The spaces' names, for messages.
fn names(spaces: &[Space]) -> String {
    if spaces.is_empty() {
        return "none".to_owned();
    }
    spaces
        .iter()
        .map(|space| format!("`{}`", space.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The space `wanted` names (its id, slug or name, case-insensitively), or the only
/// space when none is named; otherwise why none can be chosen.
pub fn choose_space<'a>(
    spaces: &'a [Space],
    wanted: Option<&str>,
) -> std::result::Result<&'a Space, String> {
    match wanted.map(str::trim).filter(|wanted| !wanted.is_empty()) {
        Some(wanted) => spaces
            .iter()
            .find(|space| space.id == wanted)
            .or_else(|| {
                spaces
                    .iter()
                    .find(|space| space.slug.as_deref() == Some(wanted))
            })
            .or_else(|| spaces.iter().find(|space| space.name == wanted))
            .or_else(|| {
                spaces
                    .iter()
                    .find(|space| space.name.eq_ignore_ascii_case(wanted))
            })
            .ok_or_else(|| {
                format!(
                    "Netdata space `{wanted}` was not found; the token can see: {} \
                     (set space_name to one of them)",
                    names(spaces)
                )
            }),
        None => match spaces {
            [only] => Ok(only),
            [] => Err(
                "the token can see no Netdata space; create the token in the space \
                       to connect (Space settings > API tokens)"
                    .to_owned(),
            ),
            several => Err(format!(
                "the token can see several Netdata spaces: {}; set space_name to the one to use",
                names(several)
            )),
        },
    }
}

#[async_trait]
impl Connector for NetdataConnector {
    type Config = NetdataConfig;
    type Secrets = NetdataSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<NetdataConfig, NetdataSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .and_then(|form| form.into_parts(&self.http))
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            _ => Err(
                Error::unsupported("Netdata connects with an API token, not through OAuth")
                    .with_connector(CONNECTOR_ID)
                    .with_hint(
                        "send the connect form's fields: api_token, and optionally space_url and space_name",
                    ),
            ),
        }
    }

    /// Proves the token by listing its spaces (mandatory), finds the named space
    /// (mandatory; a missing one names the spaces the token sees), then lists that
    /// space's rooms; fills the space and room ids.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<NetdataConfig, NetdataSecrets>,
    ) -> Result<ValidationReport> {
        tracing::debug!(connection_id = ?ctx.connection_id, "validating Netdata credentials");
        let config = credentials.config.clone();
        let client = NetdataClient::new(&self.http, &config, &credentials.secrets);
        let report = |checks| ValidationReport::new(CONNECTOR_ID, checks);

        let timer = CheckTimer::start();
        let (spaces_id, spaces_description) = SPACES_CHECK;
        let spaces = match client.spaces("validate").await {
            Ok(spaces) => spaces,
            Err(error) => {
                return Ok(report(vec![
                    timer.finish(spaces_id, spaces_description, true, Err(error)),
                    CheckTimer::skipped(SPACE_CHECK.0, SPACE_CHECK.1, true),
                    CheckTimer::skipped(ROOMS_CHECK.0, ROOMS_CHECK.1, false),
                ]));
            }
        };
        let spaces_check = timer.finish(
            spaces_id,
            spaces_description,
            true,
            Ok(format!("the token can see {} space(s)", spaces.len())),
        );

        let timer = CheckTimer::start();
        let space = match choose_space(&spaces, config.space.as_deref()) {
            Ok(space) => space.clone(),
            Err(detail) => {
                return Ok(report(vec![
                    spaces_check,
                    failed(timer, SPACE_CHECK, detail),
                    CheckTimer::skipped(ROOMS_CHECK.0, ROOMS_CHECK.1, false),
                ]));
            }
        };
        let space_check = timer.finish(
            SPACE_CHECK.0,
            SPACE_CHECK.1,
            true,
            Ok(format!("using space `{}` ({})", space.name, space.id)),
        );

        let timer = CheckTimer::start();
        let rooms = client.rooms("validate", &space.id).await;
        let room_ids: Vec<String> = rooms
            .as_ref()
            .map(|rooms| rooms.iter().map(|room| room.id.clone()).collect())
            .unwrap_or_default();
        let rooms_check = timer.finish(
            ROOMS_CHECK.0,
            ROOMS_CHECK.1,
            false,
            rooms.map(|rooms| {
                let names: Vec<String> = rooms
                    .iter()
                    .take(10)
                    .map(|room| format!("`{}`", room.name))
                    .collect();
                format!("{} room(s): {}", rooms.len(), names.join(", "))
            }),
        );

        credentials.config.space_id = Some(space.id.clone());
        credentials.config.space_name = Some(space.name.clone());
        credentials.config.space_slug = space.slug.clone();
        credentials.config.room_ids = room_ids;
        Ok(report(vec![spaces_check, space_check, rooms_check]))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        credentials: &Credentials<NetdataConfig, NetdataSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        tracing::debug!(connection_id = ?ctx.connection_id, operation, "Netdata query");
        let client = NetdataClient::new(&self.http, &credentials.config, &credentials.secrets);
        query::run(&client, ctx, operation, params).await
    }

    /// Normalises a delivery whose bearer token the host verified.
    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &NetdataConfig,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        webhook::normalize(delivery)
    }
}
