//! The Helm chart (`connectors/kubernetes/chart`), linted and rendered by Helm's
//! own engine through `helm-python-sdk`. `cargo xtask test` installs it and sets
//! `PATCHBAY_TEST_HELM_PYTHON`; without it these tests fail naming the variable.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

struct Rendered {
    lint: Value,
    /// Every rendered object, as JSON.
    objects: Vec<Value>,
    render_error: Option<String>,
}

impl Rendered {
    fn one(&self, kind: &str) -> &Value {
        let found: Vec<&Value> = self.objects.iter().filter(|o| o["kind"] == kind).collect();
        assert_eq!(found.len(), 1, "one {kind} in {:#?}", self.objects);
        found[0]
    }

    fn has(&self, kind: &str) -> bool {
        self.objects.iter().any(|o| o["kind"] == kind)
    }

    fn container(&self) -> &Value {
        &self.one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    }

    fn env(&self, name: &str) -> Value {
        self.container()["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn render(values: Value) -> Rendered {
    let python_path = patchbay_testkit::services::helm_python();
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../chart");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render_chart.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&chart)
        .env("PYTHONPATH", &python_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3 with helm-python-sdk");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(values.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "render_chart.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut objects = Vec::new();
    if let Some(manifests) = result["manifests"].as_object() {
        for (path, text) in manifests {
            if !path.ends_with(".yaml") {
                continue;
            }
            for document in serde_yaml::Deserializer::from_str(text.as_str().unwrap()) {
                let value = <Value as serde::Deserialize>::deserialize(document)
                    .unwrap_or_else(|e| panic!("{path} is not YAML: {e}"));
                if !value.is_null() {
                    objects.push(value);
                }
            }
        }
    }
    Rendered {
        lint: result["lint"].clone(),
        objects,
        render_error: result["render_error"].as_str().map(str::to_owned),
    }
}

const TOKEN: &str = "pbk8s_chart-test-token-canary";

/// What Patchbay's Add Cluster hands out, in the guide's shape (aurora.* and agent.image).
fn guide_values() -> Value {
    json!({
        "aurora": {
            "backendUrl": "https://patchbay.example.com",
            "wsEndpoint": "wss://patchbay.example.com/kubectl-agent",
            "agentToken": TOKEN
        },
        "agent": {"image": {"repository": "your-registry/patchbay-kubectl-agent", "tag": "1.0.3"}}
    })
}

fn lint_errors(rendered: &Rendered) -> Vec<Value> {
    rendered.lint["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["severity"].as_i64() == Some(3))
        .cloned()
        .chain(
            rendered.lint["errors"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        )
        .collect()
}

#[test]
fn needs_helm_default_values_refuse_to_render_without_a_token() {
    let rendered = render(json!({}));
    let error = rendered
        .render_error
        .clone()
        .expect("no token, no manifests");
    assert!(
        error.contains("set patchbay.agentToken (or aurora.agentToken)"),
        "{error}"
    );
    // `helm lint` renders with `fail` downgraded to a message, so the chart
    // itself lints clean; only an install without a token stops.
    assert_eq!(
        lint_errors(&rendered),
        Vec::<Value>::new(),
        "{:#}",
        rendered.lint
    );
}

#[test]
fn needs_helm_the_guide_values_lint_and_render_a_read_only_agent() {
    let rendered = render(guide_values());
    assert_eq!(rendered.render_error, None);
    assert_eq!(
        lint_errors(&rendered),
        Vec::<Value>::new(),
        "{:#}",
        rendered.lint
    );

    // The token lives in the Secret <fullname>-config, referenced from the pod.
    let secret = rendered.one("Secret");
    assert_eq!(secret["metadata"]["name"], "patchbay-kubectl-agent-config");
    assert!(secret["data"]["PATCHBAY_AGENT_TOKEN"].is_string());
    assert_eq!(
        rendered.env("PATCHBAY_AGENT_TOKEN")["valueFrom"]["secretKeyRef"],
        json!({"name": "patchbay-kubectl-agent-config", "key": "PATCHBAY_AGENT_TOKEN"})
    );
    let deployment = rendered.one("Deployment");
    assert!(
        !deployment.to_string().contains(TOKEN),
        "the token is not in the pod spec"
    );

    // The guide's keys reach the agent.
    assert_eq!(
        rendered.env("PATCHBAY_WS_URL")["value"],
        "wss://patchbay.example.com/kubectl-agent"
    );
    assert_eq!(
        rendered.env("PATCHBAY_BACKEND_URL")["value"],
        "https://patchbay.example.com"
    );
    assert_eq!(
        rendered.container()["image"],
        "your-registry/patchbay-kubectl-agent:1.0.3"
    );

    // The guide's verify command selects the pods by `app`.
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["app"],
        "patchbay-kubectl-agent"
    );
    assert_eq!(
        deployment["spec"]["selector"]["matchLabels"]["app"],
        "patchbay-kubectl-agent"
    );

    // Probes on the agent's endpoints.
    let container = rendered.container();
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/health", "port": "http"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/ready", "port": "http"})
    );
    assert_eq!(container["ports"][0]["containerPort"], 8080);

    // Locked-down pod.
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], 1000);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    let pod_security = &deployment["spec"]["template"]["spec"]["securityContext"];
    assert_eq!(pod_security["runAsUser"], 1000);
    assert_eq!(pod_security["seccompProfile"]["type"], "RuntimeDefault");
    assert!(container["resources"]["limits"]["memory"].is_string());

    // A read-only ClusterRole without Secrets, bound to the agent's ServiceAccount.
    let role = rendered.one("ClusterRole");
    let rules = role["rules"].as_array().unwrap();
    for rule in rules {
        for verb in rule["verbs"].as_array().unwrap() {
            assert!(
                ["get", "list", "watch"].contains(&verb.as_str().unwrap()),
                "{rule}"
            );
        }
        assert!(
            !rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "secrets"),
            "no secrets by default: {rule}"
        );
    }
    assert!(rules
        .iter()
        .any(|r| r["apiGroups"] == json!(["metrics.k8s.io"])));
    assert_eq!(rendered.env("ALLOW_SECRETS")["value"], "false");
    let binding = rendered.one("ClusterRoleBinding");
    assert_eq!(binding["subjects"][0]["namespace"], "patchbay");
    assert_eq!(
        binding["subjects"][0]["name"],
        rendered.one("ServiceAccount")["metadata"]["name"]
    );
}

