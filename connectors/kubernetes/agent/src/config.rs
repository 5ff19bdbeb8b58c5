//! The agent's settings, read from the environment the Helm chart sets.

use std::path::PathBuf;
use std::time::Duration;

use patchbay_core::SecretString;
use patchbay_kubectl_protocol::allowlist::{Allowlist, AllowlistError};
use patchbay_kubectl_protocol::{
    AGENT_PATH, DEFAULT_MAX_OUTPUT_BYTES, HEARTBEAT_INTERVAL, MAX_FRAME_BYTES, PING_INTERVAL,
    PING_TIMEOUT,
};

use crate::backoff::BackoffSettings;

/// The WebSocket endpoint; the first name is this project's, the second the guide's.
pub const WS_URL_VARS: [&str; 2] = ["PATCHBAY_WS_URL", "NEXT_PUBLIC_WEBSOCKET_URL"];
/// The agent token; the first name is this project's, the second the guide's.
pub const TOKEN_VARS: [&str; 2] = ["PATCHBAY_AGENT_TOKEN", "AURORA_AGENT_TOKEN"];
/// The service's base URL, used for the WebSocket endpoint when none is set.
pub const BACKEND_URL_VARS: [&str; 2] = ["PATCHBAY_BACKEND_URL", "AURORA_BACKEND_URL"];

/// The variables passed on to kubectl; everything else (the token included) is not.
pub const KUBECTL_ENV: [&str; 6] = [
    "PATH",
    "HOME",
    "KUBECONFIG",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
    "KUBERNETES_SERVICE_PORT_HTTPS",
];

/// Why the environment does not configure an agent; the message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset or empty.
    #[error("{variable} is not set: {hint}")]
    Missing {
        /// The variable (and its alternative name).
        variable: String,
        /// How to set it.
        hint: &'static str,
    },
    /// A variable holds a value the agent cannot use.
    #[error("{variable}={value:?} is invalid: {reason}")]
    Invalid {
        /// The variable.
        variable: &'static str,
        /// Its value (never a secret).
        value: String,
        /// What it should be.
        reason: String,
    },
    /// The allowlist variable names a verb that is not read-only.
    #[error("PATCHBAY_ALLOWLIST is invalid: {0}")]
    Allowlist(#[from] AllowlistError),
}

