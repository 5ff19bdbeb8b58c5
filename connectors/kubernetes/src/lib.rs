//! The Kubernetes connector. A cluster is reached through the kubectl agent that
//! runs inside it and connects outbound to the host over a WebSocket
//! (`/kubectl-agent`), so Patchbay never needs the cluster's API address or a
//! kubeconfig.
//!
//! "Add Cluster" creates the connection; the host then issues the agent token
//! (shown once, stored as a hash) and the `values.yaml` ([`install`]). The host
//! attaches each authenticated agent socket to the [`client::Relay`] it hands this
//! connector through [`ConnectorEnv::extension`]; the operations ([`query`]) run
//! read-only kubectl commands through it, checked against the protocol's
//! allowlist here and again in the agent.
#![deny(missing_docs)]

pub mod auth;
pub mod client;
pub mod config;
pub mod install;
pub mod query;
pub mod redact;

use std::sync::Arc;

use async_trait::async_trait;
use patchbay_core::{
    build_from_env, schema_of, AuthKind, AuthRequest, Category, CheckTimer, Connector,
    ConnectorContext, ConnectorDescriptor, ConnectorEnv, Credentials, Error, ErrorKind, FromEnv,
    NoSecrets, QueryOutput, Result, ValidationCheck, ValidationReport,
};
use serde_json::Value;

pub use auth::ConnectForm;
use client::{AgentState, Relay};
pub use config::KubernetesConfig;
use query::{relay_error, Cluster};

/// The connector id used in routes, records and errors.
pub const CONNECTOR_ID: &str = "kubernetes";

/// What the registry knows about the Kubernetes connector.
pub static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: CONNECTOR_ID,
    display_name: "Kubernetes",
    category: Category::Orchestration,
    auth_kinds: &[AuthKind::AgentToken],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    oauth: None,
    connect_schema: schema_of::<ConnectForm>,
    operations: query::descriptors,
    build: build_from_env::<KubernetesConnector>,
};

patchbay_core::register_connector!(DESCRIPTOR);

/// The reads the operations need, each checked with `kubectl auth can-i` during
/// validation: (check id, verb, resource).
pub const NEEDED_READS: [(&str, &str, &str); 7] = [
    ("can_list_pods", "list", "pods"),
    ("can_get_pod_logs", "get", "pods/log"),
    ("can_list_events", "list", "events"),
    ("can_list_nodes", "list", "nodes"),
    ("can_list_namespaces", "list", "namespaces"),
    ("can_list_deployments", "list", "deployments.apps"),
    ("can_list_services", "list", "services"),
];

/// The Kubernetes connector; holds the host's agent relay, never credentials.
#[derive(Debug, Clone)]
pub struct KubernetesConnector {
    relay: Option<Arc<Relay>>,
}

impl KubernetesConnector {
    /// A connector that reaches clusters through `relay`.
    pub fn new(relay: Arc<Relay>) -> Self {
        Self { relay: Some(relay) }
    }

    fn relay(&self) -> Result<&Relay> {
        self.relay.as_deref().ok_or_else(|| {
            Error::unsupported("this host runs no kubectl agent relay, so it cannot reach clusters")
                .with_connector(CONNECTOR_ID)
                .with_hint("run the Patchbay host built with the connector-kubernetes feature")
        })
    }
}

impl FromEnv for KubernetesConnector {
    /// A connector over the relay the host put in `env`; without one (a registry
    /// built only to list connectors) every query explains that no relay runs.
    fn from_env(env: &ConnectorEnv) -> Result<Self> {
        Ok(Self {
            relay: env.extension::<Relay>(),
        })
    }
}

fn cluster_id(ctx: &ConnectorContext) -> Result<&str> {
    ctx.connection_id.as_deref().ok_or_else(|| {
        Error::internal("a cluster query needs its connection id").with_connector(CONNECTOR_ID)
    })
}

fn check(id: &str, description: &str, mandatory: bool, result: Result<String>) -> ValidationCheck {
    CheckTimer::start().finish(id, description, mandatory, result)
}

