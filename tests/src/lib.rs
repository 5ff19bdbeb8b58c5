//! A harness that runs the real `patchbay` binary as a child process.
//!
//! Each [`Patchbay`] gets its own data directory and loopback port, keeps its
//! logs in a file for scanning, and records every response body the tests read
//! through [`Patchbay::request`] so canary scans can cover them.
#![deny(missing_docs)]

pub mod openbao;
pub mod postgres;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use patchbay_testkit::metrics::Scrape;

/// The `patchbay` binary under test: `PATCHBAY_BIN`, else the workspace's debug build.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("PATCHBAY_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug/patchbay");
    assert!(
        path.exists(),
        "the patchbay binary is missing at {}; run `cargo xtask test` (or `cargo build -p patchbay-host`) first, or set PATCHBAY_BIN",
        path.display()
    );
    path
}

/// A free loopback port (bound and released; the race is acceptable for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// An HTTP answer as the tests see it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub text: String,
}

impl Answer {
    /// The body parsed as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text))
    }
}

/// A running `patchbay serve` child process.
pub struct Patchbay {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    env: Vec<(String, String)>,
    client: reqwest::Client,
    transcript: Arc<Mutex<Vec<String>>>,
    _workdir: Option<tempfile::TempDir>,
}

impl Patchbay {
    /// Follows an OAuth begin URL the way a browser would: to Patchbay's begin route
    /// (which sets the binding cookie), to the provider (the fake at `fake_base`
    /// stands in for `provider_origin`), then to Patchbay's callback with the
    /// provider's redirect and the cookie. Returns the callback's answer and the
    /// provider authorize URL visited.
    pub async fn authorize_in_browser(
        &self,
        begin_url: &str,
        provider_origin: &str,
        fake_base: &str,
    ) -> (Answer, String) {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        assert!(
            begin_url.starts_with(&format!("{}/oauth/begin/", self.base_url)),
            "{begin_url}"
        );
        let begun = browser.get(begin_url).send().await.expect("begin URL");
        assert_eq!(begun.status().as_u16(), 303);
        let authorize_url = begun.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            authorize_url.contains("code_challenge_method=S256"),
            "{authorize_url}"
        );
        let set_cookie = begun.headers()["set-cookie"].to_str().unwrap();
        assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
        let cookie = set_cookie.split(';').next().unwrap().to_owned();

