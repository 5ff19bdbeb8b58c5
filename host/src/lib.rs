//! The Patchbay host: wires the connector registry to HTTP and to storage.
//!
//! Run it as the `patchbay` binary, or embed it: build a [`Host`] with
//! [`HostBuilder`], optionally with your own [`auth::PrincipalExtractor`], and
//! mount [`Host::router`] in your own axum application.
#![deny(missing_docs)]

pub mod alert_stream;
pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod connectors;
pub mod error;
#[cfg(feature = "connector-kubernetes")]
pub mod kubectl_agent;
pub mod lifecycle;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod session;
pub mod state;
pub mod telemetry;
pub mod web;
pub mod webhooks;

use std::sync::Arc;

use axum::serve::ListenerExt;
use axum::Router;
use patchbay_core::{ConnectorEnv, Registry, Result};
use patchbay_store::{
    open_record_store, AlertIngestor, CachedWebhookRoutes, KeySource, LocalSecretStore, MasterKey,
    MeteredRecordStore, MeteredSecretStore, RecordStore, SecretStore, VaultConfig,
    VaultSecretStore,
};
use tokio::net::TcpListener;

pub use config::{HostConfig, SecretsBackend};
pub use state::AppState;

use crate::auth::{DefaultPrincipalExtractor, PrincipalExtractor};

/// Assembles a [`Host`] from configuration, with optional replacements for each part.
pub struct HostBuilder {
    config: HostConfig,
    env: ConnectorEnv,
    registry: Option<Registry>,
    principals: Option<Arc<dyn PrincipalExtractor>>,
    records: Option<Arc<dyn RecordStore>>,
    secrets: Option<Arc<dyn SecretStore>>,
    #[cfg(feature = "connector-kubernetes")]
    kubectl_relay: Option<Arc<patchbay_connector_kubernetes::client::Relay>>,
}

impl HostBuilder {
    /// A builder over validated configuration and the environment connectors read.
    pub fn new(config: HostConfig, env: ConnectorEnv) -> Self {
        Self {
            config,
            env,
            registry: None,
            principals: None,
            records: None,
            secrets: None,
            #[cfg(feature = "connector-kubernetes")]
            kubectl_relay: None,
        }
    }

    /// Uses this kubectl agent relay (and its settings) instead of a default one.
    /// It reaches the Kubernetes connector only when the host builds the registry.
    #[cfg(feature = "connector-kubernetes")]
    pub fn kubectl_relay(
        mut self,
        relay: Arc<patchbay_connector_kubernetes::client::Relay>,
    ) -> Self {
        self.kubectl_relay = Some(relay);
        self
    }

    /// Uses this registry instead of every connector linked into the binary.
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Authenticates callers with this extractor instead of API keys.
    pub fn principal_extractor(mut self, extractor: Arc<dyn PrincipalExtractor>) -> Self {
        self.principals = Some(extractor);
        self
    }

    /// Uses this records store instead of the configured database.
    pub fn records(mut self, records: Arc<dyn RecordStore>) -> Self {
        self.records = Some(records);
        self
    }

    /// Uses this secret store instead of the local encrypted file.
    pub fn secrets(mut self, secrets: Arc<dyn SecretStore>) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Opens the stores and builds the connectors.
    pub async fn build(mut self) -> Result<Host> {
        // The Kubernetes connector reaches agents through the host's relay.
        #[cfg(feature = "connector-kubernetes")]
        let kubectl_relay = {
            let relay = self.kubectl_relay.take().unwrap_or_default();
            self.env.insert_extension(Arc::clone(&relay));
            relay
        };
        let registry = match self.registry {
            Some(registry) => registry,
            None => connectors::registry(&self.env)?,
        };
        let records = match self.records {
            Some(records) => records,
            None => open_records(&self.config).await?,
        };
        let secrets = match self.secrets {
            Some(secrets) => secrets,
            None => open_secrets(&self.config, &self.env).await?,
        };
        metrics::spawn_upkeep();
        // The cache sits outside the metrics, which so count the lookups that reach the database.
        let records = CachedWebhookRoutes::wrap(
            MeteredRecordStore::wrap(records),
            self.config.webhook_route_ttl,
        );
        let secrets = MeteredSecretStore::wrap(secrets);
        let principals = self.principals.unwrap_or_else(|| {
            Arc::new(DefaultPrincipalExtractor::new(
                records.clone(),
                self.config.internal_secret.clone(),
            ))
        });
        let http = patchbay_http::HttpClient::from_env(&self.env)?;
        let oauth = Arc::new(patchbay_oauth::OAuthEngine::new(
            http,
            records.clone(),
            self.env.clone(),
            self.config.public_url.clone(),
        ));
        let refresher = Arc::new(patchbay_oauth::TokenRefresher::new(
            oauth.clone(),
            records.clone(),
            secrets.clone(),
            patchbay_oauth::refresh::skew_from_env(&self.env)?,
        ));
        let setting = |name: &str| self.env.get(name).map(|value| Arc::from(value.trim()));
        let ingestor = AlertIngestor::spawn(records.clone(), self.config.ingest_batch);
        let alert_notifications = if self.config.database_url.starts_with("postgres") {
            let signal = ingestor.committed().clone();
            Some(Arc::new(
                patchbay_store::alert_feed::listen_postgres(&self.config.database_url, signal)
                    .await?,
            ))
        } else {
            None
        };
        let state = AppState {
            oauth,
            refresher,
            ui_origin: setting("PATCHBAY_UI_ORIGIN"),
            oauth_return_url: setting("PATCHBAY_OAUTH_RETURN_URL"),
            write_operations: Arc::new(state::write_operations(&registry)),
            registry: Arc::new(registry),
            env: Arc::new(self.env),
            ingestor,
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
            connections_changed: Arc::new(tokio::sync::watch::Sender::new(0)),
            alert_notifications,
            records,
            secrets,
            principals,
            public_url: Arc::from(self.config.public_url.as_str()),
            #[cfg(feature = "connector-kubernetes")]
            kubectl_bus: if self.config.database_url.starts_with("postgres") {
                Some(kubectl_agent::start_bus(&self.config.database_url, &kubectl_relay).await?)
            } else {
                None
            },
            #[cfg(feature = "connector-kubernetes")]
            kubectl_relay,
        };
        Ok(Host {
            config: self.config,
            state,
        })
    }
}