impl KubernetesConnector {
    /// The checks of a cluster whose agent should be connected.
    async fn validate_through_agent(
        &self,
        relay: &Relay,
        cluster_id: &str,
    ) -> Vec<ValidationCheck> {
        let mut checks = Vec::new();
        let status = relay.status(cluster_id);
        let connected = match status.state {
            AgentState::Connected => Ok(format!(
                "{} agent socket(s), last heartbeat {} s ago, agent {}",
                status.agents,
                status.heartbeat_age_seconds.unwrap_or(0),
                status.agent_version.as_deref().unwrap_or("of unknown version")
            )),
            AgentState::Stale => Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the agent sent no heartbeat for {} s",
                    status.heartbeat_age_seconds.unwrap_or(0)
                ),
            )
            .with_hint("check the agent pod: kubectl logs -n patchbay -l app=patchbay-kubectl-agent")),
            AgentState::Disconnected => Err(Error::new(
                ErrorKind::Unavailable,
                "no agent of this cluster is connected",
            )
            .with_hint(format!(
                "install the agent ({}) and check its pod: kubectl get pods -n patchbay -l app=patchbay-kubectl-agent",
                install::HELM_INSTALL
            ))),
        };
        let agent_up = connected.is_ok();
        checks.push(check(
            "agent_connected",
            "An agent of the cluster is connected and sent a heartbeat within 3 minutes",
            true,
            connected,
        ));
        let version_id = "kubectl_version";
        let version_description = "The agent runs `kubectl version` against the cluster's API";
        if !agent_up {
            checks.push(CheckTimer::skipped(version_id, version_description, true));
            for (id, verb, resource) in NEEDED_READS {
                checks.push(CheckTimer::skipped(
                    id,
                    &can_i_description(verb, resource),
                    false,
                ));
            }
            checks.push(CheckTimer::skipped(
                "secrets_not_readable",
                SECRETS_DESCRIPTION,
                false,
            ));
            checks.push(CheckTimer::skipped(
                "metrics_server",
                METRICS_DESCRIPTION,
                false,
            ));
            return checks;
        }
        let version = run(relay, cluster_id, query::argv::version()).await.and_then(|outcome| {
            let parsed: Value = serde_json::from_str(&outcome.output).unwrap_or(Value::Null);
            let server = parsed["serverVersion"]["gitVersion"].as_str();
            let client = parsed["clientVersion"]["gitVersion"].as_str();
            match (outcome.success, server) {
                (true, Some(server)) => Ok(format!(
                    "server {server}, kubectl {}",
                    client.unwrap_or("of unknown version")
                )),
                _ => Err(Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "kubectl could not reach the cluster's API (exit code {}): {}",
                        outcome.return_code,
                        redact::redact(outcome.error.as_deref().unwrap_or("no error text").trim())
                    ),
                )
                .with_hint("check the agent's ServiceAccount and the API server from inside the cluster")),
            }
        });
        let api_up = version.is_ok();
        checks.push(check(version_id, version_description, true, version));
        for (id, verb, resource) in NEEDED_READS {
            let description = can_i_description(verb, resource);
            if !api_up {
                checks.push(CheckTimer::skipped(id, &description, false));
                continue;
            }
            let result = can_i(relay, cluster_id, verb, resource).await.and_then(|allowed| {
                if allowed {
                    Ok(format!("the agent may {verb} {resource}"))
                } else {
                    Err(Error::new(
                        ErrorKind::PermissionDenied,
                        format!("the agent's ServiceAccount may not {verb} {resource}"),
                    )
                    .with_hint("install the chart with rbac.create=true, or grant the read in your own ClusterRole"))
                }
            });
            checks.push(check(id, &description, false, result));
        }
        if api_up {
            let secrets = can_i(relay, cluster_id, "get", "secrets").await.and_then(|allowed| {
                if allowed {
                    Err(Error::new(
                        ErrorKind::PermissionDenied,
                        "warning: the agent's ServiceAccount can read Secrets",
                    )
                    .with_hint("install the chart with rbac.allowSecrets=false unless you mean it; the agent still refuses Secrets unless ALLOW_SECRETS is set"))
                } else {
                    Ok("the agent cannot read Secrets".to_owned())
                }
            });
            checks.push(check(
                "secrets_not_readable",
                SECRETS_DESCRIPTION,
                false,
                secrets,
            ));
            let metrics = run(relay, cluster_id, vec!["top".into(), "nodes".into()])
                .await
                .and_then(|outcome| {
                    if outcome.success {
                        Ok("metrics-server answers; `top` works".to_owned())
                    } else {
                        Err(Error::new(
                            ErrorKind::Unavailable,
                            format!(
                                "metrics-server does not answer, so `top` will fail: {}",
                                redact::redact(outcome.error.as_deref().unwrap_or("").trim())
                            ),
                        )
                        .with_hint("install metrics-server in the cluster to use `top`"))
                    }
                });
            checks.push(check("metrics_server", METRICS_DESCRIPTION, false, metrics));
        } else {
            checks.push(CheckTimer::skipped(
                "secrets_not_readable",
                SECRETS_DESCRIPTION,
                false,
            ));
            checks.push(CheckTimer::skipped(
                "metrics_server",
                METRICS_DESCRIPTION,
                false,
            ));
        }
        checks
    }
}

