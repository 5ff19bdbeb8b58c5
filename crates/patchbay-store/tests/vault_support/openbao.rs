//! A real OpenBao for the Vault tests: the shared dev server `cargo xtask test`
//! starts, or a private one a test starts (and stops) itself, plus raw HTTP
//! access to check what the store wrote.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The mount `cargo xtask test` enables on the shared server and private servers get too.
pub const MOUNT: &str = "patchbay";

/// An OpenBao reachable over HTTP with a root token.
#[derive(Clone)]
pub struct Bao {
    pub addr: String,
    pub token: String,
    http: reqwest::Client,
}

impl Bao {
    fn new(addr: String, token: String) -> Self {
        Self {
            addr,
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        }
    }

    /// The shared server; fails the test, naming the fix, when it is not configured.
    pub fn shared() -> Self {
        let vault = patchbay_testkit::services::vault();
        Self::new(vault.addr, vault.token)
    }

    /// Sends a request to `/v1/<path>` with the root token; returns the status and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", &self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    /// Like [`Bao::request`], failing the test unless Vault answers 2xx.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.request(method.clone(), path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    /// Mounts a KV engine of `version` at `mount`.
    pub async fn enable_kv(&self, mount: &str, version: &str) {
        self.ok(
            Method::POST,
            &format!("sys/mounts/{mount}"),
            Some(json!({ "type": "kv", "options": { "version": version } })),
        )
        .await;
    }
}

/// A private OpenBao dev server on a port of its own, killed when dropped.
pub struct PrivateBao {
    pub bao: Bao,
    binary: PathBuf,
    port: u16,
    child: Option<Child>,
    log_dir: tempfile::TempDir,
}

impl PrivateBao {
    /// Starts a server with the `patchbay` KV v2 mount; fails the test, naming the
    /// fix, when the `bao` binary is not configured.
    pub async fn start() -> Self {
        let binary = patchbay_testkit::services::openbao_binary();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let token = format!("root-{}", uuid::Uuid::new_v4().simple());
        let mut server = Self {
            bao: Bao::new(format!("http://127.0.0.1:{port}"), token),
            binary,
            port,
            child: None,
            log_dir: tempfile::tempdir().unwrap(),
        };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_dir.path().join("bao.log"))
            .unwrap();
        let child = Command::new(&self.binary)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={}", self.bao.token),
                &format!("-dev-listen-address=127.0.0.1:{}", self.port),
                "-dev-no-store-token",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let healthy = self
                .bao
                .http
                .get(format!("{}/v1/sys/health", self.bao.addr))
                .send()
                .await
                .is_ok_and(|response| response.status() == StatusCode::OK);
            if healthy {
                break;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "OpenBao did not start: {}",
                std::fs::read_to_string(self.log_dir.path().join("bao.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.bao.enable_kv(MOUNT, "2").await;
    }

    /// Kills the server (dev mode keeps nothing).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts a fresh server on the same port with the same root token.
    pub async fn restart(&mut self) {
        self.kill();
        self.launch().await;
    }
}

impl Drop for PrivateBao {
    fn drop(&mut self) {
        self.kill();
    }
}
