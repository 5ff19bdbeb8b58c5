//! The read-only operations, declared once with [`patchbay_core::operations!`].
//! Each turns typed parameters into a kubectl argv (no shell, no whitespace
//! splitting), which the relay checks against the protocol's allowlist before an
//! agent of the cluster runs it.

use patchbay_core::{Error, ErrorKind, OperationOutput, Result};
use patchbay_kubectl_protocol::{shell_join, MAX_TIMEOUT_SECS, TIMEOUT_RETURN_CODE};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;

use crate::client::{Relay, RelayError};
use crate::redact::redact;
use crate::CONNECTOR_ID;

/// The lines `logs` returns when the caller gives no `tail`.
pub const DEFAULT_TAIL: u32 = 200;
/// The most lines `logs` returns.
pub const MAX_TAIL: u32 = 10_000;

patchbay_core::operations! {
    connector: CONNECTOR_ID,
    handler: Cluster<'_>,
    /// List resources of a kind (`kubectl get`), optionally one by name, in a
    /// namespace or all of them, filtered by label or field selectors.
    read get(GetParams);
    /// Describe resources (`kubectl describe`): their state and recent events.
    read describe(DescribeParams);
    /// A pod's logs (`kubectl logs`), the last `tail` lines (default 200).
    read logs(LogsParams);
    /// Events, newest last (`kubectl get events --sort-by=.lastTimestamp`).
    read list_events(ListEventsParams);
    /// CPU and memory of nodes or pods (`kubectl top`); needs metrics-server.
    read top(TopParams);
    /// The resource kinds the cluster serves (`kubectl api-resources`).
    read api_resources(ApiResourcesParams);
    /// The documentation of a resource or field (`kubectl explain`).
    read explain(ExplainParams);
    /// The client and server versions (`kubectl version -o json`).
    read version(VersionParams);
    /// Whether the agent's service account may do something (`kubectl auth can-i`).
    read auth_can_i(AuthCanIParams);
}

/// One cluster's agents, for one query.
pub struct Cluster<'a> {
    /// The relay the cluster's agents are attached to.
    pub relay: &'a Relay,
    /// The cluster's id (the connection id).
    pub cluster_id: &'a str,
}

/// Where a namespaced read looks.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// The namespace (the agent's default namespace when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Every namespace (`-A`); not with `namespace`.
    #[serde(default)]
    pub all_namespaces: bool,
}

/// Parameters of `get`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// The resource kind, e.g. `pods`, `deployments.apps`, `nodes`.
    pub resource: String,
    /// One resource by name.
    #[serde(default)]
    pub name: Option<String>,
    /// The namespace (the agent's default when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Every namespace (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
    /// A label selector, e.g. `app=web`.
    #[serde(default)]
    pub selector: Option<String>,
    /// A field selector, e.g. `status.phase=Running`.
    #[serde(default)]
    pub field_selector: Option<String>,
    /// The output format (default: kubectl's table).
    #[serde(default)]
    pub output: Option<OutputFormat>,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// kubectl's `-o` formats that print only what the API returned.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The table with more columns.
    Wide,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
    /// `kind/name` per line.
    Name,
}

impl OutputFormat {
    fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Wide => "wide",
            OutputFormat::Yaml => "yaml",
            OutputFormat::Json => "json",
            OutputFormat::Name => "name",
        }
    }
}

/// Parameters of `describe`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeParams {
    /// The resource kind, e.g. `pod`, `deployment`, `node`.
    pub resource: String,
    /// One resource by name (every one of the kind when absent).
    #[serde(default)]
    pub name: Option<String>,
    /// The namespace (the agent's default when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Every namespace (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
    /// A label selector, e.g. `app=web`.
    #[serde(default)]
    pub selector: Option<String>,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// Parameters of `logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsParams {
    /// The pod.
    pub pod: String,
    /// The pod's namespace (the agent's default when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// The container (needed when the pod has several).
    #[serde(default)]
    pub container: Option<String>,
    /// How many of the last lines (1 to 10000, default 200).
    #[serde(default)]
    #[schemars(range(min = 1, max = 10000))]
    pub tail: Option<u32>,
    /// Only lines newer than this many seconds.
    #[serde(default)]
    pub since_seconds: Option<u64>,
    /// The previous container instance's logs (after a restart).
    #[serde(default)]
    pub previous: bool,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// Parameters of `list_events`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListEventsParams {
    /// The namespace (the agent's default when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Every namespace (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
    /// A field selector, e.g. `involvedObject.name=web-1` or `type=Warning`.
    #[serde(default)]
    pub field_selector: Option<String>,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// What `top` measures.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TopKind {
    /// Nodes.
    Nodes,
    /// Pods.
    Pods,
}

