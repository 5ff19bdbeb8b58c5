//! Host configuration, read from the environment (and `.env`) with the guide's names.

use std::net::SocketAddr;
use std::path::PathBuf;

use patchbay_core::{ConnectorEnv, SecretString};

/// The default listen address: the guide's port on every interface.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:5080";
/// The default public base URL, used to build webhook and callback URLs.
pub const DEFAULT_PUBLIC_URL: &str = "http://localhost:5080";
/// The default data directory for the embedded stores.
pub const DEFAULT_DATA_DIR: &str = ".patchbay";
/// The largest webhook body accepted.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Everything the host needs to start, validated.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Where to listen (`PATCHBAY_LISTEN`).
    pub listen: SocketAddr,
    /// A separate address for `/metrics` (`PATCHBAY_METRICS_LISTEN`); unset, the
    /// metrics are served on [`HostConfig::listen`] with the API.
    pub metrics_listen: Option<SocketAddr>,
    /// The base URL people and providers reach us at (`PATCHBAY_PUBLIC_URL`).
    pub public_url: String,
    /// Where embedded stores keep their files (`PATCHBAY_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The records database (`DATABASE_URL`); defaults to SQLite in the data directory.
    pub database_url: String,
    /// Which secret store to use (`PATCHBAY_SECRETS`: `local` or `vault`).
    pub secrets_backend: SecretsBackend,
    /// The master key for the local secret store (`PATCHBAY_MASTER_KEY`).
    pub master_key: Option<SecretString>,
    /// The shared secret that makes `X-User-ID`/`X-Org-ID` trusted (`INTERNAL_API_SECRET`).
    pub internal_secret: Option<SecretString>,
    /// Log output format (`PATCHBAY_LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// Largest batch of alerts written in one transaction.
    pub ingest_batch: usize,
    /// How long webhook intake keeps a connection lookup
    /// (`PATCHBAY_WEBHOOK_ROUTE_CACHE_MS`; 0 reads the records on every delivery).
    pub webhook_route_ttl: std::time::Duration,
}

/// Where connection secrets are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretsBackend {
    /// An AES-256-GCM encrypted file in the data directory (the embedded default).
    Local,
    /// HashiCorp Vault (or OpenBao) KV version 2, configured by `VAULT_*` variables.
    Vault,
}

/// How logs are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A configuration problem, naming the variable and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

impl HostConfig {
    /// Reads and checks the configuration; returns every problem found, not just the first.
    pub fn from_env(env: &ConnectorEnv) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = Vec::new();

        let listen_text = env.get("PATCHBAY_LISTEN").unwrap_or(DEFAULT_LISTEN);
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            problems.push(ConfigProblem {
                variable: "PATCHBAY_LISTEN",
                message: format!(
                    "`{listen_text}` is not an address:port; use e.g. 0.0.0.0:5080 or 127.0.0.1:8080"
                ),
            });
            DEFAULT_LISTEN.parse().expect("default listen address parses")
        });

        let metrics_listen = env.get("PATCHBAY_METRICS_LISTEN").and_then(|text| {
            let parsed = text.parse::<SocketAddr>().ok();
            if parsed.is_none() {
                problems.push(ConfigProblem {
                    variable: "PATCHBAY_METRICS_LISTEN",
                    message: format!(
                        "`{text}` is not an address:port; use e.g. 127.0.0.1:9090, or unset it to serve /metrics with the API"
                    ),
                });
            }
            parsed
        });

        let public_url = env
            .get("PATCHBAY_PUBLIC_URL")
            .unwrap_or(DEFAULT_PUBLIC_URL)
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            problems.push(ConfigProblem {
                variable: "PATCHBAY_PUBLIC_URL",
                message: format!(
                    "`{public_url}` must start with http:// or https://, e.g. https://patchbay.example.com"
                ),
            });
        }

        let data_dir = PathBuf::from(env.get("PATCHBAY_DATA_DIR").unwrap_or(DEFAULT_DATA_DIR));
        let database_url = env
            .get("DATABASE_URL")
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("patchbay.db").display()
                )
            });
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|scheme| database_url.starts_with(scheme))
        {
            problems.push(ConfigProblem {
                variable: "DATABASE_URL",
                message: "must be a postgres:// URL, or a sqlite: URL; unset it to use the embedded SQLite database".into(),
            });
        }

        let secrets_backend = match env.get("PATCHBAY_SECRETS").unwrap_or("local") {
            "local" => SecretsBackend::Local,
            "vault" => SecretsBackend::Vault,
            other => {
                problems.push(ConfigProblem {
                    variable: "PATCHBAY_SECRETS",
                    message: format!("`{other}` is not a secret store; use `local` or `vault`"),
                });
                SecretsBackend::Local
            }
        };
        if secrets_backend == SecretsBackend::Vault && env.get("VAULT_ADDR").is_none() {
            problems.push(ConfigProblem {
                variable: "VAULT_ADDR",
                message:
                    "is required with PATCHBAY_SECRETS=vault, e.g. https://vault.example.com:8200"
                        .into(),
            });
        }

        let log_format = match env.get("PATCHBAY_LOG_FORMAT").unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                problems.push(ConfigProblem {
                    variable: "PATCHBAY_LOG_FORMAT",
                    message: format!("`{other}` is not a log format; use `text` or `json`"),
                });
                LogFormat::Text
            }
        };

        let ingest_batch = whole_number(env, INGEST_BATCH_VAR, 1..=10_000, "", 256, &mut problems);
        let default_ttl = patchbay_store::route_cache::DEFAULT_TTL.as_millis() as u64;
        let webhook_route_ttl = std::time::Duration::from_millis(whole_number(
            env,
            WEBHOOK_ROUTE_CACHE_VAR,
            0..=60_000,
            " of milliseconds",
            default_ttl,
            &mut problems,
        ));

        let internal_secret = env.get("INTERNAL_API_SECRET").map(SecretString::from);
        if internal_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 16)
        {
            problems.push(ConfigProblem {
                variable: "INTERNAL_API_SECRET",
                message: "must be at least 16 characters; generate one with `openssl rand -hex 32`"
                    .into(),
            });
        }

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            listen,
            metrics_listen,
            public_url,
            data_dir,
            database_url,
            secrets_backend,
            master_key: env.get("PATCHBAY_MASTER_KEY").map(SecretString::from),
            internal_secret,
            log_format,
            ingest_batch: ingest_batch as usize,
            webhook_route_ttl,
        })
    }
}