/// Everything the agent needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service's WebSocket endpoint (`wss://…/kubectl-agent`).
    pub ws_url: String,
    /// The agent token, sent as `Authorization: Bearer`.
    pub token: SecretString,
    /// The agent's version, reported in `register`.
    pub agent_version: String,
    /// The kubectl invocations the agent runs.
    pub allowlist: Allowlist,
    /// How many commands run at once before the agent answers `busy`.
    pub max_concurrency: usize,
    /// Where a command's output is cut.
    pub max_output_bytes: usize,
    /// Reconnect timing.
    pub backoff: BackoffSettings,
    /// The port of `/health` and `/ready`.
    pub health_port: u16,
    /// The kubectl binary.
    pub kubectl: PathBuf,
    /// The only environment kubectl gets: `PATH`, `HOME`, `KUBECONFIG` and the
    /// in-cluster API address, as the agent received them.
    pub kubectl_env: Vec<(String, String)>,
    /// How often the agent sends `heartbeat`.
    pub heartbeat_interval: Duration,
    /// How often the agent sends a WebSocket ping.
    pub ping_interval: Duration,
    /// How long a ping may wait for its pong.
    pub ping_timeout: Duration,
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup` (the environment, or a test's map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let first = |names: &[&str]| names.iter().find_map(|name| get(name));

        let token = first(&TOKEN_VARS).ok_or(ConfigError::Missing {
            variable: format!("{} (or {})", TOKEN_VARS[0], TOKEN_VARS[1]),
            hint:
                "set the agent token from Patchbay's Add Cluster (the chart's patchbay.agentToken)",
        })?;
        let ws_url = match first(&WS_URL_VARS) {
            Some(url) => url,
            None => match first(&BACKEND_URL_VARS) {
                Some(backend) => ws_url_from_backend(&backend)?,
                None => {
                    return Err(ConfigError::Missing {
                        variable: format!("{} (or {})", WS_URL_VARS[0], WS_URL_VARS[1]),
                        hint: "set the WebSocket endpoint, e.g. wss://patchbay.example.com/kubectl-agent (the chart's patchbay.wsEndpoint)",
                    })
                }
            },
        };
        if !(ws_url.starts_with("ws://") || ws_url.starts_with("wss://")) {
            return Err(ConfigError::Invalid {
                variable: WS_URL_VARS[0],
                value: ws_url,
                reason: "use a ws:// or wss:// URL".into(),
            });
        }
        let allowlist = match get("PATCHBAY_ALLOWLIST") {
            Some(list) => Allowlist::from_env_list(&list)?,
            None => Allowlist::default(),
        }
        .with_secrets(parse_bool("ALLOW_SECRETS", get("ALLOW_SECRETS"))?);
        let max_concurrency = parse_number(
            "PATCHBAY_MAX_CONCURRENCY",
            get("PATCHBAY_MAX_CONCURRENCY"),
            8,
        )?;
        if max_concurrency == 0 {
            return Err(ConfigError::Invalid {
                variable: "PATCHBAY_MAX_CONCURRENCY",
                value: "0".into(),
                reason: "run at least one command at a time".into(),
            });
        }
        let max_output_bytes = parse_number(
            "PATCHBAY_MAX_OUTPUT_BYTES",
            get("PATCHBAY_MAX_OUTPUT_BYTES"),
            DEFAULT_MAX_OUTPUT_BYTES,
        )?;
        if max_output_bytes == 0 || max_output_bytes > MAX_FRAME_BYTES / 4 {
            return Err(ConfigError::Invalid {
                variable: "PATCHBAY_MAX_OUTPUT_BYTES",
                value: max_output_bytes.to_string(),
                reason: format!(
                    "use 1 to {} bytes (a quarter of the frame limit)",
                    MAX_FRAME_BYTES / 4
                ),
            });
        }
        let backoff = BackoffSettings {
            initial: parse_seconds(
                "PATCHBAY_BACKOFF_INITIAL_SECONDS",
                get("PATCHBAY_BACKOFF_INITIAL_SECONDS"),
                Duration::from_secs(1),
            )?,
            max: parse_seconds(
                "PATCHBAY_BACKOFF_MAX_SECONDS",
                get("PATCHBAY_BACKOFF_MAX_SECONDS"),
                Duration::from_secs(60),
            )?,
            reset_after: parse_seconds(
                "PATCHBAY_BACKOFF_RESET_SECONDS",
                get("PATCHBAY_BACKOFF_RESET_SECONDS"),
                Duration::from_secs(60),
            )?,
        };
        Ok(Config {
            ws_url,
            token: SecretString::from(token),
            agent_version: get("AGENT_VERSION")
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
            allowlist,
            max_concurrency,
            max_output_bytes,
            backoff,
            health_port: parse_number("PATCHBAY_HEALTH_PORT", get("PATCHBAY_HEALTH_PORT"), 8080)?,
            kubectl: get("PATCHBAY_KUBECTL")
                .map_or_else(|| PathBuf::from("kubectl"), PathBuf::from),
            kubectl_env: KUBECTL_ENV
                .iter()
                .filter_map(|name| lookup(name).map(|value| ((*name).to_owned(), value)))
                .collect(),
            heartbeat_interval: parse_seconds(
                "PATCHBAY_HEARTBEAT_SECONDS",
                get("PATCHBAY_HEARTBEAT_SECONDS"),
                HEARTBEAT_INTERVAL,
            )?,
            ping_interval: parse_seconds(
                "PATCHBAY_PING_SECONDS",
                get("PATCHBAY_PING_SECONDS"),
                PING_INTERVAL,
            )?,
            ping_timeout: parse_seconds(
                "PATCHBAY_PING_TIMEOUT_SECONDS",
                get("PATCHBAY_PING_TIMEOUT_SECONDS"),
                PING_TIMEOUT,
            )?,
        })
    }
}

/// `https://host/base` → `wss://host/base/kubectl-agent`.
fn ws_url_from_backend(backend: &str) -> Result<String, ConfigError> {
    let base = backend.trim_end_matches('/');
    let ws = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        return Err(ConfigError::Invalid {
            variable: BACKEND_URL_VARS[0],
            value: backend.to_owned(),
            reason: "use an http:// or https:// URL".into(),
        });
    };
    Ok(format!("{ws}{AGENT_PATH}"))
}

fn parse_bool(variable: &'static str, value: Option<String>) -> Result<bool, ConfigError> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            variable,
            value: other.to_owned(),
            reason: "use true or false".into(),
        }),
    }
}

