//! What a connector declares about itself: the data a UI or an agent reads.

use serde::Serialize;

use crate::connector::{Connector, DynConnector};
use crate::env::ConnectorEnv;
use crate::error::Result;
use crate::oauth::OAuthSpec;

/// The family a connector belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Cloud providers (GCP, AWS, Azure, OVH).
    Cloud,
    /// Chat and code collaboration (Slack, GitHub).
    Communication,
    /// Knowledge bases (Confluence).
    Documentation,
    /// Monitoring and alerting (Datadog, Grafana, PagerDuty, Netdata).
    Observability,
    /// Cluster orchestration (Kubernetes).
    Orchestration,
}

/// A way a user can authorise a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// OAuth 2.0 authorisation-code flow.
    Oauth2,
    /// Provider API keys typed into a form.
    ApiKey,
    /// A personal access token typed into a form.
    Pat,
    /// A user name and password typed into a form, sent as HTTP Basic.
    Basic,
    /// Cross-account role assumption (AWS STS).
    AssumeRole,
    /// A token an in-cluster agent presents.
    AgentToken,
    /// A service principal's client credentials.
    ServicePrincipal,
    /// A service account's key file, uploaded through a form (Google Cloud).
    ServiceAccountKey,
}

/// An environment variable a connector reads.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EnvVar {
    /// The variable name, as the setup guide spells it.
    pub name: &'static str,
    /// Whether the connector cannot work without it.
    pub required: bool,
    /// Whether the value is a secret (never echoed).
    pub secret: bool,
    /// What it is for.
    pub description: &'static str,
}

/// How inbound webhook deliveries prove where they come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum WebhookAuth {
    /// A per-connection random token in a custom header; the host keeps only its hash.
    Token {
        /// The header the provider is told to send. `Authorization` means the token
        /// is sent as `Authorization: Bearer <token>`, for providers whose webhook
        /// settings offer a bearer token rather than a custom header.
        header: &'static str,
    },
    /// The connector verifies a provider signature with the connection's secrets
    /// (the host generates a `webhook_secret` for each connection and shows it once).
    Signature,
    /// One endpoint for the whole app, signed with an app-wide secret: the connector
    /// verifies the delivery and names the connection by a routing key (Slack's team id).
    App,
    /// The connector verifies a provider signature with signing secrets the provider
    /// issued (PagerDuty shows one when a subscription is created). They are kept as
    /// a list ([`crate::Credentials::webhook_secrets`]), added and removed through the
    /// host's API, so a new secret can be added before the old one is removed.
    ProviderSignature,
}

/// An HTTP method a provider delivers webhooks with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum WebhookMethod {
    /// `POST`, what nearly every provider sends.
    Post,
    /// `PUT`, which some senders (a Grafana contact point) can be set to use.
    Put,
}

/// Where a connector receives webhooks and how they are authenticated.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WebhookDescriptor {
    /// The route: with `{user_id}` as an opaque routing key for `Token` and
    /// `Signature` webhooks, a fixed path for `App` webhooks.
    pub path: &'static str,
    /// The methods the route accepts (usually `&[WebhookMethod::Post]`).
    pub methods: &'static [WebhookMethod],
    /// How deliveries are authenticated.
    pub auth: WebhookAuth,
}

/// One read (or write) operation a connector offers to queries.
#[derive(Debug, Clone, Serialize)]
pub struct OperationDescriptor {
    /// The name used in `/query/{operation}`.
    pub name: &'static str,
    /// What it returns, for people and agents.
    pub description: &'static str,
    /// False for operations that change provider state.
    pub read_only: bool,
    /// JSON Schema of the parameters.
    pub params_schema: schemars::Schema,
}

impl OperationDescriptor {
    /// Describes an operation whose parameters are `P`.
    pub fn new<P: schemars::JsonSchema>(
        name: &'static str,
        description: &'static str,
        read_only: bool,
    ) -> Self {
        Self {
            name,
            description,
            read_only,
            params_schema: schemars::schema_for!(P),
        }
    }
}

