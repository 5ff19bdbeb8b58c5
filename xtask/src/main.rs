//! Project automation, run as `cargo xtask <command>`.

mod bench;
mod codegen;
mod fuzz;
mod generator_test;
mod groups;
mod new_connector;
mod services;
mod soak;
mod test;
mod workspace;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::workspace::Workspace;

/// Patchbay's project tasks.
#[derive(Parser)]
#[command(name = "xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Run the whole test suite, setting up (and tearing down) what it needs.
    Test {
        /// Extra arguments passed to `cargo test` (after `--`).
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// What CI checks: formatting, clippy, the derived tables, then the test suite.
    Ci,
    /// Generate a connector crate that builds and passes its contract suite as is.
    NewConnector(new_connector::NewConnector),
    /// Regenerate what is derived from the connector descriptors: the README's
    /// connector table and docs/connectors/README.md.
    Codegen {
        /// Only check that the derived files are up to date; fail naming those that are not.
        #[arg(long)]
        check: bool,
    },
    /// Run only the generator test (`cargo xtask test` runs it after the workspace tests).
    TestGenerator,
    /// Coverage-guided fuzzing with cargo-fuzz (libFuzzer, nightly): build every
    /// target of `fuzz/`, run each for a while and report executions and coverage.
    Fuzz(fuzz::Fuzz),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        bench: bench::Bench,
    },
    /// Webhook deliveries and connection changes on two replicas while a replica,
    /// PostgreSQL and OpenBao fail; checks nothing was lost, doubled or orphaned.
    Soak(soak::Soak),
    /// Internal: a bare HTTP endpoint answering 202, the benchmark's baseline.
    #[command(hide = true)]
    BareServer {
        /// Port to listen on (127.0.0.1).
        #[arg(long)]
        port: u16,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Task::Test { args } => test::run(&args),
        Task::Ci => {
            cargo(&["fmt", "--all", "--", "--check"])?;
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])?;
            // `test` checks the derived files too, after the tests.
            test::run(&[])
        }
        Task::NewConnector(options) => new_connector::run(&Workspace::current(), &options),
        Task::Codegen { check } => codegen::run(
            &Workspace::current(),
            if check {
                codegen::Mode::Check
            } else {
                codegen::Mode::Write
            },
        ),
        Task::TestGenerator => generator_test::run(&Workspace::current()),
        Task::Fuzz(options) => fuzz::run(&options),
        Task::Bench { bench } => bench::run(bench),
        Task::Soak(options) => soak::run(&options),
        Task::BareServer { port } => bench::bare_server(port),
    }
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_owned()
}

/// The cargo target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs cargo with arguments in the workspace root, failing on a non-zero exit.
pub fn cargo(args: &[&str]) -> Result<()> {
    run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args(args))
}

/// Runs a command, failing with its name on a non-zero exit.
pub fn run(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    eprintln!("$ {shown}");
    let status = command
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}
