//! Replays every committed seed (`fuzz/corpus/<target>/`) and every crash kept as
//! a regression (`fuzz/regressions/<target>/`) through its target's body, so the
//! stable test suite fails if a crash the fuzzer once found comes back; and checks
//! that the fuzz crate, the corpora and [`TARGETS`] name the same targets.

use std::collections::BTreeSet;
use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use patchbay_fuzz_targets::{target, webhooks, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files directly inside `dir`, sorted; none when it does not exist.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("the folder lists").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// The sub-folder names of `dir`.
fn folders_in(dir: &Path) -> BTreeSet<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .map(|entry| entry.expect("the folder lists").path())
        .filter(|path| path.is_dir())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_seed_and_regression_passes_its_target() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for target in TARGETS {
        for folder in ["corpus", "regressions"] {
            for file in files_in(&fuzz_dir().join(folder).join(target.name)) {
                let data = fs::read(&file).expect("the input reads");
                replayed += 1;
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (target.run)(&data))) {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{}: {message}", file.display()));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    println!(
        "replayed {replayed} inputs through {} targets",
        TARGETS.len()
    );
}

#[test]
fn every_target_has_seeds_a_libfuzzer_entry_and_a_bin() {
    let manifest = fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    for target in TARGETS {
        assert!(
            !files_in(&fuzz_dir().join("corpus").join(target.name)).is_empty(),
            "{} has no seeds in fuzz/corpus/{}",
            target.name,
            target.name
        );
        let entry = fuzz_dir()
            .join("fuzz_targets")
            .join(format!("{}.rs", target.name));
        let source = fs::read_to_string(&entry)
            .unwrap_or_else(|_| panic!("{} has no {}", target.name, entry.display()));
        assert!(
            source.contains(&format!("::{}(data)", target.name)),
            "{} does not call the body named {}",
            entry.display(),
            target.name
        );
        assert!(
            manifest.contains(&format!("name = \"{}\"", target.name)),
            "fuzz/Cargo.toml has no [[bin]] named {}",
            target.name
        );
    }
    for folder in ["corpus", "regressions", "fuzz_targets"] {
        let named: BTreeSet<String> = if folder == "fuzz_targets" {
            files_in(&fuzz_dir().join(folder))
                .iter()
                .map(|file| file.file_stem().unwrap().to_string_lossy().into_owned())
                .collect()
        } else {
            folders_in(&fuzz_dir().join(folder))
        };
        for name in named {
            assert!(
                target(&name).is_some(),
                "fuzz/{folder}/{name} names no target of patchbay_fuzz_targets::TARGETS"
            );
        }
    }
}

#[test]
fn the_providers_signed_examples_verify_as_they_are() {
    for name in [
        "webhook_github",
        "webhook_pagerduty",
        "webhook_slack",
        "webhook_grafana",
        "webhook_datadog",
        "webhook_netdata",
    ] {
        let verified = files_in(&fuzz_dir().join("corpus").join(name))
            .iter()
            .filter(|file| webhooks::verifies_as_received(name, &fs::read(file).unwrap()))
            .count();
        assert!(
            verified > 0,
            "no seed of {name} verifies as received: the target's secret no longer matches the examples"
        );
    }
}
