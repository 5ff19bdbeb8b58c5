//! `cargo xtask new-connector <id>`: writes a connector crate that compiles, passes
//! clippy and its contract suite as generated, and adds it to the workspace, the
//! host and the generated connector tables.
//!
//! Everything is checked, then every file is rendered in memory, and only then is
//! anything written; a refusal leaves the checkout exactly as it was, and a
//! failure while writing or regenerating the tables undoes what was written.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::codegen;
use crate::workspace::{
    insert_into_array, insert_sorted, section_entries, section_value, Workspace,
};

/// Options of `cargo xtask new-connector`.
#[derive(Args, Debug, Clone)]
pub struct NewConnector {
    /// The connector id: a lowercase letter, then lowercase letters, digits and
    /// single `-` (`acme`, `acme-cloud`).
    pub id: String,
    /// The name people read (default: the id in title case, `Acme Cloud`).
    #[arg(long)]
    pub name: Option<String>,
    /// The family of the provider.
    #[arg(long, value_enum, default_value_t = CategoryArg::Observability)]
    pub category: CategoryArg,
    /// How a connection authenticates, comma-separated: any of `api-key`, `basic`
    /// and `oauth`, or `none` alone for an API that takes no credentials.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "api-key")]
    pub auth: Vec<AuthArg>,
    /// How webhooks prove where they come from: `token` (a per-connection token
    /// the host checks), `hmac` (HMAC-SHA256 of the body with the connection's
    /// webhook secret), or `none` for no webhooks.
    #[arg(long, value_enum, default_value_t = WebhookArg::None)]
    pub webhook: WebhookArg,
    /// Write a standalone crate for a third party into this directory instead of
    /// `connectors/<id>/`; nothing in this workspace is touched.
    #[arg(long, value_name = "DIR")]
    pub out_of_tree: Option<PathBuf>,
    /// With `--out-of-tree`: depend on the Patchbay crates of this version from the
    /// registry instead of by path to this checkout.
    #[arg(long, value_name = "VERSION", requires = "out_of_tree")]
    pub patchbay_version: Option<String>,
}

/// `--category`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryArg {
    /// Cloud providers.
    Cloud,
    /// Monitoring and alerting.
    Observability,
    /// Chat and code collaboration.
    Communication,
    /// Knowledge bases.
    Documentation,
    /// Cluster orchestration.
    Orchestration,
}

/// One value of `--auth`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthArg {
    /// An OAuth 2.0 authorization-code flow.
    Oauth,
    /// An API key typed into the connect form.
    ApiKey,
    /// A user name and password typed into the connect form.
    Basic,
    /// No credentials: the form names an account only.
    None,
}

/// `--webhook`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookArg {
    /// No webhooks.
    None,
    /// A per-connection token in `X-Patchbay-Token`, checked by the host.
    Token,
    /// An HMAC-SHA256 signature of the body, checked by the connector.
    Hmac,
}

impl NewConnector {
    /// Options for `id` with every default.
    pub fn with_id(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: None,
            category: CategoryArg::Observability,
            auth: vec![AuthArg::ApiKey],
            webhook: WebhookArg::None,
            out_of_tree: None,
            patchbay_version: None,
        }
    }
}

/// Generates the connector in `workspace`, printing what it did.
pub fn run(workspace: &Workspace, options: &NewConnector) -> Result<()> {
    let plan = plan(workspace, options)?;
    plan.apply()?;
    if options.out_of_tree.is_none() {
        if let Err(error) = codegen::run(workspace, codegen::Mode::Write) {
            plan.undo();
            return Err(error.context(format!(
                "regenerating the connector tables with `{}` failed, so nothing was kept",
                options.id
            )));
        }
    }
    for (path, _) in &plan.creates {
        eprintln!("created {}", path.display());
    }
    for edit in &plan.edits {
        eprintln!("updated {}", edit.path.display());
    }
    let crate_dir = plan.crate_dir.display();
    match &options.out_of_tree {
        None => eprintln!(
            "next: cargo test -p patchbay-connector-{} (contract suite and behaviour test), \
             then replace the placeholders listed in {crate_dir}/README.md",
            options.id
        ),
        Some(_) => eprintln!(
            "next: cargo test --manifest-path {crate_dir}/Cargo.toml, then replace the \
             placeholders listed in {crate_dir}/README.md"
        ),
    }
    Ok(())
}

/// Everything generation will write: checked and rendered, not yet applied.
#[derive(Debug)]
pub struct Plan {
    /// The crate's directory.
    crate_dir: PathBuf,
    /// New files and their contents.
    creates: Vec<(PathBuf, String)>,
    /// Directories to create (and to remove on undo), outermost first.
    new_dirs: Vec<PathBuf>,
    /// Existing files and their new contents.
    edits: Vec<Edit>,
    /// Files that builds and `codegen` rewrite afterwards, with their contents before, to
    /// put back on undo.
    rewritten_later: Vec<(PathBuf, Option<Vec<u8>>)>,
}

