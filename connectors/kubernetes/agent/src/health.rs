//! `/health` and `/ready` for the kubelet's probes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

/// Whether the agent is connected, shared with the probe server.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    terminal: AtomicBool,
}

impl Health {
    /// Sets whether a WebSocket to the service is up.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Marks the agent refused for good: never ready again.
    pub fn set_terminal(&self) {
        self.terminal.store(true, Ordering::SeqCst);
        self.ready.store(false, Ordering::SeqCst);
    }

    /// Whether `/ready` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.terminal.load(Ordering::SeqCst)
    }
}

/// `GET /health` → 200 "ok"; `GET /ready` → 200 "ready" while connected, else 503.
pub fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .with_state(health)
}

async fn ready(State(health): State<Arc<Health>>) -> (StatusCode, &'static str) {
    if health.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not connected")
    }
}