/// Alerts written per transaction at most.
const INGEST_BATCH_VAR: &str = "PATCHBAY_INGEST_BATCH";
/// How long webhook intake keeps a connection lookup, in milliseconds.
const WEBHOOK_ROUTE_CACHE_VAR: &str = "PATCHBAY_WEBHOOK_ROUTE_CACHE_MS";

/// The whole number in `variable` (`default` when unset), or a problem naming the
/// range when it is not one inside `range`; `unit` reads after "a whole number".
fn whole_number(
    env: &ConnectorEnv,
    variable: &'static str,
    range: std::ops::RangeInclusive<u64>,
    unit: &str,
    default: u64,
    problems: &mut Vec<ConfigProblem>,
) -> u64 {
    let Some(text) = env.get(variable) else {
        return default;
    };
    match text.parse::<u64>() {
        Ok(number) if range.contains(&number) => number,
        _ => {
            problems.push(ConfigProblem {
                variable,
                message: format!(
                    "`{text}` must be a whole number{unit} from {} to {}",
                    range.start(),
                    range.end()
                ),
            });
            default
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_guide() {
        let config = HostConfig::from_env(&ConnectorEnv::default()).unwrap();
        assert_eq!(config.listen.port(), 5080);
        assert_eq!(config.public_url, "http://localhost:5080");
        assert!(config.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn every_problem_is_reported_with_its_variable() {
        let env = ConnectorEnv::from_pairs([
            ("PATCHBAY_LISTEN", "not-an-address"),
            ("PATCHBAY_METRICS_LISTEN", "9090"),
            ("PATCHBAY_PUBLIC_URL", "ftp://x"),
            ("PATCHBAY_LOG_FORMAT", "xml"),
            ("PATCHBAY_SECRETS", "vault"),
            ("INTERNAL_API_SECRET", "short"),
        ]);
        let problems = HostConfig::from_env(&env).unwrap_err();
        let variables: Vec<_> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            variables,
            [
                "PATCHBAY_LISTEN",
                "PATCHBAY_METRICS_LISTEN",
                "PATCHBAY_PUBLIC_URL",
                "VAULT_ADDR",
                "PATCHBAY_LOG_FORMAT",
                "INTERNAL_API_SECRET"
            ]
        );
        assert!(!problems.iter().any(|p| p.message.contains("short")));
    }

    #[test]
    fn the_webhook_route_cache_lasts_a_second_unless_set() {
        let ttl = |value: Option<&str>| {
            let env = ConnectorEnv::from_pairs(
                value.map(|value| ("PATCHBAY_WEBHOOK_ROUTE_CACHE_MS", value)),
            );
            HostConfig::from_env(&env).map(|config| config.webhook_route_ttl)
        };
        assert_eq!(ttl(None).unwrap(), std::time::Duration::from_secs(1));
        assert_eq!(
            ttl(Some("250")).unwrap(),
            std::time::Duration::from_millis(250)
        );
        assert_eq!(ttl(Some("0")).unwrap(), std::time::Duration::ZERO);
        for wrong in ["-1", "1.5", "60001", "soon"] {
            let problems = ttl(Some(wrong)).unwrap_err();
            assert_eq!(problems.len(), 1, "{wrong}");
            assert_eq!(problems[0].variable, "PATCHBAY_WEBHOOK_ROUTE_CACHE_MS");
            assert!(
                problems[0].message.contains("0 to 60000"),
                "{}",
                problems[0].message
            );
        }
    }
}
