//! The checkout xtask works on, and the small text edits it makes to its manifests.
//!
//! Manifests are edited line by line rather than re-serialised, so comments,
//! ordering and formatting elsewhere stay exactly as they were.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A checkout of this repository and the cargo target directory its builds use.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// The repository root (where the root `Cargo.toml` is).
    pub root: PathBuf,
    /// The cargo target directory.
    pub target: PathBuf,
}

impl Workspace {
    /// The checkout this xtask was built from, with its usual target directory.
    pub fn current() -> Self {
        Self {
            root: crate::workspace_root(),
            target: crate::target_dir(),
        }
    }

    /// `relative` under the root.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Reads `relative` under the root, naming it on failure.
    pub fn read(&self, relative: &str) -> Result<String> {
        let path = self.path(relative);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    }

    /// Runs cargo with `args` in the root, building into [`Workspace::target`].
    pub fn cargo(&self, args: &[&str]) -> Result<()> {
        let mut command = Command::new(cargo_program());
        command
            .args(args)
            .current_dir(&self.root)
            .env("CARGO_TARGET_DIR", &self.target);
        run_here(&mut command)
    }

    /// Builds this workspace's `patchbay` binary into [`Workspace::target`] and
    /// returns its path.
    pub fn build_patchbay(&self) -> Result<PathBuf> {
        self.cargo(&[
            "build",
            "--quiet",
            "--package",
            "patchbay-host",
            "--bin",
            "patchbay",
        ])?;
        Ok(self.target.join("debug/patchbay"))
    }
}

/// The cargo binary: the one running xtask, else `cargo` on the `PATH`.
pub fn cargo_program() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs a command where it was set up to run, failing with its name on a non-zero exit.
pub fn run_here(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    eprintln!("$ {shown}");
    let status = command
        .status()
        .with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// The `key = value` lines of a TOML `[section]`, in order (comments and blank lines
/// left out). Enough for the flat sections of this repository's manifests.
pub fn section_entries<'a>(text: &'a str, section: &str) -> Vec<(&'a str, &'a str)> {
    let header = format!("[{section}]");
    text.lines()
        .skip_while(|line| line.trim() != header)
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with('['))
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            Some((key.trim(), value.trim()))
        })
        .collect()
}

/// The value of `key` in `[section]`, if present.
pub fn section_value<'a>(text: &'a str, section: &str, key: &str) -> Option<&'a str> {
    section_entries(text, section)
        .into_iter()
        .find(|(found, _)| *found == key)
        .map(|(_, value)| value)
}

/// Inserts `line` into the block of consecutive lines of `text` that `in_block`
/// selects, before the first one that sorts after it (comparing trimmed lines), or
/// after the last. `file` and `block` name what is edited in errors.
pub fn insert_sorted(
    text: &str,
    file: &str,
    block: &str,
    in_block: impl Fn(&str) -> bool,
    line: &str,
) -> Result<String> {
    let lines: Vec<&str> = text.lines().collect();
    let positions: Vec<usize> = (0..lines.len())
        .filter(|&index| in_block(lines[index]))
        .collect();
    let (Some(&first), Some(&last)) = (positions.first(), positions.last()) else {
        bail!("{file}: found no {block} to add `{}` to", line.trim());
    };
    if last - first + 1 != positions.len() {
        bail!(
            "{file}: the {block} are not one block of consecutive lines; put them together so `{}` can be added in order",
            line.trim()
        );
    }
    if positions
        .iter()
        .any(|&index| lines[index].trim() == line.trim())
    {
        bail!("{file}: already has `{}`", line.trim());
    }
    let at = positions
        .iter()
        .copied()
        .find(|&index| lines[index].trim() > line.trim())
        .unwrap_or(last + 1);
    let mut edited: Vec<&str> = lines.clone();
    edited.insert(at, line);
    let mut result = edited.join("\n");
    if text.ends_with('\n') {
        result.push('\n');
    }
    Ok(result)
}

/// Adds `item` (a quoted string) to the one-line array `key = [...]` of `text`,
/// keeping the items sorted.
pub fn insert_into_array(text: &str, file: &str, key: &str, item: &str) -> Result<String> {
    let prefix = format!("{key} = [");
    let mut found = false;
    let mut edited = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.trim_start().strip_prefix(&prefix) {
            let Some(items) = rest.trim_end().strip_suffix(']') else {
                bail!("{file}: `{key}` must be a one-line array to add {item} to it");
            };
            let mut items: Vec<&str> = items
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .collect();
            if items.contains(&item) {
                bail!("{file}: `{key}` already holds {item}");
            }
            let at = items
                .iter()
                .position(|existing| *existing > item)
                .unwrap_or(items.len());
            items.insert(at, item);
            let indent = &line[..line.len() - line.trim_start().len()];
            edited.push(format!("{indent}{prefix}{}]", items.join(", ")));
            found = true;
        } else {
            edited.push(line.to_owned());
        }
    }
    if !found {
        bail!("{file}: found no `{key} = [...]` to add {item} to");
    }
    let mut result = edited.join("\n");
    if text.ends_with('\n') {
        result.push('\n');
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "[workspace]\nmembers = [\n    \"crates/a\",\n    \"connectors/datadog\",\n    \"connectors/slack\",\n    \"host\",\n]\n\n[workspace.dependencies]\n# ours\npatchbay-core = { path = \"crates/a\" }\nserde = \"1\"\n\n[profile.release]\ndebug = 0\n";

    #[test]
    fn lines_are_inserted_in_order_within_their_block() {
        let is_connector = |line: &str| line.trim_start().starts_with("\"connectors/");
        let edited = insert_sorted(
            MANIFEST,
            "Cargo.toml",
            "connector members",
            is_connector,
            "    \"connectors/github\",",
        )
        .unwrap();
        assert!(edited.contains(
            "    \"connectors/datadog\",\n    \"connectors/github\",\n    \"connectors/slack\",\n"
        ));
        let last = insert_sorted(
            MANIFEST,
            "Cargo.toml",
            "connector members",
            is_connector,
            "    \"connectors/zeta\",",
        )
        .unwrap();
        assert!(last.contains("    \"connectors/slack\",\n    \"connectors/zeta\",\n    \"host\","));
        let again = insert_sorted(
            &edited,
            "Cargo.toml",
            "connector members",
            is_connector,
            "    \"connectors/github\",",
        )
        .unwrap_err();
        assert!(again.to_string().contains("already has"), "{again}");
        let none = insert_sorted(MANIFEST, "Cargo.toml", "features", |_| false, "x").unwrap_err();
        assert_eq!(
            none.to_string(),
            "Cargo.toml: found no features to add `x` to"
        );
    }

    #[test]
    fn array_items_are_inserted_in_order() {
        let text = "[features]\ndefault = [\"connector-a\", \"connector-c\"]\n";
        let edited =
            insert_into_array(text, "host/Cargo.toml", "default", "\"connector-b\"").unwrap();
        assert_eq!(
            edited,
            "[features]\ndefault = [\"connector-a\", \"connector-b\", \"connector-c\"]\n"
        );
    }

    #[test]
    fn sections_are_read_without_comments() {
        assert_eq!(
            section_entries(MANIFEST, "workspace.dependencies"),
            [
                ("patchbay-core", "{ path = \"crates/a\" }"),
                ("serde", "\"1\"")
            ]
        );
        assert_eq!(
            section_value(MANIFEST, "profile.release", "debug"),
            Some("0")
        );
        assert_eq!(
            section_value(MANIFEST, "profile.release", "opt-level"),
            None
        );
    }
}
