//! `cargo xtask test`: the whole suite, with what it needs built and started first.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Result};
use patchbay_testkit::services::{
    Service, CHROMIUM_VAR, HELM_PYTHON_VAR, MCP_PYTHON_VAR, MOTO_URL_VAR, OAUTH_ISSUER_VAR,
    OPENBAO_BINARY_VAR, PLAYWRIGHT_VAR, POSTGRES_URL_VAR, SCHEMATHESIS_VAR, VAULT_ADDR_VAR,
    VAULT_TOKEN_VAR,
};

use crate::groups::{self, Missing, REQUIRE_SERVICES_VAR};
use crate::workspace::Workspace;
use crate::{cargo, codegen, fuzz, generator_test, services, soak, target_dir};

/// Builds the binary the end-to-end tests drive, provides the services tests need
/// (a fresh PostgreSQL database, an OpenBao dev server, `oauth2-mock-server`, moto,
/// Helm's engine for the chart tests, Chromium with playwright-core for the page
/// test, schemathesis for the API fuzz test), then
/// runs every test in the workspace, and then, whatever their outcome, the check that
/// the files derived from descriptors are up to date (`codegen --check`) and the
/// generator test ([`generator_test`]), the soak at 1,000 deliveries
/// ([`soak::short_run`]) and a short run of every fuzz target ([`fuzz::short_run`])
/// when no extra arguments narrow the run. The services stop
/// and the database is dropped once the workspace tests end.
///
/// A service that cannot be provided fails the run at once when
/// `PATCHBAY_REQUIRE_SERVICES=1`; otherwise the tests needing it are left out and
/// listed after cargo's own summary.
pub fn run(extra: &[String]) -> Result<()> {
    let require = groups::require_services(std::env::var(REQUIRE_SERVICES_VAR).ok().as_deref())?;
    let target = target_dir();
    if let Some(warning) = free_bytes(&target).and_then(|free| disk_warning(free, &target)) {
        eprintln!("{warning}");
    }
    cargo(&["build", "--package", "patchbay-host", "--bin", "patchbay"])?;
    survive_interrupts();
    let mut missing = Vec::new();
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .args(["test", "--workspace", "--no-fail-fast"])
        .env("PATCHBAY_BIN", target.join("debug/patchbay"));

    let postgres = provide(
        Service::Postgres,
        require,
        &mut missing,
        services::postgres_database,
    )?;
    if let Some(database) = &postgres {
        eprintln!("PostgreSQL tests use {}", database.describe());
        command.env(POSTGRES_URL_VAR, &database.url);
    }
    let openbao = provide(Service::OpenBao, require, &mut missing, || {
        services::ensure_openbao().and_then(|binary| services::start_openbao(&binary))
    })?;
    if let Some(openbao) = &openbao {
        command
            .env(VAULT_ADDR_VAR, &openbao.addr)
            .env(VAULT_TOKEN_VAR, &openbao.root_token)
            .env(OPENBAO_BINARY_VAR, &openbao.binary);
    }
    let oauth_mock = provide(Service::OAuthMock, require, &mut missing, || {
        services::ensure_oauth_mock().and_then(|script| services::start_oauth_mock(&script))
    })?;
    if let Some(oauth_mock) = &oauth_mock {
        command.env(OAUTH_ISSUER_VAR, &oauth_mock.issuer);
    }

    let moto = provide(Service::Moto, require, &mut missing, || {
        services::ensure_moto().and_then(|dir| services::start_moto(&dir))
    })?;
    if let Some(moto) = &moto {
        command.env(MOTO_URL_VAR, &moto.url);
    }

    let helm = provide(Service::Helm, require, &mut missing, services::ensure_helm)?;
    if let Some(helm) = &helm {
        command.env(HELM_PYTHON_VAR, helm);
    }

    let mcp_client = provide(
        Service::McpClient,
        require,
        &mut missing,
        services::ensure_mcp_client,
    )?;
    if let Some(mcp_client) = &mcp_client {
        command.env(MCP_PYTHON_VAR, mcp_client);
    }

    let browser = provide(
        Service::Browser,
        require,
        &mut missing,
        services::ensure_browser,
    )?;
    if let Some(browser) = &browser {
        command
            .env(CHROMIUM_VAR, &browser.chromium)
            .env(PLAYWRIGHT_VAR, &browser.playwright);
    }

    let schemathesis = provide(
        Service::Schemathesis,
        require,
        &mut missing,
        services::ensure_schemathesis,
    )?;
    if let Some(schemathesis) = &schemathesis {
        command.env(SCHEMATHESIS_VAR, schemathesis);
    }

    command.args(groups::cargo_test_args(extra, &missing));
    stop_if_interrupted()?;
    let outcome = crate::run(&mut command);
    let soak_services = postgres.is_some() && openbao.is_some();
    drop((moto, oauth_mock, openbao, postgres));
    if let Some(summary) = groups::summary(&missing) {
        eprintln!("\n{summary}");
    }
    stop_if_interrupted()?;
    // What is derived from the descriptors (the README's connector table, the
    // index of docs/connectors/) must match them, as `cargo xtask ci` checks.
    let derived = if extra.is_empty() {
        codegen::run(&Workspace::current(), codegen::Mode::Check)
    } else {
        Ok(())
    };
    let generator = if extra.is_empty() {
        let started = Instant::now();
        let result = generator_test::run(&Workspace::current());
        eprintln!(
            "the generator test added {:.1} s to `cargo xtask test`",
            started.elapsed().as_secs_f64()
        );
        result
    } else {
        eprintln!(
            "the generator test runs only without extra arguments (or alone: `cargo xtask test-generator`)"
        );
        Ok(())
    };
    // The soak at 1,000 deliveries: faults under load on two replicas, which need
    // PostgreSQL and OpenBao (`cargo xtask soak` runs the full 10,000).
    let soaked = if !extra.is_empty() {
        eprintln!("the soak runs only without extra arguments (or alone: `cargo xtask soak`)");
        Ok(())
    } else if soak_services {
        let started = Instant::now();
        let result = soak::short_run();
        eprintln!(
            "the soak added {:.1} s to `cargo xtask test`",
            started.elapsed().as_secs_f64()
        );
        result
    } else {
        eprintln!("warning: the soak did not run: it needs PostgreSQL and OpenBao");
        Ok(())
    };
    // The fuzz targets, briefly: every committed seed, then whatever libFuzzer
    // reaches from them in a few seconds (`cargo xtask fuzz` runs longer).
    let fuzzing = if extra.is_empty() {
        let started = Instant::now();
        let result = fuzz::short_run();
        eprintln!(
            "the fuzz targets added {:.1} s to `cargo xtask test`",
            started.elapsed().as_secs_f64()
        );
        result
    } else {
        eprintln!(
            "the fuzz targets run only without extra arguments (or alone: `cargo xtask fuzz`)"
        );
        Ok(())
    };
    if let (Err(_), Err(derived)) = (&outcome, &derived) {
        eprintln!("the derived files are out of date too: {derived:#}");
    }
    let result = match (outcome.and(derived), generator) {
        (Err(tests), Err(generator)) => {
            eprintln!("the generator test failed too: {generator:#}");
            Err(tests)
        }
        (outcome, generator) => outcome.and(generator),
    };
    if let (Err(_), Err(soaked)) = (&result, &soaked) {
        eprintln!("the soak failed too: {soaked:#}");
    }
    let result = result.and(soaked);
    if let (Err(_), Err(fuzzing)) = (&result, &fuzzing) {
        eprintln!("the fuzz targets failed too: {fuzzing:#}");
    }
    result.and(fuzzing)
}