#[derive(Debug)]
struct Edit {
    path: PathBuf,
    before: String,
    after: String,
}

impl Plan {
    /// Writes every file; on failure removes what was created and restores what was edited.
    fn apply(&self) -> Result<()> {
        let result = self.write();
        if result.is_err() {
            self.undo();
        }
        result
    }

    fn write(&self) -> Result<()> {
        for dir in &self.new_dirs {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        for (path, content) in &self.creates {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))?;
        }
        for edit in &self.edits {
            std::fs::write(&edit.path, &edit.after)
                .with_context(|| format!("writing {}", edit.path.display()))?;
        }
        Ok(())
    }

    /// Puts back what [`Plan::apply`] changed, as far as it can.
    fn undo(&self) {
        for edit in &self.edits {
            if let Err(error) = std::fs::write(&edit.path, &edit.before) {
                eprintln!("could not restore {}: {error}", edit.path.display());
            }
        }
        for (path, before) in &self.rewritten_later {
            let restored = match before {
                Some(bytes) => std::fs::write(path, bytes),
                None => std::fs::remove_file(path).or_else(|error| match error.kind() {
                    std::io::ErrorKind::NotFound => Ok(()),
                    _ => Err(error),
                }),
            };
            if let Err(error) = restored {
                eprintln!("could not restore {}: {error}", path.display());
            }
        }
        for (path, _) in &self.creates {
            let _ = std::fs::remove_file(path);
        }
        if let Some(outermost) = self.new_dirs.first() {
            let _ = std::fs::remove_dir_all(outermost);
        }
    }
}

/// The names derived from a connector id.
#[derive(Debug, Clone)]
struct Names {
    id: String,
    name: String,
    /// `AcmeCloud`, the prefix of the crate's type names.
    type_name: String,
    /// `Acme-Cloud`, as the id reads in an HTTP header name.
    header_words: String,
    /// `acme_cloud`.
    ident: String,
    /// `ACME_CLOUD`, the prefix of its environment variables.
    env: String,
    /// `patchbay-connector-acme-cloud`.
    crate_name: String,
}

impl Names {
    fn new(id: &str, name: Option<&str>) -> Self {
        let words: Vec<String> = id
            .split('-')
            .map(|word| {
                let mut chars = word.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_uppercase().to_string() + chars.as_str()
                })
            })
            .collect();
        Self {
            id: id.to_owned(),
            name: name.map_or_else(|| words.join(" "), |name| name.trim().to_owned()),
            type_name: words.concat(),
            header_words: words.join("-"),
            ident: id.replace('-', "_"),
            env: id.replace('-', "_").to_ascii_uppercase(),
            crate_name: format!("patchbay-connector-{id}"),
        }
    }
}

/// Ids a connector may not take, with the reason.
const RESERVED_IDS: &[(&str, &str)] = &[(
    "api",
    "its webhook and callback routes would sit under the host's JSON API (`/api/...`)",
)];

/// The longest id accepted; ids appear in routes, crate names and environment variables.
const MAX_ID_LENGTH: usize = 40;

/// Why `id` is not a valid connector id, if it is not.
fn id_problem(id: &str) -> Option<String> {
    let rule = "a connector id is a lowercase letter followed by lowercase letters, digits \
                and single `-`, e.g. `acme` or `acme-cloud`";
    let well_formed = id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    if !well_formed {
        return Some(format!("`{id}` is not a valid connector id: {rule}"));
    }
    if id.len() > MAX_ID_LENGTH {
        return Some(format!(
            "`{id}` is {} characters long; use at most {MAX_ID_LENGTH}",
            id.len()
        ));
    }
    RESERVED_IDS
        .iter()
        .find(|(reserved, _)| *reserved == id)
        .map(|(_, why)| format!("`{id}` is reserved: {why}; choose another id"))
}

/// What the options ask for, checked and resolved.
#[derive(Debug, Clone)]
struct Choices {
    names: Names,
    category: CategoryArg,
    api_key: bool,
    basic: bool,
    oauth: bool,
    no_auth: bool,
    webhook: WebhookArg,
}

