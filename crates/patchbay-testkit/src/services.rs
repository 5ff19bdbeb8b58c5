//! The local services some tests run against — PostgreSQL, an OpenBao dev server,
//! `oauth2-mock-server`, the moto AWS emulator, Helm's engine, a browser, the
//! schemathesis API fuzzer — found through the variables `cargo xtask test` sets.
//!
//! A test that needs a service asks for it here. When the service is missing the
//! test fails with a message naming the service, the variable and how to provide
//! it, so it can never report `ok` without having run. `cargo xtask test` leaves
//! out (and lists at the end) the tests whose service it could not start; for that
//! such tests carry their group in their name (see `xtask/src/groups.rs`).

use std::fmt;
use std::path::PathBuf;

/// A PostgreSQL URL the tests may create databases and schemas from.
pub const POSTGRES_URL_VAR: &str = "PATCHBAY_TEST_DATABASE_URL";
/// The base URL of the shared OpenBao dev server (KV v2 mounted at `patchbay`).
pub const VAULT_ADDR_VAR: &str = "PATCHBAY_TEST_VAULT_ADDR";
/// The root token of the shared OpenBao dev server.
pub const VAULT_TOKEN_VAR: &str = "PATCHBAY_TEST_VAULT_TOKEN";
/// The `bao` binary, for tests that start (and stop) servers of their own.
pub const OPENBAO_BINARY_VAR: &str = "PATCHBAY_BAO_BIN";
/// The issuer URL of the running `oauth2-mock-server`.
pub const OAUTH_ISSUER_VAR: &str = "PATCHBAY_TEST_OAUTH_ISSUER";
/// The base URL of the running moto server (an AWS emulator).
pub const MOTO_URL_VAR: &str = "PATCHBAY_TEST_MOTO_URL";
/// The directory holding `helm_python` (PyPI `helm-python-sdk`, Helm's Go library
/// behind a Python binding), to put on `PYTHONPATH` to lint and render charts.
pub const HELM_PYTHON_VAR: &str = "PATCHBAY_TEST_HELM_PYTHON";
/// The directory holding the official MCP Python SDK (PyPI `mcp`), to put on
/// `PYTHONPATH` to drive Patchbay's MCP server with a real client.
pub const MCP_PYTHON_VAR: &str = "PATCHBAY_TEST_MCP_PYTHON";

/// The directory holding schemathesis (PyPI), to put on `PYTHONPATH` to fuzz the API
/// against its own OpenAPI document.
pub const SCHEMATHESIS_VAR: &str = "PATCHBAY_TEST_SCHEMATHESIS";

/// Debian's Chromium binary, for tests that drive the Connectors page in a browser.
pub const CHROMIUM_VAR: &str = "PATCHBAY_TEST_CHROMIUM";
/// The `node_modules` holding npm's `playwright-core`, which drives that Chromium.
pub const PLAYWRIGHT_VAR: &str = "PATCHBAY_TEST_PLAYWRIGHT";

/// A service some tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// A PostgreSQL server.
    Postgres,
    /// An OpenBao (Vault-compatible) dev server and its `bao` binary.
    OpenBao,
    /// `oauth2-mock-server`, a standards-following OAuth 2.0 provider.
    OAuthMock,
    /// moto, an emulator of the AWS APIs (`moto[server]` from PyPI).
    Moto,
    /// Helm's chart engine (`helm-python-sdk` from PyPI), for lint and render.
    Helm,
    /// The official MCP client (the `mcp` Python SDK from PyPI).
    McpClient,
    /// A real browser: Debian's headless Chromium driven by npm's `playwright-core`.
    Browser,
    /// schemathesis (from PyPI), which fuzzes the API against its OpenAPI document.
    Schemathesis,
}