/// Parameters of `top`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopParams {
    /// `nodes` or `pods`.
    pub kind: TopKind,
    /// The pods' namespace (pods only; the agent's default when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Pods of every namespace (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
    /// A label selector.
    #[serde(default)]
    pub selector: Option<String>,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// Parameters of `api_resources`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiResourcesParams {
    /// Only this API group, e.g. `apps` (the empty string for the core group).
    #[serde(default)]
    pub api_group: Option<String>,
    /// Only namespaced (`true`) or cluster-wide (`false`) kinds.
    #[serde(default)]
    pub namespaced: Option<bool>,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// Parameters of `explain`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExplainParams {
    /// The resource or field path, e.g. `pods` or `pods.spec.containers`.
    pub resource: String,
    /// Every field below it, recursively.
    #[serde(default)]
    pub recursive: bool,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// Parameters of `version`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionParams {
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// Parameters of `auth_can_i`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthCanIParams {
    /// The verb, e.g. `get`, `list`, `watch`.
    pub verb: String,
    /// The resource, e.g. `pods`, `pods/log`, `deployments.apps`.
    pub resource: String,
    /// The namespace (the agent's default when absent).
    #[serde(default)]
    pub namespace: Option<String>,
    /// In every namespace (`-A`).
    #[serde(default)]
    pub all_namespaces: bool,
    /// Seconds before the command is stopped (1 to 300, default 60).
    #[serde(default)]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: Option<u64>,
}

/// Checks one value that becomes its own argument: not empty, no whitespace or
/// control characters, and not starting with `-` (it would read as a flag).
fn word(field: &str, value: &str) -> Result<String> {
    if value.is_empty()
        || value.starts_with('-')
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid_input(
            field,
            format!("`{field}` must be one word that does not start with `-`"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("pass names as Kubernetes spells them, e.g. web-7d4b9c-abcde"));
    }
    Ok(value.to_owned())
}

/// Like [`word`] for selectors, which may hold spaces after commas (`a=b, c=d`).
fn selector(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() || value.starts_with('-') || value.chars().any(char::is_control) {
        return Err(Error::invalid_input(
            field,
            format!("`{field}` must be a selector such as app=web"),
        )
        .with_connector(CONNECTOR_ID));
    }
    Ok(value.to_owned())
}

fn timeout(seconds: Option<u64>) -> Result<u64> {
    match seconds {
        None => Ok(0),
        Some(seconds) if (1..=MAX_TIMEOUT_SECS).contains(&seconds) => Ok(seconds),
        Some(_) => Err(Error::invalid_input(
            "timeout_seconds",
            format!("timeout_seconds must be from 1 to {MAX_TIMEOUT_SECS}"),
        )
        .with_connector(CONNECTOR_ID)),
    }
}

fn scope(argv: &mut Vec<String>, namespace: Option<&str>, all: bool) -> Result<()> {
    match (namespace, all) {
        (Some(_), true) => Err(Error::invalid_input(
            "all_namespaces",
            "give either `namespace` or `all_namespaces`, not both",
        )
        .with_connector(CONNECTOR_ID)),
        (Some(namespace), false) => {
            argv.push("-n".into());
            argv.push(word("namespace", namespace)?);
            Ok(())
        }
        (None, true) => {
            argv.push("-A".into());
            Ok(())
        }
        (None, false) => Ok(()),
    }
}

fn push_selectors(
    argv: &mut Vec<String>,
    labels: Option<&str>,
    fields: Option<&str>,
) -> Result<()> {
    if let Some(labels) = labels {
        argv.push("-l".into());
        argv.push(selector("selector", labels)?);
    }
    if let Some(fields) = fields {
        argv.push("--field-selector".into());
        argv.push(selector("field_selector", fields)?);
    }
    Ok(())
}

/// The kubectl argv of each operation.
pub mod argv {
    use super::*;

