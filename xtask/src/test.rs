//! `cargo xtask test`: the whole suite, with what it needs built first.

use std::process::Command;

use anyhow::Result;

use crate::{cargo, services, target_dir, workspace_root};

/// Builds the binary the end-to-end tests drive, starts the services tests need
/// (an OpenBao dev server and `oauth2-mock-server`), then runs every test in the
/// workspace; the services stop when this returns.
pub fn run(extra: &[String]) -> Result<()> {
    cargo(&["build", "--package", "patchbay-host", "--bin", "patchbay"])?;
    let openbao = services::ensure_openbao().and_then(|binary| services::start_openbao(&binary))?;
    let oauth_mock =
        services::ensure_oauth_mock().and_then(|script| services::start_oauth_mock(&script))?;
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env("PATCHBAY_BIN", target_dir().join("debug/patchbay"))
        .env("PATCHBAY_TEST_VAULT_ADDR", &openbao.addr)
        .env("PATCHBAY_TEST_VAULT_TOKEN", &openbao.root_token)
        .env("PATCHBAY_BAO_BIN", &openbao.binary)
        .env("PATCHBAY_TEST_OAUTH_ISSUER", &oauth_mock.issuer);
    let reference = workspace_root().join("../shared/reference");
    if std::env::var_os("PATCHBAY_REFERENCE_DIR").is_none() && reference.exists() {
        command.env("PATCHBAY_REFERENCE_DIR", reference);
    }
    crate::run(&mut command)
}
