//! `cargo xtask fuzz`: coverage-guided fuzzing with cargo-fuzz (libFuzzer).
//!
//! Builds every target of `fuzz/` once with `cargo +nightly fuzz build`, then runs
//! each for a while (`--time`) or for a number of executions (`--runs`) from a
//! scratch copy of its committed seeds (under the cargo target directory, so git
//! stays clean) and prints what libFuzzer reports: executions, seconds,
//! executions per second, coverage (`cov` edges and `ft` features), corpus size
//! and crashes. Any crash fails the run, naming its artifact.
//! cargo-fuzz is installed under `.tools/cargo-fuzz` when it is missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{target_dir, workspace_root};

/// The cargo-fuzz release installed under `.tools/cargo-fuzz`.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// The toolchain libFuzzer's instrumentation needs.
const TOOLCHAIN: &str = "nightly";

/// How long each target runs in `cargo xtask test`.
pub const SHORT_RUN_SECONDS: u64 = 5;

/// The build of long runs: optimised with debug assertions and overflow checks,
/// no sanitizer (the workspace forbids `unsafe`; Rust checks bounds itself), and
/// 16 codegen units, which keeps a cold build of the connectors shorter.
const RELEASE_BUILD: &[&str] = &[
    "-O",
    "--debug-assertions",
    "--sanitizer",
    "none",
    "--codegen-units",
    "16",
];

/// The build of short runs (`--dev`): unoptimised, which shortens a cold build,
/// with debug assertions and no sanitizer.
const DEV_BUILD: &[&str] = &["--dev", "--debug-assertions", "--sanitizer", "none"];

/// Options of `cargo xtask fuzz`.
#[derive(clap::Args, Debug, Clone)]
pub struct Fuzz {
    /// Seconds each target runs (at most, with `--runs`); at least 1, since
    /// libFuzzer reads `-max_total_time=0` as no limit.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub time: u64,
    /// Stop each target once its processes have run this many inputs in all
    /// (`cargo xtask fuzz --runs 10000000 --time 3600` for the long-run goal).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// Run only this target (repeat for several); all of `fuzz/fuzz_targets` by default.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
    /// libFuzzer processes per target, sharing its corpus; at least 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,
    /// Print the table as Markdown, for docs/reliability.md.
    #[arg(long)]
    pub markdown: bool,
    /// Build without optimisations: a shorter cold build, fewer executions per
    /// second (what `cargo xtask test` uses).
    #[arg(long)]
    pub dev: bool,
}

impl Fuzz {
    /// How long each target runs, as the progress line and the Markdown table say it:
    /// `60 s`, or `until 10000000 executions in all (at most 1500 s)`.
    fn length(&self) -> String {
        match self.runs {
            Some(runs) => format!("until {runs} executions in all (at most {} s)", self.time),
            None => format!("{} s", self.time),
        }
    }
}

/// What one target's run reported.
#[derive(Debug, Default, Clone, PartialEq)]
struct Figures {
    executions: u64,
    seconds: u64,
    execs_per_second: u64,
    coverage: u64,
    features: u64,
    corpus: usize,
    crashes: Vec<PathBuf>,
}