fn parse_number<T: std::str::FromStr>(
    variable: &'static str,
    value: Option<String>,
    default: T,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => text.parse().map_err(|_| ConfigError::Invalid {
            variable,
            value: text,
            reason: "use a whole number".into(),
        }),
    }
}

/// Seconds, fractions allowed (`0.2`), so tests can shorten the intervals.
fn parse_seconds(
    variable: &'static str,
    value: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => match text.parse::<f64>() {
            Ok(seconds) if seconds > 0.0 && seconds.is_finite() => {
                Ok(Duration::from_secs_f64(seconds))
            }
            _ => Err(ConfigError::Invalid {
                variable,
                value: text,
                reason: "use a positive number of seconds".into(),
            }),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn the_guide_names_and_defaults_work() {
        let config = config(&[
            (
                "NEXT_PUBLIC_WEBSOCKET_URL",
                "wss://patchbay.example.com/kubectl-agent",
            ),
            ("AURORA_AGENT_TOKEN", "pbk8s_secret"),
        ])
        .unwrap();
        assert_eq!(config.ws_url, "wss://patchbay.example.com/kubectl-agent");
        assert_eq!(config.token.expose(), "pbk8s_secret");
        assert_eq!(config.max_concurrency, 8);
        assert_eq!(config.max_output_bytes, 1024 * 1024);
        assert_eq!(config.health_port, 8080);
        assert_eq!(config.backoff.initial, Duration::from_secs(1));
        assert_eq!(config.backoff.max, Duration::from_secs(60));
        assert_eq!(config.heartbeat_interval, Duration::from_secs(60));
        assert_eq!(config.allowlist, Allowlist::default());
        assert!(
            !format!("{config:?}").contains("pbk8s_secret"),
            "the token is redacted"
        );
    }

    #[test]
    fn project_names_win_and_the_backend_url_gives_the_endpoint() {
        let config = config(&[
            ("PATCHBAY_AGENT_TOKEN", "pbk8s_new"),
            ("AURORA_AGENT_TOKEN", "old"),
            ("PATCHBAY_BACKEND_URL", "https://patchbay.example.com/"),
            ("PATCHBAY_ALLOWLIST", "get,logs"),
            ("ALLOW_SECRETS", "true"),
            ("PATCHBAY_PING_SECONDS", "0.5"),
        ])
        .unwrap();
        assert_eq!(config.token.expose(), "pbk8s_new");
        assert_eq!(config.ws_url, "wss://patchbay.example.com/kubectl-agent");
        assert_eq!(config.allowlist.verbs.len(), 2);
        assert!(config.allowlist.allow_secrets);
        assert_eq!(config.ping_interval, Duration::from_millis(500));
    }

    #[test]
    fn missing_and_invalid_values_name_the_variable() {
        let error = config(&[("PATCHBAY_WS_URL", "wss://x/kubectl-agent")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("PATCHBAY_AGENT_TOKEN (or AURORA_AGENT_TOKEN) is not set"),
            "{error}"
        );
        let error = config(&[("PATCHBAY_AGENT_TOKEN", "t")]).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("PATCHBAY_WS_URL (or NEXT_PUBLIC_WEBSOCKET_URL) is not set"),
            "{error}"
        );
        let error = config(&[
            ("PATCHBAY_AGENT_TOKEN", "t"),
            ("PATCHBAY_WS_URL", "https://x"),
        ])
        .unwrap_err();
        assert!(error.to_string().contains("ws:// or wss://"), "{error}");
        let base = [
            ("PATCHBAY_AGENT_TOKEN", "t"),
            ("PATCHBAY_WS_URL", "ws://x/kubectl-agent"),
        ];
        let with = |extra: (&'static str, &'static str)| {
            let mut pairs = base.to_vec();
            pairs.push(extra);
            config(&pairs).unwrap_err().to_string()
        };
        assert!(with(("PATCHBAY_ALLOWLIST", "get,delete")).contains("`delete`"));
        assert!(with(("PATCHBAY_MAX_CONCURRENCY", "many")).contains("PATCHBAY_MAX_CONCURRENCY"));
        assert!(
            with(("PATCHBAY_MAX_OUTPUT_BYTES", "99999999")).contains("PATCHBAY_MAX_OUTPUT_BYTES")
        );
        assert!(with(("ALLOW_SECRETS", "maybe")).contains("ALLOW_SECRETS"));
        assert!(
            with(("PATCHBAY_BACKOFF_MAX_SECONDS", "-1")).contains("PATCHBAY_BACKOFF_MAX_SECONDS")
        );
    }
}
