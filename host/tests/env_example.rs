//! `.env.example` names exactly the environment variables the service reads.
//!
//! The variables the service reads are
//! (a) those the registered connectors declare: `env_vars`, the OAuth client id and
//!     secret variables, and feature flags; and
//! (b) those found in the non-test Rust sources of `host/`, `crates/` and
//!     `connectors/` (`src/` only, items under `#[cfg(test)]` or `#[test]` left out,
//!     and `crates/patchbay-testkit` left out: it is test support, and its variables
//!     configure the tests, not the service). There a variable is a string literal
//!     that looks like one (`UPPER_SNAKE_CASE` with at least one underscore) and is
//!     either the only argument of a call — `env.get("NAME")`, `env::var("NAME")`,
//!     `env.flag("NAME")`, `setting("NAME")` — or the value of a `const`/`static`,
//!     the way the crates name the variables they read (`const TIMEOUT_VAR: &str = "…"`).
//!
//! `.env.example` mentions a variable with a line `NAME=…` or `# NAME=…`.
#![cfg(all(
    feature = "connector-datadog",
    feature = "connector-github",
    feature = "connector-slack"
))]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::visit::{self, Visit};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the host crate lives in the workspace")
        .to_owned()
}

/// Sources whose variables configure the tests rather than the service.
const NOT_THE_SERVICE: &[&str] = &["crates/patchbay-testkit"];

/// Whether a string looks like an environment variable name.
fn looks_like_variable(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|first| first.is_ascii_uppercase())
        && text.contains('_')
        && !text.ends_with('_')
        && !text.contains("__")
        && text
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Whether attributes make an item test-only (`#[cfg(test)]`, `#[test]`, `#[tokio::test]`).
fn test_only(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        let path = attr.path();
        if path.is_ident("cfg") {
            return attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test");
        }
        path.segments
            .last()
            .is_some_and(|last| last.ident == "test")
    })
}

fn variable_literal(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(literal),
            ..
        }) => Some(literal.value()).filter(|value| looks_like_variable(value)),
        syn::Expr::Reference(reference) => variable_literal(&reference.expr),
        syn::Expr::Group(group) => variable_literal(&group.expr),
        syn::Expr::Paren(paren) => variable_literal(&paren.expr),
        _ => None,
    }
}

/// Collects the variables one source file reads, by the rule in the module docs.
#[derive(Default)]
struct Reads {
    names: BTreeSet<String>,
}