    /// `get`.
    pub fn get(p: &GetParams) -> Result<Vec<String>> {
        let mut argv = vec!["get".to_owned(), word("resource", &p.resource)?];
        if let Some(name) = &p.name {
            argv.push(word("name", name)?);
        }
        scope(&mut argv, p.namespace.as_deref(), p.all_namespaces)?;
        push_selectors(
            &mut argv,
            p.selector.as_deref(),
            p.field_selector.as_deref(),
        )?;
        if let Some(output) = p.output {
            argv.push("-o".into());
            argv.push(output.as_str().into());
        }
        Ok(argv)
    }

    /// `describe`.
    pub fn describe(p: &DescribeParams) -> Result<Vec<String>> {
        let mut argv = vec!["describe".to_owned(), word("resource", &p.resource)?];
        if let Some(name) = &p.name {
            argv.push(word("name", name)?);
        }
        scope(&mut argv, p.namespace.as_deref(), p.all_namespaces)?;
        push_selectors(&mut argv, p.selector.as_deref(), None)?;
        Ok(argv)
    }

    /// `logs`.
    pub fn logs(p: &LogsParams) -> Result<Vec<String>> {
        let mut argv = vec!["logs".to_owned(), word("pod", &p.pod)?];
        scope(&mut argv, p.namespace.as_deref(), false)?;
        if let Some(container) = &p.container {
            argv.push("-c".into());
            argv.push(word("container", container)?);
        }
        let tail = p.tail.unwrap_or(DEFAULT_TAIL);
        if !(1..=MAX_TAIL).contains(&tail) {
            return Err(
                Error::invalid_input("tail", format!("tail must be from 1 to {MAX_TAIL}"))
                    .with_connector(CONNECTOR_ID),
            );
        }
        argv.push(format!("--tail={tail}"));
        if let Some(since) = p.since_seconds {
            argv.push(format!("--since={since}s"));
        }
        if p.previous {
            argv.push("--previous".into());
        }
        Ok(argv)
    }

    /// `list_events`.
    pub fn list_events(p: &ListEventsParams) -> Result<Vec<String>> {
        let mut argv = vec!["get".to_owned(), "events".to_owned()];
        scope(&mut argv, p.namespace.as_deref(), p.all_namespaces)?;
        push_selectors(&mut argv, None, p.field_selector.as_deref())?;
        argv.push("--sort-by=.lastTimestamp".into());
        Ok(argv)
    }

    /// `top`.
    pub fn top(p: &TopParams) -> Result<Vec<String>> {
        let mut argv = vec!["top".to_owned()];
        match p.kind {
            TopKind::Nodes => {
                if p.namespace.is_some() || p.all_namespaces {
                    return Err(Error::invalid_input(
                        "namespace",
                        "nodes have no namespace; leave `namespace` and `all_namespaces` out",
                    )
                    .with_connector(CONNECTOR_ID));
                }
                argv.push("nodes".into());
            }
            TopKind::Pods => {
                argv.push("pods".into());
                scope(&mut argv, p.namespace.as_deref(), p.all_namespaces)?;
            }
        }
        push_selectors(&mut argv, p.selector.as_deref(), None)?;
        Ok(argv)
    }

    /// `api_resources`.
    pub fn api_resources(p: &ApiResourcesParams) -> Result<Vec<String>> {
        let mut argv = vec!["api-resources".to_owned()];
        if let Some(group) = &p.api_group {
            if !group.is_empty() {
                word("api_group", group)?;
            }
            argv.push(format!("--api-group={group}"));
        }
        if let Some(namespaced) = p.namespaced {
            argv.push(format!("--namespaced={namespaced}"));
        }
        Ok(argv)
    }

    /// `explain`.
    pub fn explain(p: &ExplainParams) -> Result<Vec<String>> {
        let mut argv = vec!["explain".to_owned(), word("resource", &p.resource)?];
        if p.recursive {
            argv.push("--recursive".into());
        }
        Ok(argv)
    }

    /// `version`.
    pub fn version() -> Vec<String> {
        vec!["version".into(), "-o".into(), "json".into()]
    }

    /// `auth_can_i`.
    pub fn auth_can_i(p: &AuthCanIParams) -> Result<Vec<String>> {
        let mut argv = vec![
            "auth".to_owned(),
            "can-i".to_owned(),
            word("verb", &p.verb)?,
            word("resource", &p.resource)?,
        ];
        scope(&mut argv, p.namespace.as_deref(), p.all_namespaces)?;
        Ok(argv)
    }
}

