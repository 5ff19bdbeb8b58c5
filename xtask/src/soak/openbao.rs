//! OpenBao as production runs it, so it can be restarted: integrated (Raft) storage
//! on disk (OpenBao has no `file` backend), initialised with one unseal key,
//! unsealed after every start, KV v2 mounted at `patchbay`. (The test suite's dev
//! server keeps everything in memory and cannot restart.)

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// How long a start may take to answer and to unseal.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running single-node OpenBao server with storage on disk; killed when dropped.
pub struct DurableOpenBao {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub addr: String,
    /// The root token `bao operator init` issued.
    pub root_token: String,
    /// The port it listens on.
    pub port: u16,
    unseal_key: String,
    binary: PathBuf,
    dir: PathBuf,
    http: reqwest::Client,
    child: Option<Child>,
}

impl DurableOpenBao {
    /// Writes a configuration under `dir`, starts the server, initialises it with
    /// one key share, unseals it and mounts KV v2 at `patchbay`.
    pub async fn start(binary: &Path, dir: &Path) -> Result<Self> {
        let (port, cluster_port) = (crate::bench::free_port()?, crate::bench::free_port()?);
        fs::create_dir_all(dir.join("data"))?;
        // `performance_multiplier = 1`: the shortest Raft timeouts, so a restarted
        // node elects itself leader in about a second.
        fs::write(
            dir.join("config.hcl"),
            format!(
                "storage \"raft\" {{\n  path = \"{data}\"\n  node_id = \"soak\"\n  \
                 performance_multiplier = 1\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{port}\"\n\
                 cluster_addr = \"http://127.0.0.1:{cluster_port}\"\n",
                data = dir.join("data").display()
            ),
        )?;
        let mut bao = Self {
            addr: format!("http://127.0.0.1:{port}"),
            root_token: String::new(),
            port,
            unseal_key: String::new(),
            binary: binary.to_owned(),
            dir: dir.to_owned(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()?,
            child: None,
        };
        bao.spawn()?;
        bao.wait_for_health(|_| true).await?;
        let init: Value = bao
            .http
            .put(format!("{}/v1/sys/init", bao.addr))
            .json(&json!({ "secret_shares": 1, "secret_threshold": 1 }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        bao.unseal_key = init["keys"][0]
            .as_str()
            .context("init answered without an unseal key")?
            .to_owned();
        bao.root_token = init["root_token"]
            .as_str()
            .context("init answered without a root token")?
            .to_owned();
        bao.unseal().await?;
        bao.http
            .post(format!("{}/v1/sys/mounts/patchbay", bao.addr))
            .header("X-Vault-Token", &bao.root_token)
            .json(&json!({ "type": "kv", "options": { "version": "2" } }))
            .send()
            .await?
            .error_for_status()
            .context("mounting KV v2 at patchbay")?;
        // The mount answers once its engine is set up.
        let config = format!("{}/v1/patchbay/config", bao.addr);
        let deadline = Instant::now() + START_TIMEOUT;
        while !bao
            .http
            .get(&config)
            .header("X-Vault-Token", &bao.root_token)
            .send()
            .await
            .is_ok_and(|answer| answer.status().is_success())
        {
            if Instant::now() > deadline {
                bail!("the KV v2 mount at patchbay never answered");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(bao)
    }

    /// Kills the server (as a crash would) and starts it again on the same storage
    /// and port, unsealed; returns when it serves again.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()?;
        self.wait_for_health(|_| true).await?;
        self.unseal().await
    }

    fn spawn(&mut self) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join("bao.log"))?;
        let child = Command::new(&self.binary)
            .arg("server")
            .arg(format!("-config={}", self.dir.join("config.hcl").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        Ok(())
    }

    async fn unseal(&self) -> Result<()> {
        self.http
            .put(format!("{}/v1/sys/unseal", self.addr))
            .json(&json!({ "key": self.unseal_key }))
            .send()
            .await?
            .error_for_status()
            .context("unsealing OpenBao")?;
        self.wait_for_health(|status| status == 200).await
    }

    /// Waits until `GET /v1/sys/health` answers with a status `accept` takes
    /// (501 uninitialised, 503 sealed, 200 active).
    async fn wait_for_health(&self, accept: impl Fn(u16) -> bool) -> Result<()> {
        let url = format!("{}/v1/sys/health", self.addr);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(answer) = self.http.get(&url).send().await {
                if accept(answer.status().as_u16()) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "OpenBao did not answer as expected within {} s; see {}",
                    START_TIMEOUT.as_secs(),
                    self.dir.join("bao.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Lists the secret paths under `folder` of the `patchbay` mount, recursively.
    pub async fn list_secrets(&self, folder: &str) -> Result<Vec<String>> {
        let mut folders = vec![folder.to_owned()];
        let mut found = Vec::new();
        while let Some(folder) = folders.pop() {
            let answer = self
                .http
                .request(
                    reqwest::Method::from_bytes(b"LIST")?,
                    format!("{}/v1/patchbay/metadata/{folder}", self.addr),
                )
                .header("X-Vault-Token", &self.root_token)
                .send()
                .await?;
            if answer.status() == 404 {
                continue;
            }
            let listed: Value = answer.error_for_status()?.json().await?;
            for key in listed["data"]["keys"].as_array().into_iter().flatten() {
                let key = key.as_str().context("a listed key is not a string")?;
                match key.strip_suffix('/') {
                    Some(sub_folder) => folders.push(format!("{folder}/{sub_folder}")),
                    None => found.push(format!("{folder}/{key}")),
                }
            }
        }
        Ok(found)
    }

    /// The secrets stored at `path` of the `patchbay` mount, if it exists.
    pub async fn read_secret(&self, path: &str) -> Result<Option<Value>> {
        let answer = self
            .http
            .get(format!("{}/v1/patchbay/data/{path}", self.addr))
            .header("X-Vault-Token", &self.root_token)
            .send()
            .await?;
        if answer.status() == 404 {
            return Ok(None);
        }
        let read: Value = answer.error_for_status()?.json().await?;
        Ok(Some(read["data"]["data"]["secrets"].clone()))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

impl Drop for DurableOpenBao {
    fn drop(&mut self) {
        self.kill();
    }
}