        let at_fake = authorize_url.replacen(provider_origin, fake_base, 1);
        assert_ne!(
            at_fake, authorize_url,
            "authorize URL starts with {provider_origin}"
        );
        let answer = browser.get(&at_fake).send().await.expect("fake authorize");
        assert_eq!(
            answer.status().as_u16(),
            302,
            "{}",
            answer.text().await.unwrap_or_default()
        );
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        let callback = location
            .strip_prefix(&self.base_url)
            .unwrap_or_else(|| panic!("redirected to {location}, not to Patchbay"));
        assert!(
            !callback.contains("token"),
            "no token in the callback URL: {callback}"
        );
        let answer = self
            .request("GET", callback, &[("cookie", cookie.as_str())], None)
            .await;
        (answer, authorize_url)
    }

    /// Starts `patchbay serve` in a fresh data directory with extra environment.
    pub async fn start(extra_env: &[(&str, &str)]) -> Self {
        let workdir = tempfile::tempdir().expect("temporary directory");
        let data_dir = workdir.path().join("data");
        let mut patchbay = Self::start_in(workdir.path(), &data_dir, extra_env).await;
        patchbay._workdir = Some(workdir);
        patchbay
    }

    /// Starts `patchbay serve` with an explicit working and data directory.
    pub async fn start_in(workdir: &Path, data_dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let base_url = format!("http://127.0.0.1:{port}");
        let mut env: Vec<(String, String)> = vec![
            ("PATCHBAY_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("PATCHBAY_DATA_DIR".into(), data_dir.display().to_string()),
            ("PATCHBAY_PUBLIC_URL".into(), base_url.clone()),
            // Verbose logs, so the canary scan covers everything that could leak.
            ("PATCHBAY_LOG".into(), "debug,patchbay=trace".into()),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned())),
        );
        let log_path = workdir.join(format!("patchbay-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        let child = Command::new(binary())
            .arg("serve")
            .current_dir(workdir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("spawn patchbay");
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let patchbay = Self {
            child,
            base_url,
            data_dir: data_dir.to_owned(),
            log_path,
            env,
            client,
            transcript: Arc::default(),
            _workdir: None,
        };
        patchbay.wait_healthy().await;
        patchbay
    }

    async fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self
                .client
                .get(format!("{}/healthz", self.base_url))
                .send()
                .await
            {
                if response.status().is_success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "patchbay did not become healthy; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the binary's CLI with this instance's environment.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[])
    }

    /// Runs the binary's CLI with this instance's environment plus `extra_env`; its
    /// output is kept for the canary scans.
    pub fn cli_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
        let output = self
            .cli_command(args, extra_env)
            .output()
            .expect("run patchbay");
        let mut transcript = self.transcript.lock().expect("transcript");
        transcript.push(String::from_utf8_lossy(&output.stdout).into_owned());
        transcript.push(String::from_utf8_lossy(&output.stderr).into_owned());
        output
    }

    /// Starts the binary's CLI with this instance's environment plus `extra_env`,
    /// its output piped, for commands that run until stopped (killed when dropped).
    pub fn cli_spawn(&self, args: &[&str], extra_env: &[(&str, &str)]) -> tokio::process::Child {
        tokio::process::Command::from(self.cli_command(args, extra_env))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the patchbay CLI")
    }

    /// The binary's CLI beside this instance's data, with its environment plus `extra_env`.
    fn cli_command(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Command {
        let mut command = self.command_beside(binary());
        command.args(args).envs(extra_env.iter().copied());
        command
    }

    /// `program` run beside this instance's data with only `PATH` and this
    /// instance's environment, as a local agent or operator tool would be.
    pub fn command_beside(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.data_dir.parent().unwrap_or(&self.data_dir))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command
    }

    /// Creates an API key through the CLI and returns it.
    pub fn create_api_key(&self, user: &str, org: Option<&str>) -> String {
        let mut args = vec!["api-keys", "create", "--user", user];
        if let Some(org) = org {
            args.extend(["--org", org]);
        }
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "api-keys create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let key = String::from_utf8(output.stdout).expect("utf-8 key");
        let key = key.trim().to_owned();
        self.transcript
            .lock()
            .expect("transcript")
            .push(key.clone());
        key
    }

    /// Creates a one-time connect link for `user` and `connector` with the CLI, as an
    /// operator would, and returns its URL.
    pub fn create_connect_link(&self, user: &str, org: Option<&str>, connector: &str) -> String {
        let mut args = vec![
            "connect-links",
            "create",
            "--user",
            user,
            "--connector",
            connector,
        ];
        if let Some(org) = org {
            args.extend(["--org", org]);
        }
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "connect-links create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout)
            .expect("utf-8 link")
            .trim()
            .to_owned()
    }

    /// Sends a request and records the answer for later scans.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("request reaches patchbay");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect::<Vec<_>>();
        let text = response.text().await.expect("body");
        let mut transcript = self.transcript.lock().expect("transcript");
        transcript.extend(headers.iter().map(|(n, v)| format!("{n}: {v}")));
        transcript.push(text.clone());
        Answer {
            status,
            headers,
            text,
        }
    }

    /// An authenticated JSON request.
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> Answer {
        let authorization = format!("Bearer {key}");
        let mut headers = vec![("authorization", authorization.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        self.request(
            method,
            path,
            &headers,
            body.map(|body| serde_json::to_vec(&body).expect("json")),
        )
        .await
    }

    /// `POST /api/connections` with `body` as the caller with `key`; asserts 201 and
    /// returns the answer (connection, report, credentials shown once).
    pub async fn connect(&self, key: &str, body: serde_json::Value) -> serde_json::Value {
        let answer = self.api("POST", "/api/connections", key, Some(body)).await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        answer.json()
    }

    /// Scrapes `/metrics` at `base_url` (this process's own address, or the one
    /// `PATCHBAY_METRICS_LISTEN` moved it to); metrics need no API key.
    pub async fn scrape(&self, base_url: &str) -> Scrape {
        let response = self
            .client
            .get(format!("{base_url}/metrics"))
            .send()
            .await
            .expect("the metrics endpoint answers");
        assert_eq!(response.status().as_u16(), 200, "GET {base_url}/metrics");
        let text = response.text().await.expect("body");
        self.transcript
            .lock()
            .expect("transcript")
            .push(text.clone());
        Scrape::new(text)
    }

    /// Everything the process has logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Every response header and body read through this harness.
    pub fn transcript(&self) -> String {
        self.transcript.lock().expect("transcript").join("\n")
    }

    /// The data directory (SQLite database, secrets file, master key).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Fails the test when any of `canaries` appears in the logs, in a response read
    /// through this harness, or in any file of the data directory.
    pub fn assert_nowhere(&self, canaries: &[&str]) {
        self.assert_not_logged_or_stored(canaries);
        let transcript = self.transcript();
        for canary in canaries {
            assert!(
                !transcript.contains(canary),
                "{canary} leaked into a response"
            );
        }
    }

    /// Fails the test when any of `secrets` appears in the logs or, in clear, in any
    /// file of the data directory: for credentials a response shows once by design.
    pub fn assert_not_logged_or_stored(&self, secrets: &[&str]) {
        let logs = self.logs();
        let files = files_under(self.data_dir());
        for secret in secrets {
            assert!(!logs.contains(secret), "{secret} leaked into the logs");
            for (path, bytes) in &files {
                assert!(
                    !contains_bytes(bytes, secret.as_bytes()),
                    "{secret} is stored in clear in {}",
                    path.display()
                );
            }
        }
    }

    /// Stops the process (SIGKILL is enough: acknowledged writes are already durable).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Patchbay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads every file under `dir` (recursively) as bytes, with its path.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files.push((path, bytes));
            }
        }
    }
    files
}

/// Whether `needle` occurs in `haystack`.
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window == needle)
}