/// Everything the registry knows about a connector; submitted with `inventory`.
pub struct ConnectorDescriptor {
    /// Stable identifier used in routes and records (`datadog`).
    pub id: &'static str,
    /// Human name (`Datadog`).
    pub display_name: &'static str,
    /// The family it belongs to.
    pub category: Category,
    /// The ways a user can connect.
    pub auth_kinds: &'static [AuthKind],
    /// Environment variables it reads.
    pub env_vars: &'static [EnvVar],
    /// The `NEXT_PUBLIC_ENABLE_*` flag gating it, if any.
    pub feature_flag: Option<&'static str>,
    /// The message shown while the flag is off.
    pub disabled_message: Option<&'static str>,
    /// Its webhook route, if it receives webhooks.
    pub webhook: Option<WebhookDescriptor>,
    /// Its OAuth 2.0 provider, if it connects through OAuth.
    pub oauth: Option<OAuthSpec>,
    /// JSON Schema of the connect form.
    pub connect_schema: fn() -> schemars::Schema,
    /// Its query operations.
    pub operations: fn() -> Vec<OperationDescriptor>,
    /// Builds an instance from the environment.
    pub build: fn(&ConnectorEnv) -> Result<Box<dyn DynConnector>>,
}

/// A connector that builds itself from the host's environment (its HTTP client,
/// app-level secrets such as a signing secret).
pub trait FromEnv: Sized {
    /// Builds the connector, naming the variable at fault when one is malformed.
    fn from_env(env: &ConnectorEnv) -> Result<Self>;
}

/// A descriptor's `build` for a connector that implements [`FromEnv`]:
/// `build: build_from_env::<AcmeConnector>`.
pub fn build_from_env<C: Connector + FromEnv>(env: &ConnectorEnv) -> Result<Box<dyn DynConnector>> {
    Ok(Box::new(C::from_env(env)?))
}

/// A descriptor's `connect_schema` from the connect form's type:
/// `connect_schema: schema_of::<ConnectForm>`.
pub fn schema_of<T: schemars::JsonSchema>() -> schemars::Schema {
    schemars::schema_for!(T)
}

impl ConnectorDescriptor {
    /// Whether the connector's feature flag (if any) is on.
    pub fn is_enabled(&self, env: &ConnectorEnv) -> bool {
        self.feature_flag.is_none_or(|flag| env.flag(flag))
    }

    /// Whether every required environment variable is set.
    pub fn is_configured(&self, env: &ConnectorEnv) -> bool {
        self.env_vars
            .iter()
            .filter(|var| var.required)
            .all(|var| env.get(var.name).is_some())
    }

    /// Every environment variable the connector declares: its `env_vars`, its feature
    /// flag and its OAuth client id and secret variables. Connectors are built from
    /// these (plus [`crate::env::HTTP_CLIENT_VARIABLES`]) and nothing else.
    pub fn declared_variables(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = self.env_vars.iter().map(|var| var.name).collect();
        names.extend(self.feature_flag);
        if let Some(spec) = &self.oauth {
            names.extend(spec.client_id_env.iter().copied());
            names.extend(spec.client_secret_env.iter().copied());
            names.extend(spec.feature_flag);
        }
        names
    }

    /// The environment this connector is built from: its declared variables and
    /// the shared HTTP client settings, taken from `env`.
    pub fn environment(&self, env: &ConnectorEnv) -> ConnectorEnv {
        env.restricted_to(
            self.declared_variables()
                .into_iter()
                .chain(crate::env::HTTP_CLIENT_VARIABLES.iter().copied()),
        )
    }

    /// A serialisable view of the descriptor.
    pub fn document(&self) -> DescriptorDocument {
        DescriptorDocument {
            id: self.id,
            display_name: self.display_name,
            category: self.category,
            auth_kinds: self.auth_kinds.to_vec(),
            env_vars: self.env_vars.to_vec(),
            feature_flag: self.feature_flag,
            webhook: self.webhook,
            oauth: self.oauth,
            connect_schema: (self.connect_schema)(),
            operations: (self.operations)(),
        }
    }
}

impl std::fmt::Debug for ConnectorDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorDescriptor")
            .field("id", &self.id)
            .field("category", &self.category)
            .finish_non_exhaustive()
    }
}

/// The JSON shape of a descriptor, as `/api/connectors` and `connectors list --json` print it.
#[derive(Debug, Clone, Serialize)]
pub struct DescriptorDocument {
    /// Stable identifier.
    pub id: &'static str,
    /// Human name.
    pub display_name: &'static str,
    /// Family.
    pub category: Category,
    /// Ways to connect.
    pub auth_kinds: Vec<AuthKind>,
    /// Environment variables read.
    pub env_vars: Vec<EnvVar>,
    /// Feature flag, if any.
    pub feature_flag: Option<&'static str>,
    /// Webhook route, if any.
    pub webhook: Option<WebhookDescriptor>,
    /// OAuth provider, if any.
    pub oauth: Option<OAuthSpec>,
    /// Connect form schema.
    pub connect_schema: schemars::Schema,
    /// Query operations.
    pub operations: Vec<OperationDescriptor>,
}