impl Service {
    /// The service's name as people know it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::OpenBao => "OpenBao",
            Self::OAuthMock => "oauth2-mock-server",
            Self::Moto => "moto",
            Self::Helm => "Helm (helm-python-sdk)",
            Self::McpClient => "the MCP Python SDK (mcp)",
            Self::Browser => "Chromium with playwright-core",
            Self::Schemathesis => "schemathesis",
        }
    }

    /// The variables through which tests find the service.
    pub fn variables(self) -> &'static [&'static str] {
        match self {
            Self::Postgres => &[POSTGRES_URL_VAR],
            Self::OpenBao => &[VAULT_ADDR_VAR, VAULT_TOKEN_VAR, OPENBAO_BINARY_VAR],
            Self::OAuthMock => &[OAUTH_ISSUER_VAR],
            Self::Moto => &[MOTO_URL_VAR],
            Self::Helm => &[HELM_PYTHON_VAR],
            Self::McpClient => &[MCP_PYTHON_VAR],
            Self::Browser => &[CHROMIUM_VAR, PLAYWRIGHT_VAR],
            Self::Schemathesis => &[SCHEMATHESIS_VAR],
        }
    }

    /// What `cargo xtask test` does to provide the service.
    fn provided_by_xtask(self) -> &'static str {
        match self {
            Self::Postgres => {
                "creates a fresh database on the local PostgreSQL server \
                 (127.0.0.1:5432, user postgres) and drops it afterwards"
            }
            Self::OpenBao => "installs OpenBao under .tools/ and starts a dev server",
            Self::OAuthMock => "installs oauth2-mock-server under .tools/ and starts it",
            Self::Moto => "installs moto[server] under .tools/ and starts it",
            Self::Helm => "installs helm-python-sdk under .tools/helm",
            Self::McpClient => "installs the mcp Python SDK under .tools/mcp",
            Self::Browser => {
                "installs Debian's chromium package and playwright-core under .tools/browser"
            }
            Self::Schemathesis => "installs schemathesis under .tools/schemathesis",
        }
    }

    /// How to point the tests at a service of one's own.
    fn provided_by_hand(self) -> &'static str {
        match self {
            Self::Postgres => {
                "set PATCHBAY_TEST_DATABASE_URL to a database the tests may create \
                 databases and schemas from, e.g. postgres://postgres@127.0.0.1:5432/postgres"
            }
            Self::OpenBao => {
                "set PATCHBAY_TEST_VAULT_ADDR and PATCHBAY_TEST_VAULT_TOKEN to a dev \
                 server with KV v2 mounted at `patchbay`, and PATCHBAY_BAO_BIN to its `bao` binary"
            }
            Self::OAuthMock => {
                "set PATCHBAY_TEST_OAUTH_ISSUER to the issuer URL of an oauth2-mock-server \
                 started with xtask/assets/oauth-mock-server.mjs"
            }
            Self::Moto => {
                "set PATCHBAY_TEST_MOTO_URL to the base URL of a moto server \
                 (`python3 -m moto.server -H 127.0.0.1 -p 5000`)"
            }
            Self::Helm => {
                "set PATCHBAY_TEST_HELM_PYTHON to a directory holding helm_python \
                 (`python3 -m pip install --target DIR helm-python-sdk`)"
            }
            Self::McpClient => {
                "set PATCHBAY_TEST_MCP_PYTHON to a directory holding the mcp package \
                 (`python3 -m pip install --target DIR mcp`)"
            }
            Self::Browser => {
                "set PATCHBAY_TEST_CHROMIUM to a Chromium binary (`apt-get install chromium`) \
                 and PATCHBAY_TEST_PLAYWRIGHT to a node_modules holding playwright-core \
                 (`npm install --prefix DIR playwright-core`)"
            }
            Self::Schemathesis => {
                "set PATCHBAY_TEST_SCHEMATHESIS to a directory holding the schemathesis package \
                 (`python3 -m pip install --target DIR schemathesis`)"
            }
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The shared OpenBao dev server.
#[derive(Clone)]
pub struct Vault {
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub addr: String,
    /// Its root token.
    pub token: String,
}

impl fmt::Debug for Vault {
    // The token grants everything on the server: print its address only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("addr", &self.addr)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// The PostgreSQL URL from `PATCHBAY_TEST_DATABASE_URL`; panics naming the fix when unset.
#[track_caller]
pub fn postgres_url() -> String {
    require(Service::Postgres, POSTGRES_URL_VAR, process_env)
}

/// The shared OpenBao dev server; panics naming the fix when it is not configured.
#[track_caller]
pub fn vault() -> Vault {
    Vault {
        addr: require(Service::OpenBao, VAULT_ADDR_VAR, process_env),
        token: require(Service::OpenBao, VAULT_TOKEN_VAR, process_env),
    }
}

/// The `bao` binary from `PATCHBAY_BAO_BIN`; panics naming the fix when unset.
#[track_caller]
pub fn openbao_binary() -> PathBuf {
    PathBuf::from(require(Service::OpenBao, OPENBAO_BINARY_VAR, process_env))
}

/// The mock OAuth provider's issuer URL (no trailing slash); panics naming the fix when unset.
#[track_caller]
pub fn oauth_issuer() -> String {
    require(Service::OAuthMock, OAUTH_ISSUER_VAR, process_env)
        .trim_end_matches('/')
        .to_owned()
}

/// The moto server's base URL (no trailing slash); panics naming the fix when unset.
#[track_caller]
pub fn moto_url() -> String {
    require(Service::Moto, MOTO_URL_VAR, process_env)
        .trim_end_matches('/')
        .to_owned()
}

/// The directory holding `helm_python`; panics naming the fix when unset.
#[track_caller]
pub fn helm_python() -> PathBuf {
    PathBuf::from(require(Service::Helm, HELM_PYTHON_VAR, process_env))
}

/// The directory holding the `mcp` Python SDK; panics naming the fix when unset.
#[track_caller]
pub fn mcp_python() -> PathBuf {
    PathBuf::from(require(Service::McpClient, MCP_PYTHON_VAR, process_env))
}

/// The directory holding schemathesis; panics naming the fix when unset.
#[track_caller]
pub fn schemathesis_python() -> PathBuf {
    PathBuf::from(require(
        Service::Schemathesis,
        SCHEMATHESIS_VAR,
        process_env,
    ))
}

/// A browser for the page tests: Chromium, and `playwright-core` to drive it.
#[derive(Clone, Debug)]
pub struct Browser {
    /// The Chromium binary.
    pub chromium: PathBuf,
    /// The `node_modules` holding `playwright-core`, for `NODE_PATH`.
    pub playwright: PathBuf,
}

/// Chromium and `playwright-core`; panics naming the fix when either is unset.
#[track_caller]
pub fn browser() -> Browser {
    Browser {
        chromium: PathBuf::from(require(Service::Browser, CHROMIUM_VAR, process_env)),
        playwright: PathBuf::from(require(Service::Browser, PLAYWRIGHT_VAR, process_env)),
    }
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The trimmed value of `variable`, or a panic with [`missing_message`].
#[track_caller]
fn require(service: Service, variable: &str, read: impl Fn(&str) -> Option<String>) -> String {
    match lookup(variable, read) {
        Some(value) => value,
        None => panic!("{}", missing_message(service, variable)),
    }
}

/// A variable's trimmed value; blank counts as unset.
fn lookup(variable: &str, read: impl Fn(&str) -> Option<String>) -> Option<String> {
    read(variable)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// What a test that needs a missing service fails with.
pub fn missing_message(service: Service, variable: &str) -> String {
    format!(
        "this test needs {service}, but {variable} is not set. Run `cargo xtask test`, which {}; \
         or {}.",
        service.provided_by_xtask(),
        service.provided_by_hand(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        }
    }

    #[test]
    fn a_set_variable_is_returned_trimmed() {
        let read = env(&[(POSTGRES_URL_VAR, " postgres://127.0.0.1/x \n")]);
        assert_eq!(
            require(Service::Postgres, POSTGRES_URL_VAR, read),
            "postgres://127.0.0.1/x"
        );
    }

    #[test]
    fn a_missing_service_fails_naming_it_the_variable_and_the_fix() {
        for read in [env(&[]), env(&[(POSTGRES_URL_VAR, "  ")])] {
            let panic =
                std::panic::catch_unwind(|| require(Service::Postgres, POSTGRES_URL_VAR, read))
                    .expect_err("a missing PostgreSQL must fail the test");
            let message = panic
                .downcast_ref::<String>()
                .expect("the panic carries a message");
            assert_eq!(
                message,
                &missing_message(Service::Postgres, POSTGRES_URL_VAR)
            );
        }
        assert_eq!(
            missing_message(Service::Postgres, POSTGRES_URL_VAR),
            "this test needs PostgreSQL, but PATCHBAY_TEST_DATABASE_URL is not set. Run \
             `cargo xtask test`, which creates a fresh database on the local PostgreSQL server \
             (127.0.0.1:5432, user postgres) and drops it afterwards; or set \
             PATCHBAY_TEST_DATABASE_URL to a database the tests may create databases and \
             schemas from, e.g. postgres://postgres@127.0.0.1:5432/postgres."
        );
    }

    #[test]
    fn every_service_message_names_its_variable_and_cargo_xtask_test() {
        for service in [
            Service::Postgres,
            Service::OpenBao,
            Service::OAuthMock,
            Service::Moto,
            Service::Helm,
            Service::McpClient,
            Service::Browser,
            Service::Schemathesis,
        ] {
            for variable in service.variables() {
                let message = missing_message(service, variable);
                assert!(message.contains(service.name()), "{message}");
                assert!(
                    message.contains(&format!("but {variable} is not set")),
                    "{message}"
                );
                assert!(
                    message.contains("Run `cargo xtask test`, which "),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn the_vault_token_never_prints() {
        let vault = Vault {
            addr: "http://127.0.0.1:8200".into(),
            token: "root-canary-token".into(),
        };
        let printed = format!("{vault:?}");
        assert!(!printed.contains("root-canary-token"), "{printed}");
        assert!(printed.contains("http://127.0.0.1:8200"), "{printed}");
    }
}