/// The error a relay failure means for a caller.
pub fn relay_error(error: RelayError) -> Error {
    let (kind, hint) = match &error {
        RelayError::NotConnected => (
            ErrorKind::Unavailable,
            "install the agent with the values.yaml from Add Cluster, then check its pod: kubectl logs -n patchbay -l app=patchbay-kubectl-agent",
        ),
        RelayError::RefusedByService(_) => (
            ErrorKind::PermissionDenied,
            "only read-only kubectl verbs run; Secrets and identity flags are refused",
        ),
        RelayError::RefusedByAgent { code, .. }
            if *code == patchbay_kubectl_protocol::ErrorCode::Busy =>
        {
            (
                ErrorKind::RateLimited,
                "the agent runs as many commands as it may; retry shortly or raise agent.maxConcurrency",
            )
        }
        RelayError::RefusedByAgent { .. } => (
            ErrorKind::PermissionDenied,
            "the agent's own allowlist (agent.allowlist, rbac.allowSecrets in the chart) refused it",
        ),
        RelayError::Timeout(_) => (
            ErrorKind::Unavailable,
            "raise timeout_seconds (at most 300) or narrow the query",
        ),
        RelayError::Lost(_) => (
            ErrorKind::Unavailable,
            "the agent reconnects on its own; retry once it shows as connected",
        ),
    };
    Error::new(kind, redact(&error.to_string()))
        .with_connector(CONNECTOR_ID)
        .with_hint(hint)
}