#[test]
fn needs_helm_patchbay_names_win_and_values_reach_the_agent() {
    let mut values = guide_values();
    values["patchbay"] = json!({
        "wsEndpoint": "wss://new.example.com/kubectl-agent",
        "agentToken": "pbk8s_newer"
    });
    values["agent"]["allowlist"] = json!("get,logs");
    values["agent"]["maxConcurrency"] = json!(4);
    values["agent"]["maxOutputBytes"] = json!(2_097_152);
    values["network"] = json!({"backoffInitialSeconds": 2, "backoffMaxSeconds": 30, "backoffResetSeconds": 90,
                               "pingIntervalSeconds": 15, "pingTimeoutSeconds": 5, "heartbeatSeconds": 45});
    values["replicaCount"] = json!(2);
    let rendered = render(values);
    assert_eq!(rendered.render_error, None);
    assert_eq!(
        rendered.env("PATCHBAY_WS_URL")["value"],
        "wss://new.example.com/kubectl-agent"
    );
    let secret = &rendered.one("Secret")["data"]["PATCHBAY_AGENT_TOKEN"];
    assert_eq!(secret, "cGJrOHNfbmV3ZXI=", "base64 of pbk8s_newer");
    for (name, value) in [
        ("PATCHBAY_ALLOWLIST", "get,logs"),
        ("PATCHBAY_MAX_CONCURRENCY", "4"),
        ("PATCHBAY_MAX_OUTPUT_BYTES", "2097152"),
        ("PATCHBAY_BACKOFF_INITIAL_SECONDS", "2"),
        ("PATCHBAY_BACKOFF_MAX_SECONDS", "30"),
        ("PATCHBAY_BACKOFF_RESET_SECONDS", "90"),
        ("PATCHBAY_PING_SECONDS", "15"),
        ("PATCHBAY_PING_TIMEOUT_SECONDS", "5"),
        ("PATCHBAY_HEARTBEAT_SECONDS", "45"),
        ("PATCHBAY_HEALTH_PORT", "8080"),
    ] {
        assert_eq!(rendered.env(name)["value"], value, "{name}");
    }
    assert_eq!(rendered.one("Deployment")["spec"]["replicas"], 2);
}

#[test]
fn needs_helm_allow_secrets_adds_the_rule_and_tells_the_agent() {
    let mut values = guide_values();
    values["rbac"] = json!({"allowSecrets": true});
    let rendered = render(values);
    let rules = rendered.one("ClusterRole")["rules"]
        .as_array()
        .unwrap()
        .clone();
    let secrets = rules
        .iter()
        .find(|r| r["resources"] == json!(["secrets"]))
        .expect("a secrets rule");
    assert_eq!(secrets["verbs"], json!(["get", "list", "watch"]));
    assert_eq!(rendered.env("ALLOW_SECRETS")["value"], "true");
}

#[test]
fn needs_helm_an_existing_secret_replaces_the_charts_own() {
    let values = json!({
        "patchbay": {"wsEndpoint": "wss://patchbay.example.com/kubectl-agent"},
        "existingSecret": "agent-token"
    });
    let rendered = render(values);
    assert_eq!(rendered.render_error, None);
    assert!(!rendered.has("Secret"));
    assert_eq!(
        rendered.env("PATCHBAY_AGENT_TOKEN")["valueFrom"]["secretKeyRef"]["name"],
        "agent-token"
    );
    let rendered = render(json!({"patchbay": {"agentToken": TOKEN}}));
    let error = rendered.render_error.expect("no endpoint, no manifests");
    assert!(error.contains("set patchbay.wsEndpoint"), "{error}");
}
