//! A private OpenBao dev server for tests that must stop and resume Vault.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running `bao server -dev` on a free loopback port, killed on drop.
pub struct OpenBao {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    /// The root token.
    pub token: String,
    client: reqwest::Client,
}

impl OpenBao {
    /// Starts a dev server and enables KV v2 at `mount`.
    pub async fn start(binary: &std::path::Path, mount: &str) -> Self {
        let port = crate::free_port();
        let token = format!("root-{}", uuid_like());
        let child = Command::new(binary)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={token}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
                "-dev-no-store-token",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start OpenBao");
        let bao = Self {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            token,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = bao
                .client
                .get(format!("{}/v1/sys/health", bao.addr))
                .send()
                .await
            {
                if response.status().as_u16() == 200 {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "OpenBao did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, body) = bao
            .call(
                "POST",
                &format!("sys/mounts/{mount}"),
                Some(json!({ "type": "kv", "options": { "version": "2" } })),
            )
            .await;
        assert!(status < 300, "enable kv-v2: {status} {body}");
        bao
    }

    /// The process id (to pause it with SIGSTOP).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes the server: connections are accepted but nothing answers.
    pub fn pause(&self) {
        signal("-STOP", self.pid());
    }

    /// Resumes a paused server.
    pub fn resume(&self) {
        signal("-CONT", self.pid());
    }

    /// Calls the HTTP API with the root token; returns status and JSON body.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        vault_call(&self.client, &self.addr, &self.token, method, path, body).await
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        signal("-CONT", self.pid());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Calls a Vault HTTP API (`/v1/<path>`) with a token; returns status and JSON body.
pub async fn vault_call(
    client: &reqwest::Client,
    addr: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client
        .request(method, format!("{addr}/v1/{path}"))
        .header("X-Vault-Token", token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("Vault answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn signal(signal: &str, pid: u32) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

/// A random lowercase identifier for names that must not collide between tests.
pub fn uuid_like() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", hasher.finish())
}