/// Runs `cargo xtask fuzz` with `options`.
pub fn run(options: &Fuzz) -> Result<()> {
    let fuzz_dir = workspace_root().join("fuzz");
    let targets = select_targets(&fuzz_dir, &options.targets)?;
    let cargo_fuzz = ensure_cargo_fuzz()?;
    let started = Instant::now();
    build(&cargo_fuzz, &fuzz_dir, options.dev)?;
    eprintln!(
        "built the fuzz targets in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let binaries = binaries_dir(&fuzz_dir, options.dev)?;
    let work = target_dir().join("fuzz");
    let mut results = Vec::new();
    for target in &targets {
        let figures = run_target(&fuzz_dir, &binaries.join(target), &work, target, options)?;
        results.push((target.clone(), figures));
    }
    println!("{}", table(&results, options, options.markdown));
    let crashed: Vec<String> = results
        .iter()
        .flat_map(|(target, figures)| {
            figures
                .crashes
                .iter()
                .map(move |artifact| format!("{target}: {}", artifact.display()))
        })
        .collect();
    if !crashed.is_empty() {
        bail!(
            "the fuzzer found {} crash(es):\n{}\nreplay one with `{}/<target> <artifact>`; once fixed, \
             keep it as a regression under fuzz/regressions/<target>/",
            crashed.len(),
            crashed.join("\n"),
            binaries.display()
        );
    }
    eprintln!(
        "fuzzing took {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The short form `cargo xtask test` runs: every target for [`SHORT_RUN_SECONDS`].
pub fn short_run() -> Result<()> {
    run(&Fuzz {
        time: SHORT_RUN_SECONDS,
        runs: None,
        targets: Vec::new(),
        jobs: 1,
        markdown: false,
        dev: true,
    })
}

/// The targets to run: `wanted`, each checked against `fuzz/fuzz_targets`, or all.
fn select_targets(fuzz_dir: &Path, wanted: &[String]) -> Result<Vec<String>> {
    let sources = fuzz_dir.join("fuzz_targets");
    let mut all: Vec<String> = fs::read_dir(&sources)
        .with_context(|| format!("listing {}", sources.display()))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    all.sort();
    if wanted.is_empty() {
        return Ok(all);
    }
    for name in wanted {
        if !all.contains(name) {
            bail!(
                "no fuzz target `{name}`; the targets are: {}",
                all.join(", ")
            );
        }
    }
    Ok(wanted.to_vec())
}

/// `.tools/cargo-fuzz/bin/cargo-fuzz`, installed from crates.io when that release
/// is not there yet.
fn ensure_cargo_fuzz() -> Result<PathBuf> {
    let root = workspace_root().join(".tools/cargo-fuzz");
    let binary = root.join("bin/cargo-fuzz");
    let installed = Command::new(&binary)
        .arg("--version")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned());
    let current = installed
        .as_deref()
        .is_some_and(|version| version.contains(&format!("cargo-fuzz {CARGO_FUZZ_VERSION}")));
    if !current {
        crate::run(
            Command::new("cargo")
                .env_remove("CARGO_TARGET_DIR")
                .args(["install", "cargo-fuzz", "--locked", "--version"])
                .arg(CARGO_FUZZ_VERSION)
                .arg("--root")
                .arg(&root),
        )
        .context("installing cargo-fuzz from crates.io")?;
    }
    Ok(binary)
}

/// cargo-fuzz run with the nightly toolchain: it calls `cargo`, which rustup
/// resolves through `RUSTUP_TOOLCHAIN`.
fn cargo_fuzz(cargo_fuzz: &Path, fuzz_dir: &Path) -> Command {
    let mut command = Command::new(cargo_fuzz);
    command
        .arg("fuzz")
        .current_dir(fuzz_dir)
        .env("RUSTUP_TOOLCHAIN", TOOLCHAIN)
        .env_remove("CARGO")
        .env_remove("RUSTC");
    command
}

/// Builds every target in one `cargo fuzz build`.
fn build(cargo_fuzz_binary: &Path, fuzz_dir: &Path, dev: bool) -> Result<()> {
    let mut command = cargo_fuzz(cargo_fuzz_binary, fuzz_dir);
    command
        .arg("build")
        .args(if dev { DEV_BUILD } else { RELEASE_BUILD });
    let shown = format!("{command:?}");
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!(
            "{shown} failed with {status}; it needs the {TOOLCHAIN} toolchain \
             (`rustup toolchain install {TOOLCHAIN}`)"
        );
    }
    Ok(())
}

/// Where cargo-fuzz puts the target binaries: `fuzz/target/<host triple>/release`
/// (`debug` for `--dev` builds).
fn binaries_dir(fuzz_dir: &Path, dev: bool) -> Result<PathBuf> {
    let output = Command::new("rustc")
        .env("RUSTUP_TOOLCHAIN", TOOLCHAIN)
        .arg("-vV")
        .output()
        .context("asking rustc for the host triple")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let host = text
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .context("rustc -vV names no host")?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fuzz_dir.join("target"));
    Ok(target
        .join(host)
        .join(if dev { "debug" } else { "release" }))
}

