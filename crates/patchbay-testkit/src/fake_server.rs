//! The loopback server a connector's provider fake runs on: bound to
//! `127.0.0.1:0`, served by the test's tokio runtime, stopped when dropped.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A bound loopback port that has not started serving yet, so a fake can put its
/// own base URL into its state (for links and redirects) before it serves.
#[derive(Debug)]
pub struct BoundPort {
    listener: TcpListener,
    address: SocketAddr,
}

impl BoundPort {
    /// Binds `127.0.0.1:0`; `provider` names the fake in the panic if that fails.
    pub async fn loopback(provider: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap_or_else(|error| panic!("bind the fake {provider} to 127.0.0.1:0: {error}"));
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("the fake {provider}'s local address: {error}"));
        Self { listener, address }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Starts serving `router` on the port.
    pub fn serve(self, router: axum::Router) -> FakeServer {
        let task = tokio::spawn(async move {
            // The server ends only when the task is aborted on drop.
            let _ = axum::serve(self.listener, router).await;
        });
        FakeServer {
            address: self.address,
            task,
        }
    }
}

/// A provider fake being served on loopback; aborted when dropped.
#[derive(Debug)]
pub struct FakeServer {
    address: SocketAddr,
    task: JoinHandle<()>,
}

impl FakeServer {
    /// Binds a loopback port and serves `router` on it.
    pub async fn start(provider: &str, router: axum::Router) -> Self {
        BoundPort::loopback(provider).await.serve(router)
    }

    /// The address served on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `host=http://127.0.0.1:PORT`, the `PATCHBAY_UPSTREAM_OVERRIDES` entry that
    /// sends requests for the provider's `host` here.
    pub fn override_for(&self, host: &str) -> String {
        format!("{host}={}", self.base_url())
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
