//! Client settings: timeouts, retry policy, size cap, upstream overrides and the
//! private networks tenant URLs may reach.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use patchbay_core::{ConnectorEnv, Error, Result};

use crate::overrides::{UpstreamOverrides, OVERRIDES_VAR};
use crate::policy::{AddressPolicy, ALLOWED_PRIVATE_NETWORKS_VAR};

/// Seconds to wait for a TCP/TLS connection (`PATCHBAY_HTTP_CONNECT_TIMEOUT_SECS`).
pub const CONNECT_TIMEOUT_VAR: &str = "PATCHBAY_HTTP_CONNECT_TIMEOUT_SECS";
/// Seconds one attempt may take from start to last body byte (`PATCHBAY_HTTP_TIMEOUT_SECS`).
pub const TIMEOUT_VAR: &str = "PATCHBAY_HTTP_TIMEOUT_SECS";
/// How many times a failed request is retried (`PATCHBAY_HTTP_MAX_RETRIES`).
pub const MAX_RETRIES_VAR: &str = "PATCHBAY_HTTP_MAX_RETRIES";

/// How the shared client talks to providers.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Time allowed to open a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest silence allowed between two reads from the socket.
    pub read_timeout: Duration,
    /// Time one attempt may take, from sending to the last body byte.
    pub total_timeout: Duration,
    /// Retries after the first attempt, so at most `max_retries + 1` attempts.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles for each later one.
    pub base_backoff: Duration,
    /// Upper bound of one backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` waited for; a longer one ends retrying.
    pub max_retry_after: Duration,
    /// Largest response body read; a larger one fails with "response too large".
    pub max_response_bytes: usize,
    /// The `User-Agent` header sent with every request.
    pub user_agent: String,
    /// Host-to-base-URL rewrites for tests, proxies and sandboxes.
    pub overrides: UpstreamOverrides,
    /// Private networks that requests to tenant-supplied URLs may reach.
    pub address_policy: AddressPolicy,
    /// How the retry loop waits between attempts.
    pub pause: Pause,
}

/// The future one [`Pause`] returns.
pub type PauseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// How the retry loop waits (backoff, `Retry-After`): `tokio::time::sleep` unless
/// replaced, so a test can check a two-minute `Retry-After` without waiting for it.
#[derive(Clone)]
pub struct Pause(Arc<dyn Fn(Duration) -> PauseFuture + Send + Sync>);

impl Pause {
    /// Waits with `wait` instead of sleeping.
    pub fn new(wait: impl Fn(Duration) -> PauseFuture + Send + Sync + 'static) -> Self {
        Self(Arc::new(wait))
    }

    /// Waits `duration`.
    pub async fn wait(&self, duration: Duration) {
        (self.0)(duration).await;
    }
}

impl Default for Pause {
    fn default() -> Self {
        Self::new(|duration| Box::pin(tokio::time::sleep(duration)))
    }
}

impl std::fmt::Debug for Pause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pause")
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(60),
            max_retries: 3,
            base_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(30),
            max_response_bytes: 10 * 1024 * 1024,
            user_agent: concat!(
                "patchbay/",
                env!("CARGO_PKG_VERSION"),
                " (+https://github.com/patchbay-dev/patchbay)"
            )
            .to_owned(),
            overrides: UpstreamOverrides::default(),
            address_policy: AddressPolicy::default(),
            pause: Pause::default(),
        }
    }
}

impl HttpConfig {
    /// The defaults, adjusted by the `PATCHBAY_UPSTREAM_OVERRIDES`,
    /// `PATCHBAY_ALLOWED_PRIVATE_NETWORKS` and `PATCHBAY_HTTP_*` variables in `env`.
    pub fn from_env(env: &ConnectorEnv) -> Result<Self> {
        let mut config = Self::default();
        if let Some(spec) = env.get(OVERRIDES_VAR) {
            config.overrides = UpstreamOverrides::parse(spec)?;
        }
        if let Some(spec) = env.get(ALLOWED_PRIVATE_NETWORKS_VAR) {
            config.address_policy = AddressPolicy::parse(spec)?;
        }
        if let Some(value) = env.get(CONNECT_TIMEOUT_VAR) {
            config.connect_timeout = parse_seconds(CONNECT_TIMEOUT_VAR, value, 5)?;
        }
        if let Some(value) = env.get(TIMEOUT_VAR) {
            config.total_timeout = parse_seconds(TIMEOUT_VAR, value, 60)?;
        }
        if let Some(value) = env.get(MAX_RETRIES_VAR) {
            config.max_retries = value.trim().parse().map_err(|_| {
                Error::invalid_config(
                    MAX_RETRIES_VAR,
                    format!("{MAX_RETRIES_VAR} must be a whole number such as 3, got `{value}`"),
                )
                .with_hint(format!(
                    "set {MAX_RETRIES_VAR} to 0 to disable retries, or unset it for the default of 3"
                ))
            })?;
        }
        Ok(config)
    }
}

fn parse_seconds(var: &str, value: &str, default: u64) -> Result<Duration> {
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(Error::invalid_config(
            var,
            format!("{var} must be a whole number of seconds greater than 0, got `{value}`"),
        )
        .with_hint(format!(
            "set {var} to e.g. {default}, or unset it for the default of {default}"
        ))),
    }
}
