//! What a person runs to install the agent for a cluster: the `values.yaml`
//! (with the token, shown once) and the Helm commands.

use patchbay_core::SecretString;
use patchbay_kubectl_protocol::AGENT_PATH;
use serde::Serialize;

/// The Helm release, as the chart's README and the setup guide name it.
pub const RELEASE: &str = "patchbay-kubectl-agent";
/// The namespace the agent is installed in.
pub const NAMESPACE: &str = "patchbay";
/// The command that installs the agent with the `values.yaml` Patchbay shows.
pub const HELM_INSTALL: &str = "helm install patchbay-kubectl-agent ./connectors/kubernetes/chart -n patchbay --create-namespace -f values.yaml";
/// The command that gives an installed agent a new token (after a rotation).
pub const HELM_UPGRADE: &str =
    "helm upgrade patchbay-kubectl-agent ./connectors/kubernetes/chart -n patchbay -f values.yaml";
/// The command that removes the agent from the cluster.
pub const HELM_UNINSTALL: &str = "helm uninstall patchbay-kubectl-agent -n patchbay";
/// How to check the agent after installing it (the chart labels its pods so).
pub const VERIFY: &str =
    "kubectl get pods -n patchbay -l app=patchbay-kubectl-agent && kubectl logs -n patchbay -l app=patchbay-kubectl-agent --tail=50";

/// The WebSocket endpoint agents connect to, from the service's public URL:
/// `https://x` gives `wss://x/kubectl-agent`, `http://x` gives `ws://x/kubectl-agent`.
pub fn ws_endpoint(public_url: &str) -> String {
    let base = public_url.trim().trim_end_matches('/');
    let base = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    };
    format!("{base}{AGENT_PATH}")
}

/// A YAML double-quoted scalar.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `values.yaml` for the chart: the URL, the WebSocket endpoint and the
/// token under the chart's own `patchbay.*` keys and the guide's `aurora.*` keys.
/// It holds the token, so it is a secret.
pub fn values_yaml(public_url: &str, token: &SecretString) -> SecretString {
    let backend = quoted(public_url.trim().trim_end_matches('/'));
    let ws = quoted(&ws_endpoint(public_url));
    let token = quoted(token.expose());
    SecretString::new(format!(
        "# Patchbay kubectl agent: install with\n\
         #   {HELM_INSTALL}\n\
         # This file holds the agent token; keep it out of version control.\n\
         patchbay:\n  backendUrl: {backend}\n  wsEndpoint: {ws}\n  agentToken: {token}\n\
         \n\
         # The setup guide's names for the same settings.\n\
         aurora:\n  backendUrl: {backend}\n  wsEndpoint: {ws}\n  agentToken: {token}\n"
    ))
}

/// The steps shown with a new cluster (and, without the token, later).
#[derive(Debug, Clone, Serialize)]
pub struct InstallSteps {
    /// The service's URL.
    pub backend_url: String,
    /// The WebSocket endpoint the agent connects to.
    pub ws_endpoint: String,
    /// The install command.
    pub helm_install: &'static str,
    /// How to check the agent.
    pub verify: &'static str,
    /// The uninstall command.
    pub helm_uninstall: &'static str,
}

impl InstallSteps {
    /// The steps for a service reachable at `public_url`.
    pub fn new(public_url: &str) -> Self {
        Self {
            backend_url: public_url.trim().trim_end_matches('/').to_owned(),
            ws_endpoint: ws_endpoint(public_url),
            helm_install: HELM_INSTALL,
            verify: VERIFY,
            helm_uninstall: HELM_UNINSTALL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_follows_the_scheme() {
        assert_eq!(
            ws_endpoint("https://pb.example.com/"),
            "wss://pb.example.com/kubectl-agent"
        );
        assert_eq!(
            ws_endpoint("http://127.0.0.1:5080"),
            "ws://127.0.0.1:5080/kubectl-agent"
        );
    }

    #[test]
    fn values_carry_both_key_sets_and_parse_as_yaml() {
        let token = SecretString::new("pbk8s_abc-DEF_123".to_owned());
        let values = values_yaml("https://pb.example.com", &token);
        let parsed: serde_yaml::Value = serde_yaml::from_str(values.expose()).unwrap();
        for root in ["patchbay", "aurora"] {
            assert_eq!(parsed[root]["backendUrl"], "https://pb.example.com");
            assert_eq!(
                parsed[root]["wsEndpoint"],
                "wss://pb.example.com/kubectl-agent"
            );
            assert_eq!(parsed[root]["agentToken"], "pbk8s_abc-DEF_123");
        }
        assert!(!format!("{values:?}").contains("pbk8s_abc"));
        let odd = values_yaml("https://pb.example.com/\"x\\", &token);
        let parsed: serde_yaml::Value = serde_yaml::from_str(odd.expose()).unwrap();
        assert_eq!(
            parsed["patchbay"]["backendUrl"],
            "https://pb.example.com/\"x\\"
        );
    }
}