fn choices(options: &NewConnector) -> Result<Choices, Vec<String>> {
    let mut problems = Vec::new();
    if let Some(problem) = id_problem(&options.id) {
        problems.push(problem);
    }
    if let Some(name) = &options.name {
        if name.trim().is_empty() {
            problems.push(
                "--name must not be empty; leave it out to use the id in title case".to_owned(),
            );
        } else if name.contains(['"', '\\', '\n', '\r', '`', '|']) {
            problems.push(format!(
                "--name {name:?} must not contain quotes, backslashes, backticks, `|` or line breaks \
                 (it is written into Rust strings, TOML and Markdown tables)"
            ));
        }
    }
    let mut auth = options.auth.clone();
    auth.sort();
    auth.dedup();
    if auth.contains(&AuthArg::None) && auth.len() > 1 {
        problems.push(
            "--auth none means the API takes no credentials, so it cannot be combined with \
             api-key, basic or oauth; give `none` alone"
                .to_owned(),
        );
    }
    if auth.is_empty() {
        problems.push("--auth needs at least one kind: api-key, basic, oauth or none".to_owned());
    }
    if let Some(version) = &options.patchbay_version {
        let parts: Vec<&str> = version.split('.').collect();
        if parts.len() != 3 || parts.iter().any(|part| part.parse::<u64>().is_err()) {
            problems.push(format!(
                "--patchbay-version `{version}` is not a version like 0.1.0"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Choices {
        names: Names::new(&options.id, options.name.as_deref()),
        category: options.category,
        api_key: auth.contains(&AuthArg::ApiKey),
        basic: auth.contains(&AuthArg::Basic),
        oauth: auth.contains(&AuthArg::Oauth),
        no_auth: auth.contains(&AuthArg::None),
        webhook: options.webhook,
    })
}

/// Where the crate goes and how it depends on the Patchbay crates.
#[derive(Debug, Clone)]
enum Placement {
    /// `connectors/<id>/`, a workspace member.
    InTree,
    /// A standalone crate in `dir`.
    OutOfTree {
        dir: PathBuf,
        patchbay: PatchbaySource,
    },
}

#[derive(Debug, Clone)]
enum PatchbaySource {
    /// By path: the Patchbay checkout's root as the crate should name it.
    Path(String),
    /// From the registry at this version.
    Version(String),
}

/// Checks everything and renders every file, writing nothing.
pub fn plan(workspace: &Workspace, options: &NewConnector) -> Result<Plan> {
    let choices = choices(options).map_err(refusal)?;
    let names = &choices.names;
    let placement = match &options.out_of_tree {
        None => Placement::InTree,
        Some(dir) => {
            let dir = absolute(dir)?;
            let patchbay = match &options.patchbay_version {
                Some(version) => PatchbaySource::Version(version.clone()),
                None => PatchbaySource::Path(path_from(&dir, &workspace.root)),
            };
            Placement::OutOfTree { dir, patchbay }
        }
    };
    let crate_dir = match &placement {
        Placement::InTree => workspace.path(&format!("connectors/{}", names.id)),
        Placement::OutOfTree { dir, .. } => dir.clone(),
    };

    let mut problems = Vec::new();
    let root_manifest = workspace.read("Cargo.toml")?;
    match &placement {
        Placement::InTree => {
            problems.extend(in_tree_conflicts(workspace, &choices, &root_manifest)?)
        }
        Placement::OutOfTree { dir, .. } => {
            let occupied =
                std::fs::read_dir(dir).map_or(dir.exists(), |mut entries| entries.next().is_some());
            if occupied {
                problems.push(format!(
                    "{} already exists and is not empty; give --out-of-tree a new or empty directory",
                    dir.display()
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Err(refusal(problems));
    }

    let dependencies = Dependencies::new(&root_manifest, &placement)?;
    let files = render(&choices, &placement, dependencies, &root_manifest)?;
    let mut creates = Vec::new();
    for (relative, content) in files.crate_files {
        creates.push((crate_dir.join(relative), content));
    }
    let mut edits = Vec::new();
    let mut rewritten_later = Vec::new();
    if let Placement::InTree = placement {
        if let Some(doc) = files.doc {
            creates.push((
                workspace.path(&format!("docs/connectors/{}.md", names.id)),
                doc,
            ));
        }
        edits = workspace_edits(workspace, names, &root_manifest)?;
        if let Some(lines) = files.env_example {
            let before = workspace.read(".env.example")?;
            let after = format!("{}\n\n{lines}", before.trim_end());
            edits.push(Edit {
                path: workspace.path(".env.example"),
                before,
                after,
            });
        }
        for relative in ["Cargo.lock", "README.md", codegen::DOCS_INDEX] {
            let path = workspace.path(relative);
            rewritten_later.push((path.clone(), std::fs::read(&path).ok()));
        }
    }
    Ok(Plan {
        new_dirs: vec![crate_dir.clone()],
        crate_dir,
        creates,
        edits,
        rewritten_later,
    })
}

/// One error listing every reason for refusing, each a rule and its fix.
fn refusal(problems: Vec<String>) -> anyhow::Error {
    let mut message = String::from("new-connector refused; nothing was written:");
    for problem in problems {
        message.push_str("\n  - ");
        message.push_str(&problem);
    }
    anyhow!(message)
}

/// Why the id is taken in this workspace, if it is.
fn in_tree_conflicts(
    workspace: &Workspace,
    choices: &Choices,
    root_manifest: &str,
) -> Result<Vec<String>> {
    let names = &choices.names;
    let id = &names.id;
    let mut problems = Vec::new();
    let dir = format!("connectors/{id}");
    if workspace.path(&dir).exists() {
        problems.push(format!(
            "{dir} already exists: the id `{id}` is taken; choose another id, or remove {dir} first"
        ));
    }
    for member in workspace_members(root_manifest) {
        let manifest = workspace.path(&format!("{member}/Cargo.toml"));
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if section_value(&text, "package", "name") == Some(&format!("\"{}\"", names.crate_name)) {
            problems.push(format!(
                "the workspace already has a crate named {} (in {member}); choose another id",
                names.crate_name
            ));
        }
    }
    if section_entries(root_manifest, "workspace.dependencies")
        .iter()
        .any(|(key, _)| *key == names.crate_name)
    {
        problems.push(format!(
            "Cargo.toml already lists {} in [workspace.dependencies]; remove it or choose another id",
            names.crate_name
        ));
    }
    let doc = format!("docs/connectors/{id}.md");
    if workspace.path(&doc).exists() {
        problems.push(format!(
            "{doc} already exists; choose another id, or remove {doc} first"
        ));
    }
    let host_manifest = workspace.read("host/Cargo.toml")?;
    if section_entries(&host_manifest, "features")
        .iter()
        .any(|(key, _)| *key == format!("connector-{id}"))
    {
        problems.push(format!(
            "host/Cargo.toml already has the feature connector-{id}; choose another id"
        ));
    }
    let env_example = workspace.read(".env.example")?;
    let oauth_variables = if choices.oauth {
        vec![
            format!("{}_CLIENT_ID", names.env),
            format!("{}_CLIENT_SECRET", names.env),
        ]
    } else {
        Vec::new()
    };
    for variable in oauth_variables {
        if env_example.contains(&format!("{variable}=")) {
            problems.push(format!(
                ".env.example already names {variable}, which the connector would declare; choose another id"
            ));
        }
    }
    let host_connectors = workspace.read("host/src/connectors.rs")?;
    if host_connectors.contains(&format!("\"{id}\":")) {
        problems.push(format!(
            "host/src/connectors.rs already lists `{id}`; choose another id"
        ));
    }
    Ok(problems)
}

/// The member paths listed in the root manifest.
fn workspace_members(root_manifest: &str) -> Vec<String> {
    root_manifest
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("members = ["))
        .skip(1)
        .take_while(|line| !line.trim_start().starts_with(']'))
        .filter_map(|line| {
            let member = line.trim().trim_end_matches(',').trim_matches('"');
            (!member.is_empty() && !member.starts_with('#')).then(|| member.to_owned())
        })
        .collect()
}

/// The edits adding the crate to the workspace and the host.
fn workspace_edits(workspace: &Workspace, names: &Names, root_manifest: &str) -> Result<Vec<Edit>> {
    let id = &names.id;
    let crate_name = &names.crate_name;
    let version = section_value(root_manifest, "workspace.package", "version")
        .context("Cargo.toml: [workspace.package] has no version")?;

    let root = insert_sorted(
        root_manifest,
        "Cargo.toml",
        "connector members (\"connectors/...\")",
        |line| line.trim_start().starts_with("\"connectors/"),
        &format!("    \"connectors/{id}\","),
    )?;
    let root = insert_sorted(
        &root,
        "Cargo.toml",
        "connector dependencies (patchbay-connector-...)",
        |line| line.starts_with("patchbay-connector-"),
        &format!("{crate_name} = {{ path = \"connectors/{id}\", version = {version} }}"),
    )?;

    let host_manifest = workspace.read("host/Cargo.toml")?;
    let host = insert_into_array(
        &host_manifest,
        "host/Cargo.toml",
        "default",
        &format!("\"connector-{id}\""),
    )?;
    let host = insert_sorted(
        &host,
        "host/Cargo.toml",
        "connector features (connector-...)",
        |line| line.starts_with("connector-"),
        &format!("connector-{id} = [\"dep:{crate_name}\"]"),
    )?;
    let host = insert_sorted(
        &host,
        "host/Cargo.toml",
        "connector dependencies (patchbay-connector-...)",
        |line| line.starts_with("patchbay-connector-"),
        &format!("{crate_name} = {{ workspace = true, optional = true }}"),
    )?;

    let host_connectors = workspace.read("host/src/connectors.rs")?;
    let connectors = insert_sorted(
        &host_connectors,
        "host/src/connectors.rs",
        "entries of the `connectors!` invocation",
        |line| {
            let line = line.trim_start();
            line.starts_with('"') && line.contains("\": \"connector-") && line.contains("=>")
        },
        &format!(
            "    \"{id}\": \"connector-{id}\" => patchbay_connector_{},",
            names.ident
        ),
    )?;

    Ok(vec![
        Edit {
            path: workspace.path("Cargo.toml"),
            before: root_manifest.to_owned(),
            after: root,
        },
        Edit {
            path: workspace.path("host/Cargo.toml"),
            before: host_manifest,
            after: host,
        },
        Edit {
            path: workspace.path("host/src/connectors.rs"),
            before: host_connectors,
            after: connectors,
        },
    ])
}

/// How the generated manifest names each dependency.
#[derive(Debug, Clone)]
struct Dependencies {
    placement: Placement,
    /// The root manifest's `[workspace.dependencies]`, for out-of-tree crates.
    workspace: BTreeMap<String, String>,
}

impl Dependencies {
    fn new(root_manifest: &str, placement: &Placement) -> Result<Self> {
        Ok(Self {
            placement: placement.clone(),
            workspace: section_entries(root_manifest, "workspace.dependencies")
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect(),
        })
    }

    /// The manifest line depending on `name`.
    fn line(&self, name: &str, optional: bool) -> Result<String> {
        let value = match &self.placement {
            Placement::InTree if optional => "{ workspace = true, optional = true }".to_owned(),
            Placement::InTree => return Ok(format!("{name}.workspace = true")),
            Placement::OutOfTree { patchbay, .. } => {
                let value = match (name.strip_prefix("patchbay-"), patchbay) {
                    (Some(krate), PatchbaySource::Path(root)) => {
                        format!("{{ path = \"{root}/crates/patchbay-{krate}\" }}")
                    }
                    (Some(_), PatchbaySource::Version(version)) => format!("\"{version}\""),
                    (None, _) => self.workspace.get(name).cloned().ok_or_else(|| {
                        anyhow!("Cargo.toml: [workspace.dependencies] has no `{name}`, which generated connectors use")
                    })?,
                };
                if optional {
                    with_key(&value, "optional = true")
                } else {
                    value
                }
            }
        };
        Ok(format!("{name} = {value}"))
    }
}

/// A TOML dependency value with `key = value` added: `"1"` becomes an inline table.
fn with_key(value: &str, entry: &str) -> String {
    match value.trim().strip_suffix('}') {
        Some(table) => format!("{}, {entry} }}", table.trim_end()),
        None => format!("{{ version = {value}, {entry} }}"),
    }
}

/// `dir` made absolute against the current directory, without requiring it to exist.
fn absolute(dir: &Path) -> Result<PathBuf> {
    let joined = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(dir)
    };
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                normal.pop();
            }
            Component::CurDir => {}
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// How a crate in `dir` names `root` in a path dependency: relative when `dir` is
/// inside `root` (so the crate works in any clone), absolute otherwise.
fn path_from(dir: &Path, root: &Path) -> String {
    match dir.strip_prefix(root) {
        Ok(inside) => {
            let depth = inside.components().count();
            vec![".."; depth].join("/")
        }
        Err(_) => root.display().to_string(),
    }
}

/// The rendered files.
struct Rendered {
    /// Paths relative to the crate directory, with contents.
    crate_files: Vec<(String, String)>,
    /// `docs/connectors/<id>.md`, for crates in this workspace.
    doc: Option<String>,
    /// Lines to append to `.env.example`, for OAuth connectors in this workspace.
    env_example: Option<String>,
}

/// A template and where its output goes in the crate.
struct Template {
    output: &'static str,
    source: &'static str,
}

macro_rules! template {
    ($output:literal) => {
        Template {
            output: $output,
            source: include_str!(concat!("../templates/new-connector/", $output, ".jinja")),
        }
    };
}

/// Every file of a connector crate; `src/webhook.rs` only with a webhook style.
const CRATE_TEMPLATES: &[Template] = &[
    template!("Cargo.toml"),
    template!("README.md"),
    template!("src/lib.rs"),
    template!("src/auth.rs"),
    template!("src/client.rs"),
    template!("src/config.rs"),
    template!("src/fake.rs"),
    template!("src/query.rs"),
    template!("src/webhook.rs"),
    template!("tests/behaviour.rs"),
    template!("tests/contract.rs"),
];

/// The set-up guide, `docs/connectors/<id>.md`.
const DOC_TEMPLATE: Template = template!("docs/connector.md");

/// The lines naming an OAuth connector's variables, appended to `.env.example`.
const ENV_EXAMPLE_TEMPLATE: Template = template!("env.example");

fn render(
    choices: &Choices,
    placement: &Placement,
    dependencies: Dependencies,
    root_manifest: &str,
) -> Result<Rendered> {
    let mut environment = minijinja::Environment::new();
    environment.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .context("the template syntax")?,
    );
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    let dependencies = Arc::new(dependencies);
    environment.add_function(
        "dep",
        move |name: String, kwargs: minijinja::value::Kwargs| -> Result<String, minijinja::Error> {
            let optional = kwargs.get::<Option<bool>>("optional")?.unwrap_or(false);
            kwargs.assert_all_used()?;
            dependencies.line(&name, optional).map_err(|error| {
                minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, error.to_string())
            })
        },
    );
    let context = context(choices, placement, root_manifest)?;
    let has_webhook = choices.webhook != WebhookArg::None;
    let mut crate_files = Vec::new();
    for template in CRATE_TEMPLATES {
        if template.output == "src/webhook.rs" && !has_webhook {
            continue;
        }
        let text = render_one(&environment, template, &context)?;
        crate_files.push((template.output.to_owned(), text));
    }
    let (doc, env_example) = match placement {
        Placement::InTree => (
            Some(render_one(&environment, &DOC_TEMPLATE, &context)?),
            choices
                .oauth
                .then(|| render_one(&environment, &ENV_EXAMPLE_TEMPLATE, &context))
                .transpose()?,
        ),
        Placement::OutOfTree { .. } => (None, None),
    };
    Ok(Rendered {
        crate_files,
        doc,
        env_example,
    })
}

fn render_one(
    environment: &minijinja::Environment<'_>,
    template: &Template,
    context: &minijinja::Value,
) -> Result<String> {
    let text = environment
        .render_str(template.source, context.clone())
        .map_err(|error| anyhow!("rendering the {} template: {error:#}", template.output))?;
    if template.output.ends_with(".rs") {
        rustfmt(&text).with_context(|| format!("formatting the generated {}", template.output))
    } else {
        Ok(tidy(&text))
    }
}

/// Text with runs of blank lines cut to one and exactly one trailing newline.
fn tidy(text: &str) -> String {
    let mut tidied = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.trim_start_matches('\n').lines() {
        let line = line.trim_end();
        blank_run = if line.is_empty() { blank_run + 1 } else { 0 };
        if blank_run < 2 {
            tidied.push_str(line);
            tidied.push('\n');
        }
    }
    while tidied.ends_with("\n\n") {
        tidied.pop();
    }
    tidied
}

/// Rust source formatted by rustfmt, as `cargo fmt` would leave it.
fn rustfmt(source: &str) -> Result<String> {
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting rustfmt (install it with `rustup component add rustfmt`)")?;
    child
        .stdin
        .take()
        .context("rustfmt's stdin")?
        .write_all(source.as_bytes())
        .context("writing to rustfmt")?;
    let output = child.wait_with_output().context("waiting for rustfmt")?;
    if !output.status.success() {
        bail!(
            "rustfmt refused the generated code:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("rustfmt's output is not UTF-8")
}

/// The template variables.
fn context(
    choices: &Choices,
    placement: &Placement,
    root_manifest: &str,
) -> Result<minijinja::Value> {
    use minijinja::Value;

    let names = &choices.names;
    let Choices {
        api_key,
        basic,
        oauth,
        no_auth,
        ..
    } = *choices;
    let form = api_key || basic || no_auth;
    let own_secrets = api_key || basic;
    let credential_kinds = [api_key, basic, oauth].iter().filter(|kind| **kind).count();
    let optional_secrets = credential_kinds > 1;
    let either_form = api_key && basic;
    let token = choices.webhook == WebhookArg::Token;
    let hmac = choices.webhook == WebhookArg::Hmac;

    let mut auth_kinds = Vec::new();
    let mut summaries = Vec::new();
    let mut roles = Vec::new();
    if oauth {
        auth_kinds.push("Oauth2");
        summaries.push("OAuth 2.0");
        roles.push("as an access token");
    }
    if api_key {
        auth_kinds.push("ApiKey");
        summaries.push("an API key");
        roles.push("as the API key");
    }
    if basic {
        auth_kinds.push("Basic");
        summaries.push("a user name and password");
        roles.push("as the password of [`USERNAME`]");
    }
    let auth_summary = if no_auth {
        "no credentials (the API is open; the form names an account)".to_owned()
    } else {
        join_alternatives(&summaries)
    };
    let connect_summary = if no_auth {
        "to an account by name (the API takes no credentials)".to_owned()
    } else {
        format!("with {}", join_alternatives(&summaries))
    };
    let form_example = if api_key {
        r#"{"api_key":"…"}"#
    } else if basic {
        r#"{"username":"…","password":"…"}"#
    } else {
        r#"{"account":"…"}"#
    };
    let (account_path, items_path, items_path_literal) = if no_auth {
        (
            "/v1/accounts/{account}",
            "/v1/accounts/{account}/items",
            "/v1/accounts/example-account/items",
        )
    } else {
        ("/v1/account", "/v1/items", "/v1/items")
    };
    let category = match choices.category {
        CategoryArg::Cloud => ("cloud", "Cloud"),
        CategoryArg::Observability => ("observability", "Observability"),
        CategoryArg::Communication => ("communication", "Communication"),
        CategoryArg::Documentation => ("documentation", "Documentation"),
        CategoryArg::Orchestration => ("orchestration", "Orchestration"),
    };
    let webhook_summary = match choices.webhook {
        WebhookArg::None => "",
        WebhookArg::Token => "token-authenticated webhooks",
        WebhookArg::Hmac => "HMAC-signed webhooks",
    };
    let out_of_tree = matches!(placement, Placement::OutOfTree { .. });
    let rust_version = section_value(root_manifest, "workspace.package", "rust-version")
        .context("Cargo.toml: [workspace.package] has no rust-version")?
        .trim_matches('"')
        .to_owned();
    let mut lints = Vec::new();
    for group in ["rust", "clippy"] {
        for (lint, level) in section_entries(root_manifest, &format!("workspace.lints.{group}")) {
            lints.push(format!("{group}.{lint} = {level}"));
        }
    }

    let entries: Vec<(&str, Value)> = vec![
        ("id", Value::from(names.id.clone())),
        ("name", Value::from(names.name.clone())),
        ("type", Value::from(names.type_name.clone())),
        ("ident", Value::from(names.ident.clone())),
        ("env", Value::from(names.env.clone())),
        ("crate", Value::from(names.crate_name.clone())),
        (
            "crate_ident",
            Value::from(names.crate_name.replace('-', "_")),
        ),
        ("category", Value::from(category.0)),
        ("category_variant", Value::from(category.1)),
        ("api_key", Value::from(api_key)),
        ("basic", Value::from(basic)),
        ("oauth", Value::from(oauth)),
        ("no_auth", Value::from(no_auth)),
        ("form", Value::from(form)),
        ("own_secrets", Value::from(own_secrets)),
        ("optional_secrets", Value::from(optional_secrets)),
        ("either_form", Value::from(either_form)),
        (
            "lift_form_fields",
            Value::from(optional_secrets && !either_form),
        ),
        (
            "secrets_type",
            Value::from(if own_secrets {
                format!("{}Secrets", names.type_name)
            } else {
                "NoSecrets".to_owned()
            }),
        ),
        ("oauth_required", Value::from(oauth && !form)),
        ("auth_kinds", Value::from(auth_kinds)),
        ("auth_summary", Value::from(auth_summary)),
        ("connect_summary", Value::from(connect_summary)),
        (
            "proof",
            Value::from(if no_auth {
                "checks the account with a read of it"
            } else {
                "proves the credentials with a read of the account"
            }),
        ),
        ("credential_roles", Value::from(join_alternatives(&roles))),
        ("form_example", Value::from(form_example)),
        ("account_path", Value::from(account_path)),
        ("items_path", Value::from(items_path)),
        ("items_path_literal", Value::from(items_path_literal)),
        ("has_webhook", Value::from(token || hmac)),
        ("token", Value::from(token)),
        ("hmac", Value::from(hmac)),
        ("webhook_summary", Value::from(webhook_summary)),
        (
            "signature_header",
            Value::from(format!("X-{}-Signature", names.header_words)),
        ),
        ("out_of_tree", Value::from(out_of_tree)),
        ("rust_version", Value::from(rust_version)),
        ("lints", Value::from(lints)),
    ];
    let map: BTreeMap<String, Value> = entries
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    Ok(Value::from(map))
}

/// `a`, `a or b`, `a, b or c`.
fn join_alternatives(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_rule_and_say_how_to_fix_them() {
        assert_eq!(id_problem("acme"), None);
        assert_eq!(id_problem("acme-cloud2"), None);
        for bad in [
            "Acme",
            "1acme",
            "acme_cloud",
            "acme-",
            "acme--cloud",
            "",
            "acmé",
        ] {
            let problem = id_problem(bad).unwrap();
            assert!(
                problem.contains("e.g. `acme` or `acme-cloud`"),
                "{bad}: {problem}"
            );
        }
        assert!(id_problem("api").unwrap().contains("reserved"));
        assert!(id_problem(&"a".repeat(41)).unwrap().contains("at most 40"));
    }

    #[test]
    fn names_come_from_the_id() {
        let names = Names::new("acme-cloud", None);
        assert_eq!(names.name, "Acme Cloud");
        assert_eq!(names.type_name, "AcmeCloud");
        assert_eq!(names.header_words, "Acme-Cloud");
        assert_eq!(names.ident, "acme_cloud");
        assert_eq!(names.env, "ACME_CLOUD");
        assert_eq!(names.crate_name, "patchbay-connector-acme-cloud");
        assert_eq!(Names::new("acme", Some(" ACME Corp ")).name, "ACME Corp");
    }

    #[test]
    fn none_stands_alone_and_names_are_checked() {
        let mut options = NewConnector::with_id("acme");
        options.auth = vec![AuthArg::None, AuthArg::ApiKey];
        options.name = Some("Acme \"Corp\"".to_owned());
        let problems = choices(&options).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("must not contain quotes"));
        assert!(problems[1].contains("give `none` alone"));
    }

    #[test]
    fn dependencies_are_named_for_where_the_crate_lives() {
        let manifest = "[workspace.dependencies]\nserde = { version = \"1\", features = [\"derive\"] }\nhex = \"0.4\"\n";
        let in_tree = Dependencies::new(manifest, &Placement::InTree).unwrap();
        assert_eq!(
            in_tree.line("serde", false).unwrap(),
            "serde.workspace = true"
        );
        assert_eq!(
            in_tree.line("axum", true).unwrap(),
            "axum = { workspace = true, optional = true }"
        );
        let outside = Dependencies::new(
            manifest,
            &Placement::OutOfTree {
                dir: PathBuf::from("/elsewhere/acme"),
                patchbay: PatchbaySource::Path("../..".to_owned()),
            },
        )
        .unwrap();
        assert_eq!(
            outside.line("patchbay-core", false).unwrap(),
            "patchbay-core = { path = \"../../crates/patchbay-core\" }"
        );
        assert_eq!(
            outside.line("hex", true).unwrap(),
            "hex = { version = \"0.4\", optional = true }"
        );
        assert_eq!(
            outside.line("serde", true).unwrap(),
            "serde = { version = \"1\", features = [\"derive\"], optional = true }"
        );
        assert!(outside.line("left-pad", false).is_err());
        let released = Dependencies::new(
            manifest,
            &Placement::OutOfTree {
                dir: PathBuf::from("/elsewhere/acme"),
                patchbay: PatchbaySource::Version("0.2.0".to_owned()),
            },
        )
        .unwrap();
        assert_eq!(
            released.line("patchbay-testkit", false).unwrap(),
            "patchbay-testkit = \"0.2.0\""
        );
    }

    #[test]
    fn path_dependencies_are_relative_inside_the_checkout() {
        let root = Path::new("/work/patchbay");
        assert_eq!(
            path_from(Path::new("/work/patchbay/examples/hello"), root),
            "../.."
        );
        assert_eq!(path_from(Path::new("/tmp/acme"), root), "/work/patchbay");
        assert_eq!(
            absolute(Path::new("/work/patchbay/examples/../examples/hello")).unwrap(),
            PathBuf::from("/work/patchbay/examples/hello")
        );
    }

    /// Every file of `options` as planned against this checkout (nothing is written).
    fn planned(options: &NewConnector) -> BTreeMap<String, String> {
        let workspace = Workspace::current();
        let plan = plan(&workspace, options).unwrap();
        let relative = |path: &Path| {
            path.strip_prefix(&workspace.root)
                .unwrap_or(path)
                .display()
                .to_string()
        };
        plan.creates
            .iter()
            .map(|(path, content)| (relative(path), content.clone()))
            .chain(
                plan.edits
                    .iter()
                    .map(|edit| (relative(&edit.path), edit.after.clone())),
            )
            .collect()
    }

    #[test]
    fn every_combination_of_options_renders() {
        let kinds = [
            vec![AuthArg::ApiKey],
            vec![AuthArg::Basic],
            vec![AuthArg::Oauth],
            vec![AuthArg::None],
            vec![AuthArg::ApiKey, AuthArg::Basic],
            vec![AuthArg::Oauth, AuthArg::ApiKey],
            vec![AuthArg::Oauth, AuthArg::Basic],
            vec![AuthArg::Oauth, AuthArg::ApiKey, AuthArg::Basic],
        ];
        for auth in kinds {
            for webhook in [WebhookArg::None, WebhookArg::Token, WebhookArg::Hmac] {
                let mut options = NewConnector::with_id("render-check");
                options.auth = auth.clone();
                options.webhook = webhook;
                let files = planned(&options);
                let webhook_file = files.contains_key("connectors/render-check/src/webhook.rs");
                assert_eq!(
                    webhook_file,
                    webhook != WebhookArg::None,
                    "{auth:?} {webhook:?}"
                );
                assert_eq!(
                    files.len(),
                    14 + usize::from(webhook_file) + usize::from(auth.contains(&AuthArg::Oauth))
                );
                for (path, content) in &files {
                    assert!(
                        !content.contains("{{") && !content.contains("{%"),
                        "{path} keeps template syntax"
                    );
                }
            }
        }
    }

    #[test]
    fn an_oauth_connector_names_its_variables_in_the_env_example() {
        let mut options = NewConnector::with_id("acme-cloud");
        options.auth = vec![AuthArg::Oauth];
        let files = planned(&options);
        let lib = &files["connectors/acme-cloud/src/lib.rs"];
        let env_example = &files[".env.example"];
        for variable in ["ACME_CLOUD_CLIENT_ID", "ACME_CLOUD_CLIENT_SECRET"] {
            assert!(
                lib.contains(&format!("\"{variable}\"")),
                "{variable} in lib.rs"
            );
            assert!(
                env_example.contains(&format!("\n# {variable}=\n")),
                "{variable} in .env.example"
            );
        }
        assert!(env_example.contains("\n\n# Acme Cloud (docs/connectors/acme-cloud.md)."));
    }

    #[test]
    fn a_taken_id_is_refused_with_every_reason() {
        let refusal = plan(&Workspace::current(), &NewConnector::with_id("datadog")).unwrap_err();
        let message = refusal.to_string();
        assert!(message.starts_with("new-connector refused; nothing was written:"));
        for reason in [
            "connectors/datadog already exists",
            "docs/connectors/datadog.md already exists",
            "host/Cargo.toml already has the feature connector-datadog",
        ] {
            assert!(message.contains(reason), "{reason}: {message}");
        }
    }

    #[test]
    fn text_is_tidied() {
        assert_eq!(tidy("\n# A\n\n\n\nb  \n\n"), "# A\n\nb\n");
        assert_eq!(join_alternatives(&["a", "b", "c"]), "a, b or c");
    }
}