impl Reads {
    fn single_argument<'a>(&mut self, mut args: impl ExactSizeIterator<Item = &'a syn::Expr>) {
        if args.len() == 1 {
            if let Some(name) = args.next().and_then(variable_literal) {
                self.names.insert(name);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Reads {
    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if !test_only(&item.attrs) {
            visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        if !test_only(&item.attrs) {
            visit::visit_item_fn(self, item);
        }
    }

    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if !test_only(&item.attrs) {
            visit::visit_item_impl(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        if !test_only(&item.attrs) {
            visit::visit_impl_item_fn(self, item);
        }
    }

    fn visit_item_const(&mut self, item: &'ast syn::ItemConst) {
        if test_only(&item.attrs) {
            return;
        }
        if let Some(name) = variable_literal(&item.expr) {
            self.names.insert(name);
        }
        visit::visit_item_const(self, item);
    }

    fn visit_impl_item_const(&mut self, item: &'ast syn::ImplItemConst) {
        if test_only(&item.attrs) {
            return;
        }
        if let Some(name) = variable_literal(&item.expr) {
            self.names.insert(name);
        }
        visit::visit_impl_item_const(self, item);
    }

    fn visit_item_static(&mut self, item: &'ast syn::ItemStatic) {
        if test_only(&item.attrs) {
            return;
        }
        if let Some(name) = variable_literal(&item.expr) {
            self.names.insert(name);
        }
        visit::visit_item_static(self, item);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        self.single_argument(call.args.iter());
        visit::visit_expr_call(self, call);
    }

    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        self.single_argument(call.args.iter());
        visit::visit_expr_method_call(self, call);
    }
}

/// The variables a source text reads.
fn variables_in(source: &str) -> BTreeSet<String> {
    let file = syn::parse_file(source).expect("the source parses as Rust");
    let mut reads = Reads::default();
    reads.visit_file(&file);
    reads.names
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("read {}: {error}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Every `src/` directory of the service's crates.
fn service_sources() -> Vec<PathBuf> {
    let root = root();
    let mut crates = vec![root.join("host")];
    for parent in ["crates", "connectors"] {
        for entry in std::fs::read_dir(root.join(parent)).expect("crate directory") {
            let path = entry.expect("directory entry").path();
            let relative = path.strip_prefix(&root).expect("inside the repository");
            if path.join("Cargo.toml").exists()
                && !NOT_THE_SERVICE
                    .iter()
                    .any(|skip| relative == Path::new(skip))
            {
                crates.push(path);
            }
        }
    }
    let mut files = Vec::new();
    for krate in crates {
        rust_files(&krate.join("src"), &mut files);
    }
    files
}

/// Every variable the service reads, with where it was found.
fn variables_read() -> BTreeMap<String, BTreeSet<String>> {
    let mut read: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut note = |name: &str, place: String| {
        read.entry(name.to_owned()).or_default().insert(place);
    };
    for descriptor in patchbay_host::connectors::register_all() {
        let place = format!("declared by connector {}", descriptor.id);
        for var in descriptor.env_vars {
            note(var.name, place.clone());
        }
        if let Some(oauth) = &descriptor.oauth {
            for name in oauth.client_id_env.iter().chain(oauth.client_secret_env) {
                note(name, place.clone());
            }
        }
        if let Some(flag) = descriptor.feature_flag {
            note(flag, place.clone());
        }
    }
    let root = root();
    for file in service_sources() {
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|error| panic!("read {}: {error}", file.display()));
        let place = format!(
            "read in {}",
            file.strip_prefix(&root)
                .expect("inside the repository")
                .display()
        );
        for name in variables_in(&source) {
            note(&name, place.clone());
        }
    }
    read
}

/// The variables `.env.example` mentions as `NAME=` or `# NAME=`.
fn variables_in_example(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix('#').map_or(line, str::trim_start);
            let (name, _) = line.split_once('=')?;
            looks_like_variable(name).then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn env_example_names_every_variable_the_service_reads_and_nothing_else() {
    let read = variables_read();
    let example = std::fs::read_to_string(root().join(".env.example")).expect(".env.example");
    let mentioned = variables_in_example(&example);

    let missing: Vec<String> = read
        .iter()
        .filter(|(name, _)| !mentioned.contains(*name))
        .map(|(name, places)| {
            let places: Vec<&str> = places.iter().map(String::as_str).collect();
            format!("  {name} ({})", places.join("; "))
        })
        .collect();
    let stale: Vec<String> = mentioned
        .iter()
        .filter(|name| !read.contains_key(*name))
        .map(|name| format!("  {name}"))
        .collect();
    let mut problems = String::new();
    if !missing.is_empty() {
        problems.push_str(&format!(
            "\nread by the service but missing from .env.example (add `NAME=` or `# NAME=` with a comment):\n{}",
            missing.join("\n")
        ));
    }
    if !stale.is_empty() {
        problems.push_str(&format!(
            "\nin .env.example but read nowhere (remove them, or read them as host/tests/env_example.rs describes):\n{}",
            stale.join("\n")
        ));
    }
    assert!(
        problems.is_empty(),
        ".env.example is out of step with the code:{problems}"
    );
}

#[test]
fn the_scan_finds_single_argument_reads_and_constants_outside_tests() {
    let source = r#"
        pub const TIMEOUT_VAR: &str = "PATCHBAY_HTTP_TIMEOUT_SECS";
        const NOT_A_VARIABLE: &str = "github";
        fn configure(env: &Env) {
            let listen = env.get("PATCHBAY_LISTEN");
            let log = std::env::var("RUST_LOG");
            let slack = env.flag("NEXT_PUBLIC_ENABLE_SLACK");
            let origin = setting("PATCHBAY_UI_ORIGIN");
            let error = Error::invalid_config("DATABASE_URL", "a message");
            let header = headers.get("x-patchbay-token");
        }
        #[cfg(test)]
        mod tests {
            const IN_TESTS: &str = "ONLY_IN_TESTS";
            fn helper(env: &Env) { env.get("ALSO_ONLY_IN_TESTS"); }
        }
        #[test]
        fn a_test() { std::env::var("READ_BY_A_TEST").ok(); }
    "#;
    let found: Vec<String> = variables_in(source).into_iter().collect();
    assert_eq!(
        found,
        [
            "NEXT_PUBLIC_ENABLE_SLACK",
            "PATCHBAY_HTTP_TIMEOUT_SECS",
            "PATCHBAY_LISTEN",
            "PATCHBAY_UI_ORIGIN",
            "RUST_LOG",
        ]
    );
}

#[test]
fn the_example_is_read_from_assignments_and_commented_assignments() {
    let example = "# Where it listens.\nPATCHBAY_LISTEN=0.0.0.0:5080\n# VAULT_TOKEN=   # a token\n\
                   #   PATCHBAY_SECRETS=vault\n# See docs/vault.md=here\nlowercase=1\n";
    let found: Vec<String> = variables_in_example(example).into_iter().collect();
    assert_eq!(
        found,
        ["PATCHBAY_LISTEN", "PATCHBAY_SECRETS", "VAULT_TOKEN"]
    );
}