impl Cluster<'_> {
    /// Runs `argv` and shapes the answer; a non-zero exit is an error carrying
    /// kubectl's own message, except where `answers_no` allows exit code 1.
    async fn kubectl(
        &self,
        argv: Vec<String>,
        timeout_seconds: Option<u64>,
        answers_no: bool,
    ) -> Result<OperationOutput> {
        let timeout = timeout(timeout_seconds)?;
        let command = format!("kubectl {}", shell_join(&argv));
        let outcome = self
            .relay
            .run(self.cluster_id, argv, timeout)
            .await
            .map_err(relay_error)?;
        let output = redact(&outcome.output);
        let stderr = outcome.error.as_deref().map(redact);
        let answered_no = answers_no && outcome.return_code == 1;
        if !outcome.success && !answered_no {
            let message = stderr
                .as_deref()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .unwrap_or("kubectl printed no error");
            let kind = if outcome.return_code == TIMEOUT_RETURN_CODE {
                ErrorKind::Unavailable
            } else if message.contains("NotFound") || message.contains("not found") {
                ErrorKind::NotFound
            } else if message.contains("Forbidden") || message.contains("forbidden") {
                ErrorKind::PermissionDenied
            } else {
                ErrorKind::InvalidInput
            };
            return Err(Error::new(
                kind,
                format!(
                    "{command} failed with exit code {}: {message}",
                    outcome.return_code
                ),
            )
            .with_connector(CONNECTOR_ID));
        }
        Ok(OperationOutput::new(json!({
            "command": command,
            "output": output,
            "return_code": outcome.return_code,
            "agent_truncated": outcome.truncated,
            "duration_ms": outcome.duration_ms,
            "duration_us": outcome.duration_us,
        }))
        .truncated(outcome.truncated))
    }

    async fn get(&self, p: GetParams) -> Result<OperationOutput> {
        self.kubectl(argv::get(&p)?, p.timeout_seconds, false).await
    }

    async fn describe(&self, p: DescribeParams) -> Result<OperationOutput> {
        self.kubectl(argv::describe(&p)?, p.timeout_seconds, false)
            .await
    }

    async fn logs(&self, p: LogsParams) -> Result<OperationOutput> {
        self.kubectl(argv::logs(&p)?, p.timeout_seconds, false)
            .await
    }

    async fn list_events(&self, p: ListEventsParams) -> Result<OperationOutput> {
        self.kubectl(argv::list_events(&p)?, p.timeout_seconds, false)
            .await
    }

    async fn top(&self, p: TopParams) -> Result<OperationOutput> {
        self.kubectl(argv::top(&p)?, p.timeout_seconds, false).await
    }

    async fn api_resources(&self, p: ApiResourcesParams) -> Result<OperationOutput> {
        self.kubectl(argv::api_resources(&p)?, p.timeout_seconds, false)
            .await
    }

    async fn explain(&self, p: ExplainParams) -> Result<OperationOutput> {
        self.kubectl(argv::explain(&p)?, p.timeout_seconds, false)
            .await
    }

    async fn version(&self, p: VersionParams) -> Result<OperationOutput> {
        self.kubectl(argv::version(), p.timeout_seconds, false)
            .await
    }

    async fn auth_can_i(&self, p: AuthCanIParams) -> Result<OperationOutput> {
        self.kubectl(argv::auth_can_i(&p)?, p.timeout_seconds, true)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_kubectl_protocol::allowlist::Allowlist;

    fn get(json: serde_json::Value) -> Result<Vec<String>> {
        argv::get(&serde_json::from_value(json).unwrap())
    }

    #[test]
    fn parameters_become_one_argument_each() {
        let argv = get(json!({"resource": "pods", "namespace": "payments", "selector": "app=api, tier in (a,b)", "output": "wide"})).unwrap();
        assert_eq!(
            argv,
            [
                "get",
                "pods",
                "-n",
                "payments",
                "-l",
                "app=api, tier in (a,b)",
                "-o",
                "wide"
            ]
        );
        let logs: LogsParams =
            serde_json::from_value(json!({"pod": "web-1", "container": "app", "previous": true}))
                .unwrap();
        assert_eq!(
            argv::logs(&logs).unwrap(),
            ["logs", "web-1", "-c", "app", "--tail=200", "--previous"]
        );
        let can_i: AuthCanIParams = serde_json::from_value(
            json!({"verb": "list", "resource": "pods", "all_namespaces": true}),
        )
        .unwrap();
        assert_eq!(
            argv::auth_can_i(&can_i).unwrap(),
            ["auth", "can-i", "list", "pods", "-A"]
        );
    }

    #[test]
    fn values_that_would_read_as_flags_or_split_are_refused_by_field() {
        for (params, field) in [
            (json!({"resource": "--kubeconfig=/etc/x"}), "resource"),
            (json!({"resource": "pods", "name": "a b"}), "name"),
            (json!({"resource": "pods", "namespace": "-A"}), "namespace"),
            (
                json!({"resource": "pods", "namespace": "x", "all_namespaces": true}),
                "all_namespaces",
            ),
            (json!({"resource": "pods", "selector": "--raw"}), "selector"),
        ] {
            let error = get(params.clone()).unwrap_err();
            assert_eq!(error.field(), Some(field), "{params}");
            assert_eq!(error.kind(), ErrorKind::InvalidInput);
        }
        assert_eq!(
            timeout(Some(301)).unwrap_err().field(),
            Some("timeout_seconds")
        );
        assert_eq!(
            timeout(Some(0)).unwrap_err().field(),
            Some("timeout_seconds")
        );
    }

    #[test]
    fn every_operation_builds_what_the_allowlist_accepts() {
        let allowlist = Allowlist::default();
        let argvs = [
            get(json!({"resource": "pods", "all_namespaces": true})).unwrap(),
            argv::describe(
                &serde_json::from_value(json!({"resource": "pod", "name": "x"})).unwrap(),
            )
            .unwrap(),
            argv::logs(&serde_json::from_value(json!({"pod": "x", "since_seconds": 60})).unwrap())
                .unwrap(),
            argv::list_events(&serde_json::from_value(json!({"all_namespaces": true})).unwrap())
                .unwrap(),
            argv::top(&serde_json::from_value(json!({"kind": "pods", "namespace": "a"})).unwrap())
                .unwrap(),
            argv::api_resources(
                &serde_json::from_value(json!({"api_group": "apps", "namespaced": true})).unwrap(),
            )
            .unwrap(),
            argv::explain(
                &serde_json::from_value(json!({"resource": "pods.spec", "recursive": true}))
                    .unwrap(),
            )
            .unwrap(),
            argv::version(),
            argv::auth_can_i(
                &serde_json::from_value(json!({"verb": "get", "resource": "pods/log"})).unwrap(),
            )
            .unwrap(),
        ];
        for argv in argvs {
            allowlist
                .check(&argv)
                .unwrap_or_else(|refusal| panic!("{argv:?}: {refusal}"));
        }
        let secrets = get(json!({"resource": "secrets"})).unwrap();
        assert!(
            allowlist.check(&secrets).is_err(),
            "Secrets pass the word check but not the allowlist"
        );
    }
}