/// Runs one target for `options.time` seconds in `options.jobs` processes that
/// share a fresh working corpus made of the committed seeds.
fn run_target(
    fuzz_dir: &Path,
    binary: &Path,
    work: &Path,
    target: &str,
    options: &Fuzz,
) -> Result<Figures> {
    let corpus = work.join("corpus").join(target);
    let artifacts = work.join("artifacts").join(target);
    let logs = work.join("logs");
    for dir in [&corpus, &artifacts] {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("emptying {}", dir.display()))?;
        }
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let seeds = fuzz_dir.join("corpus").join(target);
    for seed in fs::read_dir(&seeds).with_context(|| format!("listing {}", seeds.display()))? {
        let seed = seed?.path();
        if seed.is_file() {
            fs::copy(
                &seed,
                corpus.join(seed.file_name().context("a seed has a name")?),
            )
            .with_context(|| format!("copying {}", seed.display()))?;
        }
    }
    let jobs = options.jobs;
    let runs_per_job = options.runs.map(|runs| runs.div_ceil(u64::from(jobs)));
    eprintln!(
        "fuzzing {target}, {}, {jobs} job{}",
        options.length(),
        if jobs == 1 { "" } else { "s" }
    );
    let mut processes: Vec<(Child, PathBuf)> = Vec::new();
    for job in 0..jobs {
        let log = logs.join(format!("{target}-{job}.log"));
        let file = fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(binary);
        if let Some(runs) = runs_per_job {
            command.arg(format!("-runs={runs}"));
        }
        let child = command
            .arg(&corpus)
            .arg(format!("-max_total_time={}", options.time))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        processes.push((child, log));
    }
    let mut figures = Figures::default();
    let mut failed = Vec::new();
    for (mut child, log) in processes {
        let status = child.wait()?;
        let text =
            fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        let job = parse_log(&text);
        figures.executions += job.executions;
        figures.seconds = figures.seconds.max(job.seconds);
        figures.execs_per_second += job.execs_per_second;
        figures.coverage = figures.coverage.max(job.coverage);
        figures.features = figures.features.max(job.features);
        figures.crashes.extend(job.crashes);
        if !status.success() {
            failed.push(log);
        }
    }
    figures.corpus = fs::read_dir(&corpus)?.count();
    figures.crashes.sort();
    figures.crashes.dedup();
    if figures.crashes.is_empty() {
        if let Some(log) = failed.first() {
            bail!(
                "{target} stopped without a crash artifact; see {}",
                log.display()
            );
        }
    }
    Ok(figures)
}

