//! The in-cluster kubectl agent for Patchbay.
//!
//! It connects outbound to the service's WebSocket endpoint with its token,
//! registers, and runs the read-only kubectl commands the service sends, after
//! checking them against its own allowlist. It reconnects with exponential
//! backoff and stops for good when the service says the token is no longer valid.

#![deny(missing_docs)]

pub mod backoff;
pub mod config;
pub mod health;
pub mod runner;
pub mod session;

use std::sync::Arc;

use patchbay_kubectl_protocol::CloseReason;
use rand::Rng;
use tokio::sync::watch;

use crate::backoff::{Backoff, Clock};
use crate::config::Config;
use crate::health::Health;
use crate::session::{stopped, SessionEnd};

/// How the agent stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Asked to stop (SIGTERM): exit 0.
    Shutdown,
    /// The service refused the token: exit 3 so the pod shows why.
    Terminal(CloseReason),
}

impl Exit {
    /// The process exit code.
    pub fn code(&self) -> i32 {
        match self {
            Exit::Shutdown => 0,
            Exit::Terminal(_) => 3,
        }
    }
}

/// Connects, serves and reconnects until shut down or refused for good.
pub async fn run<R: Rng>(
    config: &Config,
    health: Arc<Health>,
    clock: Arc<dyn Clock>,
    rng: R,
    mut shutdown: watch::Receiver<bool>,
) -> Exit {
    let mut backoff = Backoff::new(config.backoff, rng);
    loop {
        let ready = Arc::clone(&health);
        let connected_clock = Arc::clone(&clock);
        let mut connected_at = None;
        let end = session::run(config, shutdown.clone(), || {
            ready.set_ready(true);
            connected_at = Some(connected_clock.now());
        })
        .await;
        health.set_ready(false);
        if let Some(at) = connected_at {
            backoff.connected(at);
        }
        backoff.disconnected(clock.now());
        match end {
            SessionEnd::Shutdown => return Exit::Shutdown,
            SessionEnd::Terminal(reason) => {
                tracing::error!(
                    reason = reason.text(),
                    "the service refused the agent token; not retrying. Install a new token from Patchbay's Add Cluster"
                );
                health.set_terminal();
                return Exit::Terminal(reason);
            }
            SessionEnd::Retry { reason, .. } => {
                let delay = backoff.next_delay();
                tracing::warn!(%reason, retry_in_ms = delay.as_millis() as u64, "disconnected");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopped(&mut shutdown) => return Exit::Shutdown,
                }
            }
        }
    }
}