/// Opens the records database named by the configuration (SQLite or Postgres).
pub async fn open_records(config: &HostConfig) -> Result<Arc<dyn RecordStore>> {
    if config.database_url.starts_with("sqlite:") {
        create_private_dir(&config.data_dir).map_err(|error| {
            patchbay_core::Error::invalid_config(
                "PATCHBAY_DATA_DIR",
                format!(
                    "cannot create data directory {}: {error}",
                    config.data_dir.display()
                ),
            )
        })?;
    }
    open_record_store(&config.database_url).await
}

/// Creates a directory (and parents) readable only by this user.
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Opens the configured secret store: Vault, or the local encrypted file (whose
/// master key is generated on first run).
pub async fn open_secrets(config: &HostConfig, env: &ConnectorEnv) -> Result<Arc<dyn SecretStore>> {
    if config.secrets_backend == SecretsBackend::Vault {
        let vault = VaultSecretStore::connect(VaultConfig::from_env(env)?).await?;
        return Ok(Arc::new(vault));
    }
    let (key, source) = MasterKey::resolve(
        config.master_key.as_ref().map(|key| key.expose().as_str()),
        &config.data_dir,
    )?;
    match source {
        KeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            "generated a new master key for the local secret store; back it up, or set PATCHBAY_MASTER_KEY"
        ),
        KeySource::File(path) => {
            tracing::info!(path = %path.display(), "using the master key file")
        }
        KeySource::Environment => tracing::info!("using the master key from PATCHBAY_MASTER_KEY"),
    }
    Ok(Arc::new(LocalSecretStore::open(&config.data_dir, key)?))
}

/// A ready host: state plus configuration.
pub struct Host {
    config: HostConfig,
    state: AppState,
}

impl Host {
    /// The shared state (for embedders that add their own routes).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &HostConfig {
        &self.config
    }

    /// Every route: the JSON API, the connectors' webhook paths and, unless
    /// `PATCHBAY_METRICS_LISTEN` moves it, `/metrics`.
    pub fn router(&self) -> Router {
        let router = api::router()
            .merge(alert_stream::router())
            .merge(mcp::router(&self.state));
        #[cfg(feature = "connector-kubernetes")]
        let router = router.merge(kubectl_agent::router());
        let router = router
            .merge(webhooks::router(&self.state))
            .merge(oauth::router(&self.state))
            .merge(session::router())
            .merge(web::router());
        let metrics_here = self.config.metrics_listen.is_none();
        let router = if metrics_here {
            router.merge(metrics::router())
        } else {
            router
        };
        let router = router.merge(openapi::router(openapi::document(
            &self.state.registry,
            metrics_here,
        )));
        router
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                session::resolve,
            ))
            .with_state(self.state.clone())
            .layer(telemetry::trace_layer())
    }

    /// Serves until `shutdown` completes, then finishes in-flight requests and drains ingestion.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = self.router();
        let metrics_server = match self.config.metrics_listen {
            Some(address) => {
                let listener = TcpListener::bind(address).await?;
                tracing::info!(%address, "serving /metrics");
                Some(tokio::spawn(async move {
                    axum::serve(listener, metrics::router::<()>()).await
                }))
            }
            None => None,
        };
        let stopping = Arc::clone(&self.state.stopping);
        // Small writes (agent commands, stream events, API answers) leave at once
        // instead of waiting for the peer's acknowledgement of the previous one.
        let listener = listener.tap_io(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Alert streams end, so the requests graceful shutdown waits for finish.
                stopping.send_replace(true);
            })
            .await?;
        if let Some(server) = metrics_server {
            server.abort();
        }
        self.state.ingestor.clone().shutdown().await;
        Ok(())
    }
}
