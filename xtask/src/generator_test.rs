//! The generator's own test, run by `cargo xtask test` after the workspace tests.
//!
//! It copies the checkout's tracked files to a temporary directory and, there,
//! generates connectors the way a contributor would, then holds them to what the
//! generator promises: clippy with `-D warnings` and the connector's tests pass with
//! no edits, the derived tables are up to date, and a second run refuses and leaves
//! every file as it was. It also generates an out-of-tree crate that builds against
//! the checkout and passes its contract test. Builds reuse the checkout's target
//! directory, so only the crates that differ are compiled.
//!
//! The connectors cover the option space: `acme` (API key, HMAC-signed webhooks),
//! `acme-oauth` (OAuth only, token webhooks),
//! `acme-public` (no credentials) and, out of tree, `acme-outside` (API key or
//! user name and password, token webhooks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};

use crate::codegen;
use crate::new_connector::{self, AuthArg, NewConnector, WebhookArg};
use crate::workspace::{cargo_program, run_here, Workspace};

/// Runs the whole generator test against the checkout `source`.
pub fn run(source: &Workspace) -> Result<()> {
    let started = Instant::now();
    let scratch = tempfile::tempdir().context("creating a temporary directory")?;
    let outcome = run_in(source, scratch.path());
    // The copy's builds leave its `patchbay` binary (with the generated connectors)
    // in the shared target directory; build the checkout's again so it is the one there.
    let restored = source.build_patchbay();
    let to_contract = outcome?;
    restored?;
    eprintln!(
        "generator test: passed in {}; `new-connector acme` to its passing contract suite took {}",
        seconds(started.elapsed()),
        seconds(to_contract)
    );
    Ok(())
}

/// The generator test in the scratch directory `scratch`; returns how long `acme`
/// took from generation to its contract suite passing.
fn run_in(source: &Workspace, scratch: &Path) -> Result<Duration> {
    let copy = Workspace {
        root: scratch.join("patchbay"),
        target: source.target.clone(),
    };
    copy_tracked_files(&source.root, &copy.root)?;
    eprintln!(
        "generator test: copied the tracked files to {}",
        copy.root.display()
    );

    let mut acme = NewConnector::with_id("acme");
    acme.webhook = WebhookArg::Hmac;
    let to_contract = generate_and_check(&copy, &acme)?;
    codegen::run(&copy, codegen::Mode::Check)?;
    second_run_changes_nothing(&copy, &acme)?;

    let mut oauth = NewConnector::with_id("acme-oauth");
    oauth.name = Some("Acme OAuth".to_owned());
    oauth.category = new_connector::CategoryArg::Communication;
    oauth.auth = vec![AuthArg::Oauth];
    oauth.webhook = WebhookArg::Token;
    generate_and_check(&copy, &oauth)?;
    // An OAuth connector declares its client variables; .env.example must name them.
    copy.cargo(&[
        "test",
        "--package",
        "patchbay-host",
        "--test",
        "env_example",
    ])?;

    let mut public = NewConnector::with_id("acme-public");
    public.auth = vec![AuthArg::None];
    generate_and_check(&copy, &public)?;
    codegen::run(&copy, codegen::Mode::Check)?;

    out_of_tree(&copy, scratch)?;
    Ok(to_contract)
}

/// Generates `options` in `copy`, then runs clippy and the connector's tests;
/// returns the time from generating to the contract suite passing.
fn generate_and_check(copy: &Workspace, options: &NewConnector) -> Result<Duration> {
    let package = format!("patchbay-connector-{}", options.id);
    let started = Instant::now();
    new_connector::run(copy, options)?;
    copy.cargo(&["test", "--package", &package, "--test", "contract"])?;
    let to_contract = started.elapsed();
    eprintln!(
        "generator test: `new-connector {}` to its passing contract suite: {}",
        options.id,
        seconds(to_contract)
    );
    copy.cargo(&[
        "clippy",
        "--package",
        &package,
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    copy.cargo(&["test", "--package", &package])?;
    Ok(to_contract)
}

/// A second `new-connector` with the same id must refuse and change no file.
fn second_run_changes_nothing(copy: &Workspace, options: &NewConnector) -> Result<()> {
    let before = snapshot(&copy.root)?;
    let Err(refusal) = new_connector::run(copy, options) else {
        bail!(
            "a second `new-connector {}` succeeded; it must refuse",
            options.id
        );
    };
    let message = format!("{refusal:#}");
    ensure!(
        message.contains("already exists") && message.contains("nothing was written"),
        "the second `new-connector {}` refused without naming the rule: {message}",
        options.id
    );
    let after = snapshot(&copy.root)?;
    ensure!(
        before == after,
        "the refused `new-connector {}` changed {}",
        options.id,
        changed_paths(&before, &after).join(", ")
    );
    eprintln!(
        "generator test: a second `new-connector {}` refused and changed nothing",
        options.id
    );
    Ok(())
}

/// An out-of-tree crate in `scratch` that depends on `copy` by path builds and
/// passes its contract test, and generating it changes nothing in `copy`.
fn out_of_tree(copy: &Workspace, scratch: &Path) -> Result<()> {
    let dir = scratch.join("outside/acme-outside");
    let before = snapshot(&copy.root)?;
    let mut options = NewConnector::with_id("acme-outside");
    options.auth = vec![AuthArg::ApiKey, AuthArg::Basic];
    options.webhook = WebhookArg::Token;
    options.out_of_tree = Some(dir.clone());
    new_connector::run(copy, &options)?;
    ensure!(
        before == snapshot(&copy.root)?,
        "--out-of-tree changed files of the workspace: {}",
        changed_paths(&before, &snapshot(&copy.root)?).join(", ")
    );
    // The workspace's lock file, so the crate builds with the versions already compiled.
    std::fs::copy(copy.path("Cargo.lock"), dir.join("Cargo.lock"))
        .context("copying Cargo.lock next to the out-of-tree crate")?;
    let mut command = Command::new(cargo_program());
    command
        .args(["test", "--test", "contract"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &copy.target);
    run_here(&mut command)?;
    eprintln!("generator test: the out-of-tree crate passes its contract suite");
    Ok(())
}

/// Copies the files git tracks under `from` (as they are on disk) to `to`.
fn copy_tracked_files(from: &Path, to: &Path) -> Result<()> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(from)
        .output()
        .context("running git ls-files")?;
    ensure!(
        output.status.success(),
        "git ls-files failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for relative in output.stdout.split(|byte| *byte == 0) {
        if relative.is_empty() {
            continue;
        }
        let relative = PathBuf::from(String::from_utf8_lossy(relative).into_owned());
        let source = from.join(&relative);
        // A tracked file deleted in the work tree is left out, as a build would see it.
        if !source.is_file() {
            continue;
        }
        let destination = to.join(&relative);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::copy(&source, &destination)
            .with_context(|| format!("copying {}", relative.display()))?;
    }
    Ok(())
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> Result<BTreeMap<PathBuf, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                files.insert(path.strip_prefix(root)?.to_path_buf(), bytes);
            }
        }
    }
    Ok(files)
}

/// The paths whose presence or content differ between two snapshots.
fn changed_paths(
    before: &BTreeMap<PathBuf, Vec<u8>>,
    after: &BTreeMap<PathBuf, Vec<u8>>,
) -> Vec<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|path| before.get(*path) != after.get(*path))
        .map(|path| path.display().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}