const SECRETS_DESCRIPTION: &str =
    "The agent's ServiceAccount cannot read Secrets (`kubectl auth can-i get secrets -A`)";
const METRICS_DESCRIPTION: &str = "metrics-server answers `kubectl top nodes` (needed by `top`)";
/// How long each validation command may run.
const CHECK_TIMEOUT_SECS: u64 = 20;

fn can_i_description(verb: &str, resource: &str) -> String {
    format!("The agent may {verb} {resource} in every namespace (`kubectl auth can-i {verb} {resource} -A`)")
}

async fn run(relay: &Relay, cluster_id: &str, argv: Vec<String>) -> Result<client::CommandOutcome> {
    relay
        .run(cluster_id, argv, CHECK_TIMEOUT_SECS)
        .await
        .map_err(relay_error)
}

/// `kubectl auth can-i` prints `yes` (exit 0) or `no` (exit 1).
async fn can_i(relay: &Relay, cluster_id: &str, verb: &str, resource: &str) -> Result<bool> {
    let argv = vec![
        "auth".into(),
        "can-i".into(),
        verb.into(),
        resource.into(),
        "-A".into(),
    ];
    let outcome = run(relay, cluster_id, argv).await?;
    match (outcome.return_code, outcome.output.trim()) {
        (0, "yes") => Ok(true),
        (1, answer) if answer.starts_with("no") => Ok(false),
        (code, _) => Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "kubectl auth can-i failed with exit code {code}: {}",
                redact::redact(outcome.error.as_deref().unwrap_or("").trim())
            ),
        )),
    }
}

#[async_trait]
impl Connector for KubernetesConnector {
    type Config = KubernetesConfig;
    type Secrets = NoSecrets;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(
        &self,
        request: AuthRequest,
    ) -> Result<Credentials<KubernetesConfig, NoSecrets>> {
        match request {
            AuthRequest::Form(fields) => {
                let (config, secrets) = ConnectForm::from_fields(fields)
                    .map(ConnectForm::into_parts)
                    .map_err(|error| error.with_connector(CONNECTOR_ID))?;
                Ok(Credentials::new(config, secrets))
            }
            _ => Err(Error::unsupported(
                "a Kubernetes cluster is added with a form, not through OAuth",
            )
            .with_connector(CONNECTOR_ID)
            .with_hint("send cluster_name (and optionally notes, expires_days)")),
        }
    }

    /// At "Add Cluster" no agent can be connected yet (its token does not exist):
    /// the report says the cluster is registered. Afterwards every check goes
    /// through the agent: connected with a fresh heartbeat, `kubectl version`,
    /// one `auth can-i` per read the operations need, Secrets, metrics-server.
    async fn validate(
        &self,
        ctx: &ConnectorContext,
        credentials: &mut Credentials<KubernetesConfig, NoSecrets>,
    ) -> Result<ValidationReport> {
        let checks = match ctx.connection_id.as_deref() {
            None => vec![check(
                "cluster_registered",
                "The cluster is registered; its agent token is issued with it",
                true,
                Ok(format!(
                    "cluster `{}` registered; install the agent with the values.yaml shown once",
                    credentials.config.cluster_name
                )),
            )],
            Some(cluster_id) => self.validate_through_agent(self.relay()?, cluster_id).await,
        };
        Ok(ValidationReport::new(CONNECTOR_ID, checks))
    }

    async fn query(
        &self,
        ctx: &ConnectorContext,
        _credentials: &Credentials<KubernetesConfig, NoSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        let cluster = Cluster {
            relay: self.relay()?,
            cluster_id: cluster_id(ctx)?,
        };
        tracing::debug!(cluster = cluster.cluster_id, operation, "Kubernetes query");
        query::run(&cluster, ctx, operation, params).await
    }
}
