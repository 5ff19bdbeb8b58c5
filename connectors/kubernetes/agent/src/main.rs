//! `patchbay-kubectl-agent`: reads its settings from the environment, serves
//! `/health` and `/ready`, and keeps a connection to Patchbay.

use std::process::ExitCode;
use std::sync::Arc;

use patchbay_kubectl_agent::backoff::SystemClock;
use patchbay_kubectl_agent::config::Config;
use patchbay_kubectl_agent::health::{self, Health};
use rand::SeedableRng;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The exit code for a configuration error.
const CONFIG_ERROR: u8 = 2;

// One thread: the agent waits on sockets and pipes while kubectl does the work, and
// a command handed between worker threads would only add wake-ups to each round trip.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PATCHBAY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        // tungstenite traces the raw upgrade request, whose Authorization header
        // holds the agent token: never below debug, whatever PATCHBAY_LOG says.
        .add_directive(
            "tungstenite::handshake::client=debug"
                .parse()
                .expect("a valid log directive"),
        );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("patchbay-kubectl-agent: {error}");
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    // One crypto provider for every TLS connection (wss://).
    let _ = rustls::crypto::ring::default_provider().install_default();

    let health = Arc::new(Health::default());
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", config.health_port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!(
                "patchbay-kubectl-agent: cannot listen on PATCHBAY_HEALTH_PORT {}: {error}",
                config.health_port
            );
            return ExitCode::from(CONFIG_ERROR);
        }
    };
    let router = health::router(Arc::clone(&health));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the health server stopped");
        }
    });

    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        let mut terminate = match signal(SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });

    tracing::info!(url = %config.ws_url, version = %config.agent_version, "starting");
    let exit = patchbay_kubectl_agent::run(
        &config,
        health,
        Arc::new(SystemClock),
        rand::rngs::StdRng::from_entropy(),
        shutdown,
    )
    .await;
    ExitCode::from(u8::try_from(exit.code()).unwrap_or(1))
}