/// What a run from a clean checkout adds to the disk at its peak: the workspace's
/// build, the fuzz targets' build and the generated crate's build (measured on a
/// fresh clone: 23 GB).
const CLEAN_RUN_BYTES: u64 = 23_000_000_000;

/// The space free to this user on the disk that holds `path`, or on that of its
/// nearest existing parent (`target/` does not exist before the first build).
fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|dir| dir.exists())?;
    let stats = rustix::fs::statvfs(existing).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// A warning, printed before anything is built, when less is free on the disk that
/// holds `target` than a run from a clean checkout takes: a full disk otherwise shows
/// only late, deep in a build, as `No space left on device` or a linker's bus error.
fn disk_warning(free: u64, target: &Path) -> Option<String> {
    (free < CLEAN_RUN_BYTES).then(|| {
        format!(
            "warning: {:.1} GB free on the disk that holds {}; a run from a clean checkout \
             takes up to {} GB there (a warm build less). If a build fails with \
             \"No space left on device\", free space (old clones' target/ folders, \
             fuzz/target) and run again.",
            free as f64 / 1e9,
            target.display(),
            CLEAN_RUN_BYTES / 1_000_000_000,
        )
    })
}

/// Starts `service` with `start`. On failure: an error when every service is
/// required, otherwise `None` after recording why in `missing`.
fn provide<T>(
    service: Service,
    require: bool,
    missing: &mut Vec<Missing>,
    start: impl FnOnce() -> Result<T>,
) -> Result<Option<T>> {
    let started = start();
    stop_if_interrupted()?;
    match started {
        Ok(running) => Ok(Some(running)),
        Err(error) if require => Err(error.context(format!(
            "{service} is unavailable and {REQUIRE_SERVICES_VAR}=1 requires every service"
        ))),
        Err(error) => {
            let reason = format!("{error:#}");
            eprintln!("warning: {service} is unavailable, its tests will not run: {reason}");
            missing.push(Missing { service, reason });
            Ok(None)
        }
    }
}

/// Set once Ctrl-C was pressed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Fails when Ctrl-C was pressed, so an interrupted step is not taken for a missing service.
fn stop_if_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Keeps Ctrl-C from killing xtask before it cleans up: the processes it started
/// share its process group, get the signal and stop, then the services stop and the
/// database is dropped as on any other failure. A second Ctrl-C exits at once.
fn survive_interrupts() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            if tokio::signal::ctrl_c().await.is_ok() {
                INTERRUPTED.store(true, Ordering::SeqCst);
                eprintln!(
                    "interrupted: cleaning up once the tests stop (Ctrl-C again to quit now)"
                );
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_with_less_free_than_a_clean_run_takes_is_warned_about() {
        let target = Path::new("/build/target");
        let warning = disk_warning(4_500_000_000, target).expect("4.5 GB is short");
        assert!(
            warning.contains("4.5 GB free on the disk that holds /build/target"),
            "{warning}"
        );
        assert!(warning.contains("up to 23 GB"), "{warning}");
        assert!(warning.contains("No space left on device"), "{warning}");
        assert_eq!(disk_warning(CLEAN_RUN_BYTES, target), None);
    }

    #[test]
    fn free_space_is_read_from_the_nearest_existing_folder() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let missing = free_bytes(&dir.path().join("not/yet/built")).expect("read from the folder");
        let existing = free_bytes(dir.path()).expect("statvfs answers");
        // Other processes write meanwhile: the two readings agree to within 1 GB.
        assert!(
            missing > 0 && missing.abs_diff(existing) < 1_000_000_000,
            "{missing} {existing}"
        );
    }
}