/// The figures in a libFuzzer log: the final stats (`-print_final_stats=1`), the
/// coverage of the last status line, and the artifacts it wrote.
fn parse_log(text: &str) -> Figures {
    let mut figures = Figures::default();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("stat::number_of_executed_units:") {
            figures.executions = value.trim().parse().unwrap_or(0);
        } else if let Some(seconds) = line
            .strip_prefix("Done ")
            .and_then(|rest| rest.split_once(" runs in "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
        {
            figures.seconds = seconds.parse().unwrap_or(0);
        } else if let Some(value) = line.strip_prefix("stat::average_exec_per_sec:") {
            figures.execs_per_second = value.trim().parse().unwrap_or(0);
        } else if line.starts_with('#') && line.contains(" cov: ") {
            figures.coverage = field(line, "cov:").unwrap_or(figures.coverage);
            figures.features = field(line, "ft:").unwrap_or(figures.features);
        } else if let Some((_, path)) = line.split_once("Test unit written to ") {
            figures.crashes.push(PathBuf::from(path.trim()));
        }
    }
    figures
}

/// The number after `name` in a libFuzzer status line (`cov: 1234`).
fn field(line: &str, name: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    words.find(|word| *word == name)?;
    words.next()?.parse().ok()
}

/// The results as a text or Markdown table.
fn table(results: &[(String, Figures)], options: &Fuzz, markdown: bool) -> String {
    let header = [
        "target",
        "executions",
        "seconds",
        "exec/s",
        "cov",
        "ft",
        "corpus",
        "crashes",
    ];
    let rows: Vec<[String; 8]> = results
        .iter()
        .map(|(target, figures)| {
            [
                target.clone(),
                figures.executions.to_string(),
                figures.seconds.to_string(),
                figures.execs_per_second.to_string(),
                figures.coverage.to_string(),
                figures.features.to_string(),
                figures.corpus.to_string(),
                figures.crashes.len().to_string(),
            ]
        })
        .collect();
    let mut out = String::new();
    if markdown {
        out.push_str(&format!(
            "Each target ran {} with {} libFuzzer process(es), {} build.\n\n",
            options.length(),
            options.jobs,
            if options.dev {
                "unoptimised"
            } else {
                "optimised"
            }
        ));
        out.push_str(&format!("| {} |\n", header.join(" | ")));
        out.push_str(&format!("|---|{}\n", "---:|".repeat(header.len() - 1)));
        for row in &rows {
            out.push_str(&format!("| `{}` | {} |\n", row[0], row[1..].join(" | ")));
        }
        return out;
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            rows.iter()
                .map(|row| row[column].len())
                .chain([header[column].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                if column == 0 {
                    format!("{cell:<width$}", width = widths[column])
                } else {
                    format!("{cell:>width$}", width = widths[column])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    out.push_str(&line(header.to_vec()));
    for row in &rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
INFO: Running with entropic power schedule (0xFF, 100).
#2\tINITED cov: 812 ft: 1024 corp: 9/3012b exec/s: 0 rss: 41Mb
#4096\tpulse  cov: 900 ft: 1500 corp: 30/9Kb lim: 4096 exec/s: 2048 rss: 45Mb
#812345\tDONE   cov: 1203 ft: 4410 corp: 210/61Kb lim: 4096 exec/s: 81234 rss: 60Mb
Done 812345 runs in 11 second(s)
stat::number_of_executed_units: 812345
stat::average_exec_per_sec:     73849
stat::new_units_added:          420
";

    #[test]
    fn the_final_stats_and_the_last_coverage_are_read() {
        let figures = parse_log(LOG);
        assert_eq!(figures.executions, 812_345);
        assert_eq!(figures.seconds, 11);
        assert_eq!(figures.execs_per_second, 73_849);
        assert_eq!(figures.coverage, 1203);
        assert_eq!(figures.features, 4410);
        assert!(figures.crashes.is_empty());
    }

    #[test]
    fn crash_artifacts_are_named() {
        let log = format!(
            "{LOG}==77== ERROR: libFuzzer: deadly signal\n\
             artifact_prefix='/w/target/fuzz/artifacts/x/'; Test unit written to /w/target/fuzz/artifacts/x/crash-da39a3ee\n"
        );
        assert_eq!(
            parse_log(&log).crashes,
            [PathBuf::from("/w/target/fuzz/artifacts/x/crash-da39a3ee")]
        );
    }

    /// `cargo xtask fuzz` with `args`, parsed as the command line is.
    fn parse(args: &[&str]) -> Result<Fuzz, clap::Error> {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            fuzz: Fuzz,
        }
        let words = std::iter::once("fuzz").chain(args.iter().copied());
        <Command as clap::Parser>::try_parse_from(words).map(|command| command.fuzz)
    }

    #[test]
    fn zero_jobs_seconds_or_executions_are_refused_when_parsed() {
        for (flag, value) in [("--jobs", "0"), ("--time", "0"), ("--runs", "0")] {
            let error = parse(&[flag, value]).expect_err(flag).to_string();
            assert!(
                error.contains(flag) && error.contains("0 is not in 1.."),
                "{flag} {value}: {error}"
            );
        }
        let options = parse(&["--jobs", "2", "--time", "5", "--runs", "100"]).expect("parses");
        assert_eq!(
            (options.jobs, options.time, options.runs),
            (2, 5, Some(100))
        );
        let defaults = parse(&[]).expect("parses");
        assert_eq!((defaults.jobs, defaults.time, defaults.runs), (1, 60, None));
    }

    #[test]
    fn the_markdown_table_has_a_row_per_target() {
        let options = Fuzz {
            time: 60,
            runs: None,
            targets: Vec::new(),
            jobs: 1,
            markdown: true,
            dev: false,
        };
        let results = vec![("tenant_url".to_owned(), parse_log(LOG))];
        let table = table(&results, &options, true);
        assert!(
            table.contains("| `tenant_url` | 812345 | 11 | 73849 | 1203 | 4410 | 0 | 0 |"),
            "{table}"
        );
        assert!(table.starts_with("Each target ran 60 s"), "{table}");
    }

    #[test]
    fn a_run_to_a_number_of_executions_says_so() {
        let options = Fuzz {
            time: 3600,
            runs: Some(10_000_000),
            targets: Vec::new(),
            jobs: 2,
            markdown: true,
            dev: false,
        };
        let table = table(&[], &options, true);
        assert!(
            table.starts_with("Each target ran until 10000000 executions in all (at most 3600 s) with 2 libFuzzer process(es), optimised build."),
            "{table}"
        );
    }
}
