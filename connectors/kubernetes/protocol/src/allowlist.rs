//! The read-only kubectl allowlist, enforced by the agent before it runs anything
//! and by the service before it sends a command, so neither side alone decides.
//!
//! kubectl parses its flags with pflag, so the checks follow pflag's rules:
//! `--flag value`, `--flag=value`, `-f value`, `-f=value`, `-fvalue`, and
//! grouped boolean shorthands (`-As value`). Flags may come before or after the
//! verb, and `--` ends the flags.

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

use crate::ErrorCode;

/// The verbs the allowlist may contain: kubectl's read-only commands.
pub const READ_ONLY_VERBS: [&str; 11] = [
    "get",
    "describe",
    "logs",
    "top",
    "events",
    "explain",
    "api-resources",
    "api-versions",
    "cluster-info",
    "version",
    "auth can-i",
];

/// Flags that change who kubectl is or which cluster it talks to. The agent's
/// own service account and in-cluster API are the only identity and target.
pub const IDENTITY_FLAGS: [&str; 16] = [
    "kubeconfig",
    "server",
    "token",
    "as",
    "as-group",
    "as-uid",
    "context",
    "cluster",
    "user",
    "username",
    "password",
    "certificate-authority",
    "client-certificate",
    "client-key",
    "insecure-skip-tls-verify",
    "tls-server-name",
];

/// kubectl's global flags that take a value (`kubectl options`).
const GLOBAL_VALUE_FLAGS: [&str; 23] = [
    "as",
    "as-group",
    "as-uid",
    "cache-dir",
    "certificate-authority",
    "client-certificate",
    "client-key",
    "cluster",
    "context",
    "kubeconfig",
    "log-flush-frequency",
    "namespace",
    "password",
    "profile",
    "profile-output",
    "request-timeout",
    "server",
    "tls-server-name",
    "token",
    "user",
    "username",
    "v",
    "vmodule",
];

/// kubectl's global boolean flags.
const GLOBAL_BOOL_FLAGS: [&str; 5] = [
    "disable-compression",
    "insecure-skip-tls-verify",
    "match-server-version",
    "warnings-as-errors",
    "help",
];

/// The global shorthands that take a value: `-n` namespace, `-s` server, `-v` verbosity.
const GLOBAL_VALUE_SHORTS: [char; 3] = ['n', 's', 'v'];

/// The long flags of `verb` (besides the global ones) that take a value, so
/// their values are not mistaken for resource names.
fn verb_value_flags(verb: &str) -> &'static [&'static str] {
    match verb {
        "get" => &[
            "output",
            "selector",
            "label-columns",
            "field-selector",
            "sort-by",
            "template",
            "chunk-size",
            "subresource",
            "raw",
            "filename",
            "kustomize",
        ],
        "describe" => &["selector", "chunk-size", "filename", "kustomize"],
        "logs" => &[
            "container",
            "selector",
            "since",
            "since-time",
            "tail",
            "limit-bytes",
            "max-log-requests",
            "pod-running-timeout",
        ],
        "top" => &["selector", "field-selector", "sort-by", "containers"],
        "events" => &["output", "for", "types", "chunk-size", "template"],
        "explain" => &["api-version", "output"],
        "api-resources" => &["output", "api-group", "verbs", "sort-by", "categories"],
        "auth" => &["subresource"],
        _ => &[],
    }
}

/// The shorthands of `verb` (besides the global ones) that take a value. `-f`
/// means `--filename` for get and describe but `--follow` (boolean) for logs.
fn verb_value_shorts(verb: &str) -> &'static [char] {
    match verb {
        "get" => &['o', 'l', 'L', 'f', 'k'],
        "describe" => &['l', 'f', 'k'],
        "logs" => &['c', 'l'],
        "top" => &['l'],
        "events" => &['o'],
        "api-resources" => &['o'],
        _ => &[],
    }
}

/// Why [`Allowlist::from_env_list`] rejected a configured list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    /// The list named no verb at all.
    #[error("the kubectl allowlist is empty: name at least one of {}", READ_ONLY_VERBS.join(", "))]
    Empty,
    /// The list named a verb that is not read-only.
    #[error("the kubectl allowlist names `{verb}`, which is not a read-only verb: use only {}", READ_ONLY_VERBS.join(", "))]
    NotReadOnly {
        /// The verb as configured.
        verb: String,
    },
}

/// Why [`Allowlist::check`] refused a command; the message names the verb or flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// [`ErrorCode::VerbNotAllowed`] for policy refusals, [`ErrorCode::BadRequest`]
    /// for argv that cannot be read.
    pub code: ErrorCode,
    /// What was refused and why.
    pub message: String,
}

impl Refusal {
    fn not_allowed(message: impl Into<String>) -> Self {
        Refusal {
            code: ErrorCode::VerbNotAllowed,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Refusal {
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }
}

/// The kubectl verbs a cluster allows, and whether Secrets may be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    /// Allowed verbs, each one of [`READ_ONLY_VERBS`] (`auth can-i` with its space).
    pub verbs: BTreeSet<String>,
    /// Whether `get`/`describe` may read Secrets.
    pub allow_secrets: bool,
}

impl Default for Allowlist {
    /// Every read-only verb, no Secrets.
    fn default() -> Self {
        Allowlist {
            verbs: READ_ONLY_VERBS.iter().map(|v| (*v).to_owned()).collect(),
            allow_secrets: false,
        }
    }
}

impl Allowlist {
    /// Reads a comma-separated list such as `get,describe,logs,auth can-i`.
    /// Only read-only verbs are accepted; Secrets stay refused.
    pub fn from_env_list(list: &str) -> Result<Allowlist, AllowlistError> {
        let mut verbs = BTreeSet::new();
        for item in list.split(',') {
            let verb = item.split_whitespace().collect::<Vec<_>>().join(" ");
            if verb.is_empty() {
                continue;
            }
            if !READ_ONLY_VERBS.contains(&verb.as_str()) {
                return Err(AllowlistError::NotReadOnly { verb });
            }
            verbs.insert(verb);
        }
        if verbs.is_empty() {
            return Err(AllowlistError::Empty);
        }
        Ok(Allowlist {
            verbs,
            allow_secrets: false,
        })
    }

    /// The same list with Secrets allowed or not.
    pub fn with_secrets(mut self, allow_secrets: bool) -> Self {
        self.allow_secrets = allow_secrets;
        self
    }

    /// A short stable fingerprint of the verbs and the Secrets setting, which the
    /// agent reports as `allowlist_version` so the service can tell lists apart.
    pub fn version(&self) -> String {
        let mut hasher = Sha256::new();
        for verb in &self.verbs {
            hasher.update(verb.as_bytes());
            hasher.update(b"\n");
        }
        hasher.update(if self.allow_secrets {
            b"secrets=allowed".as_slice()
        } else {
            b"secrets=refused".as_slice()
        });
        let digest = hasher.finalize();
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        format!("v1-{hex}")
    }

    /// Checks an argv (without `kubectl`) and says why it is refused, if it is.
    pub fn check(&self, argv: &[String]) -> Result<(), Refusal> {
        let parsed = parse(argv)?;
        let verb = parsed.verb.as_str();
        if !self.verbs.contains(verb) {
            return Err(Refusal::not_allowed(format!(
                "kubectl {verb} is not allowed: the agent runs only {}",
                self.verbs.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
        if let Some(raw) = &parsed.raw {
            if verb != "get" {
                return Err(Refusal::not_allowed(format!(
                    "--raw is allowed only with kubectl get, not with kubectl {verb}"
                )));
            }
            if raw.contains('%') || raw.split(['/', '?']).any(|segment| segment == "..") {
                return Err(Refusal::not_allowed(format!(
                    "--raw {raw} is not allowed: use a plain API path without `%` escapes or `..`"
                )));
            }
            if !raw.starts_with('/') {
                return Err(Refusal::not_allowed(format!(
                    "--raw needs an API path starting with `/`, not `{raw}`"
                )));
            }
            let path = raw.split(['?', '#']).next().unwrap_or_default();
            if !self.allow_secrets && path.split('/').any(|segment| segment == "secrets") {
                return Err(Refusal::not_allowed(format!(
                    "--raw {path} reads Secrets, which this agent is not allowed to read"
                )));
            }
        }
        if verb == "cluster-info" && !parsed.positionals.is_empty() {
            return Err(Refusal::not_allowed(format!(
                "kubectl cluster-info {} is not allowed: only plain cluster-info is",
                parsed.positionals.join(" ")
            )));
        }
        if !self.allow_secrets && (verb == "get" || verb == "describe") {
            for resource in resource_tokens(&parsed) {
                if is_secret_resource(&resource) {
                    return Err(Refusal::not_allowed(format!(
                        "kubectl {verb} {resource} reads Secrets, which this agent is not allowed to read"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// What [`parse`] found in an argv.
struct Parsed {
    /// The verb, with `auth can-i` as one.
    verb: String,
    /// Positional arguments after the verb (after `can-i` for `auth can-i`).
    positionals: Vec<String>,
    /// Tokens that may be the value of a flag this module does not know, and so
    /// may also be a resource: checked like resources, to stay on the safe side.
    maybe_positionals: Vec<String>,
    /// The `--raw` path, when given.
    raw: Option<String>,
}

fn parse(argv: &[String]) -> Result<Parsed, Refusal> {
    let mut verb: Option<String> = None;
    let mut positionals = Vec::new();
    let mut maybe_positionals = Vec::new();
    let mut raw = None;
    let mut index = 0;
    let mut flags_ended = false;
    while index < argv.len() {
        let token = &argv[index];
        index += 1;
        if flags_ended || token == "-" || !token.starts_with('-') {
            if verb.is_none() {
                verb = Some(token.clone());
            } else {
                positionals.push(token.clone());
            }
            continue;
        }
        if token == "--" {
            flags_ended = true;
            continue;
        }
        let current_verb = verb.as_deref();
        if let Some(long) = token.strip_prefix("--") {
            let (name, inline_value) = match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (long, None),
            };
            refuse_forbidden_long(name, current_verb)?;
            let known_value = matches!(name, "raw" | "output")
                || GLOBAL_VALUE_FLAGS.contains(&name)
                || current_verb.is_some_and(|v| verb_value_flags(v).contains(&name));
            let known_bool = GLOBAL_BOOL_FLAGS.contains(&name);
            let value = if inline_value.is_some() {
                inline_value
            } else if known_value {
                let value = argv
                    .get(index)
                    .cloned()
                    .ok_or_else(|| Refusal::bad_request(format!("--{name} needs a value")))?;
                index += 1;
                Some(value)
            } else {
                None
            };
            if name == "output" {
                refuse_file_output(value.as_deref().unwrap_or_default())?;
            }
            if name == "raw" {
                raw = value;
            } else if current_verb.is_none() && !known_value && !known_bool {
                return Err(Refusal::bad_request(format!(
                    "--{name} before the command is not a kubectl global flag; put it after the command"
                )));
            } else if !known_value && !known_bool && value.is_none() {
                if let Some(next) = argv.get(index).filter(|next| !next.starts_with('-')) {
                    maybe_positionals.push(next.clone());
                }
            }
            continue;
        }
        index = parse_shorthands(token, argv, index, current_verb)?;
    }
    let Some(mut verb) = verb else {
        return Err(Refusal::bad_request("the command names no kubectl verb"));
    };
    if verb == "auth" {
        if positionals.first().map(String::as_str) != Some("can-i") {
            let sub = positionals.first().cloned().unwrap_or_default();
            return Err(Refusal::not_allowed(format!(
                "kubectl auth {sub} is not allowed: only auth can-i is"
            )));
        }
        positionals.remove(0);
        verb = "auth can-i".to_owned();
    }
    Ok(Parsed {
        verb,
        positionals,
        maybe_positionals,
        raw,
    })
}

/// Reads one `-abc` shorthand group the way pflag does: each letter is a flag;
/// the first one that takes a value takes the rest of the token (after an
/// optional `=`) or else the next argument. Returns the index after what it used.
fn parse_shorthands(
    token: &str,
    argv: &[String],
    mut index: usize,
    verb: Option<&str>,
) -> Result<usize, Refusal> {
    let letters = &token[1..];
    for (offset, letter) in letters.char_indices() {
        if letter == 's' {
            return Err(Refusal::not_allowed(
                "-s (--server) is not allowed: the agent talks only to its own cluster",
            ));
        }
        let file_flag = matches!(verb, Some("get" | "describe")) && matches!(letter, 'f' | 'k');
        if file_flag {
            return Err(Refusal::not_allowed(format!(
                "-{letter} is not allowed: the agent does not read manifests from files or URLs"
            )));
        }
        let takes_value = GLOBAL_VALUE_SHORTS.contains(&letter)
            || (verb.is_some() && letter == 'o')
            || verb.is_some_and(|v| verb_value_shorts(v).contains(&letter));
        if takes_value {
            let rest = &letters[offset + letter.len_utf8()..];
            let value = if rest.is_empty() {
                let Some(next) = argv.get(index) else {
                    return Err(Refusal::bad_request(format!("-{letter} needs a value")));
                };
                index += 1;
                next.as_str()
            } else {
                rest.strip_prefix('=').unwrap_or(rest)
            };
            if letter == 'o' {
                refuse_file_output(value)?;
            }
            return Ok(index);
        }
        if verb.is_none() && letter != 'h' {
            return Err(Refusal::bad_request(format!(
                "-{letter} before the command is not a kubectl global flag; put it after the command"
            )));
        }
    }
    Ok(index)
}

/// Output formats that read a template from a local file: with the agent's
/// filesystem that would print files such as its service account token.
const FILE_OUTPUTS: [&str; 4] = [
    "go-template-file",
    "templatefile",
    "jsonpath-file",
    "custom-columns-file",
];

fn refuse_file_output(value: &str) -> Result<(), Refusal> {
    let format = value
        .split('=')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if FILE_OUTPUTS.contains(&format.as_str()) {
        return Err(Refusal::not_allowed(format!(
            "-o {format} is not allowed: the agent does not read templates from its own files"
        )));
    }
    Ok(())
}

fn refuse_forbidden_long(name: &str, verb: Option<&str>) -> Result<(), Refusal> {
    if IDENTITY_FLAGS.contains(&name) {
        return Err(Refusal::not_allowed(format!(
            "--{name} is not allowed: it changes the identity or the cluster kubectl uses"
        )));
    }
    if matches!(verb, Some("get" | "describe")) && matches!(name, "filename" | "kustomize") {
        return Err(Refusal::not_allowed(format!(
            "--{name} is not allowed: the agent does not read manifests from files or URLs"
        )));
    }
    Ok(())
}

/// The resource types a `get`/`describe` names: the comma list of the first
/// positional, or the type of every `type/name` positional, plus every token
/// that may be one.
fn resource_tokens(parsed: &Parsed) -> Vec<String> {
    let mut tokens = Vec::new();
    let first_is_type_name = parsed
        .positionals
        .first()
        .is_some_and(|first| first.contains('/'));
    let positionals = if first_is_type_name {
        &parsed.positionals[..]
    } else {
        &parsed.positionals[..parsed.positionals.len().min(1)]
    };
    for item in positionals.iter().chain(&parsed.maybe_positionals) {
        for piece in item.split(',') {
            let resource = piece.split('/').next().unwrap_or_default();
            tokens.push(resource.to_owned());
        }
    }
    tokens
}

/// Whether a resource token means Secrets: `secret`, `secrets`, `Secret`,
/// `secrets.v1`, `secrets.v1.` or an abbreviation down to `sec`.
fn is_secret_resource(token: &str) -> bool {
    let base = token
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    base.len() >= 3 && "secrets".starts_with(&base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    fn refused(list: &Allowlist, line: &str) -> Refusal {
        list.check(&argv(line))
            .expect_err(&format!("`{line}` should be refused"))
    }

    fn allowed(list: &Allowlist, line: &str) {
        if let Err(refusal) = list.check(&argv(line)) {
            panic!("`{line}` should be allowed, got: {refusal}");
        }
    }

    #[test]
    fn read_commands_are_allowed() {
        let list = Allowlist::default();
        for line in [
            "get pods -A",
            "get pods -n default -l app=web -o wide",
            "get pods/web-1 -n default -o json",
            "get deployments.apps -A -o yaml",
            "get all -A",
            "get pods,services -n default",
            "get events -n default --sort-by=.lastTimestamp",
            "describe pod web-1 -n default",
            "logs web-1 -n default -c app --previous --since=1h --tail=200",
            "logs -f web-1",
            "logs -csidecar web-1",
            "top pods -A",
            "top nodes",
            "events -A",
            "explain pods",
            "explain pods.spec.containers",
            "api-resources",
            "api-versions",
            "cluster-info",
            "version -o json",
            "auth can-i list pods -A",
            "auth can-i get secrets -A",
            "-n kube-system get pods",
            "--namespace=kube-system get pods",
            "--request-timeout 5s get nodes",
            "get --raw /apis/metrics.k8s.io/v1beta1/nodes",
            "get --raw=/version",
            "get pods -o jsonpath={.items[*].metadata.name}",
            "get pods -ojson",
            "get pods -l name=sidecar-s",
            "get pods -lname=s",
            "get pods secrets-operator-7d9",
            "describe pods -A",
        ] {
            allowed(&list, line);
        }
    }

    #[test]
    fn verbs_outside_the_list_are_refused() {
        let list = Allowlist::default();
        for (line, verb) in [
            ("delete pod web-1", "delete"),
            ("exec web-1 -- sh", "exec"),
            ("apply -f x.yaml", "apply"),
            ("-n default edit deploy/web", "edit"),
            ("config view", "config"),
            ("scale deploy/web --replicas=0", "scale"),
            ("debug node/a", "debug"),
        ] {
            let refusal = refused(&list, line);
            assert_eq!(refusal.code, ErrorCode::VerbNotAllowed, "{line}");
            assert!(
                refusal.message.contains(verb),
                "{line}: {}",
                refusal.message
            );
        }
        let refusal = refused(&list, "auth reconcile -f x.yaml");
        assert!(
            refusal.message.contains("auth reconcile"),
            "{}",
            refusal.message
        );
        let refusal = refused(&list, "auth whoami");
        assert!(refusal.message.contains("only auth can-i"));
        let narrow = Allowlist::from_env_list("get, logs").unwrap();
        let refusal = refused(&narrow, "describe pod a");
        assert!(refusal.message.contains("kubectl describe is not allowed"));
        allowed(&narrow, "get pods");
        refused(&narrow, "auth can-i get pods");
    }

    #[test]
    fn identity_and_target_flags_are_refused_in_every_form() {
        let list = Allowlist::default();
        for line in [
            "get pods --kubeconfig /tmp/k",
            "get pods --kubeconfig=/tmp/k",
            "--kubeconfig=/tmp/k get pods",
            "get pods --server https://evil",
            "get pods --server=https://evil",
            "get pods -s https://evil",
            "get pods -s=https://evil",
            "get pods -shttps://evil",
            "get pods -As https://evil",
            "-s https://evil get pods",
            "get pods --token abc",
            "get pods --token=abc",
            "get pods --as system:admin",
            "get pods --as=system:admin",
            "get pods --as-group=system:masters",
            "get pods --as-uid 0",
            "get pods --context other",
            "get pods --cluster=other",
            "get pods --user admin",
            "get pods --certificate-authority=/x",
            "get pods --client-certificate /x",
            "get pods --client-key=/x",
            "get pods --insecure-skip-tls-verify",
            "get pods --insecure-skip-tls-verify=true",
            "logs web --as=admin",
            "auth can-i get pods --as=admin",
        ] {
            let refusal = refused(&list, line);
            assert_eq!(refusal.code, ErrorCode::VerbNotAllowed, "{line}");
            let named = IDENTITY_FLAGS
                .iter()
                .any(|flag| refusal.message.contains(&format!("--{flag} ")))
                || refusal.message.contains("-s (--server)");
            assert!(named, "{line}: {}", refusal.message);
        }
    }

    #[test]
    fn raw_is_only_for_get_with_a_path() {
        let list = Allowlist::default();
        let refusal = refused(&list, "describe --raw /api");
        assert!(refusal
            .message
            .contains("--raw is allowed only with kubectl get"));
        let refusal = refused(&list, "get --raw api/v1/pods");
        assert!(refusal.message.contains("API path"));
        let refusal = refused(&list, "get --raw /api/v1/namespaces/default/secrets");
        assert!(refusal.message.contains("Secrets"));
        refused(&list, "get --raw=/api/v1/secrets?limit=1");
        allowed(
            &list.clone().with_secrets(true),
            "get --raw /api/v1/namespaces/default/secrets",
        );
    }

    #[test]
    fn secrets_are_refused_in_every_spelling_unless_allowed() {
        let list = Allowlist::default();
        for line in [
            "get secrets",
            "get secret db-password -n default",
            "get Secret -A",
            "get secrets.v1 -A",
            "get secrets.v1. -A",
            "get sec -A",
            "get secret/db -o yaml",
            "get pods/web secret/db",
            "get pods,secrets -A",
            "get configmaps,Secrets -n x",
            "describe secret db",
            "describe secrets/db",
            "get -o yaml secrets",
            "-n default get secrets",
            "get -- secrets",
            "get -n default -- pods,secrets",
            "get --unknown-flag secrets",
        ] {
            let refusal = refused(&list, line);
            assert_eq!(refusal.code, ErrorCode::VerbNotAllowed, "{line}");
            assert!(
                refusal.message.contains("Secrets"),
                "{line}: {}",
                refusal.message
            );
        }
        let open = Allowlist::default().with_secrets(true);
        allowed(&open, "get secrets -A");
        allowed(&open, "describe secret/db");
        allowed(&list, "get all -A");
        allowed(&list, "get pods -- secrets");
    }

    #[test]
    fn output_formats_that_read_local_files_are_refused() {
        let list = Allowlist::default();
        for line in [
            "get pods -o go-template-file=/var/run/secrets/kubernetes.io/serviceaccount/token",
            "get pods -ogo-template-file=/etc/passwd",
            "get pods -o=jsonpath-file=/etc/passwd",
            "get pods --output=custom-columns-file=/etc/passwd",
            "get pods --output templatefile=/etc/passwd --template=/etc/passwd",
            "get pods -Ao jsonpath-file=/x",
            "events -o go-template-file=/x",
            "version -o go-template-file=/x",
        ] {
            let refusal = refused(&list, line);
            assert_eq!(refusal.code, ErrorCode::VerbNotAllowed, "{line}");
            assert!(
                refusal.message.contains("-file") || refusal.message.contains("templatefile"),
                "{line}: {}",
                refusal.message
            );
        }
        allowed(
            &list,
            "get pods -o go-template={{range .items}}{{.metadata.name}}{{end}}",
        );
        allowed(&list, "get pods -o custom-columns=NAME:.metadata.name");
        allowed(&list, "get pods -o jsonpath={.items[*].metadata.name}");
    }

    #[test]
    fn raw_paths_cannot_hide_secrets_behind_escapes() {
        let list = Allowlist::default();
        for line in [
            "get --raw /api/v1/namespaces/default/secr%65ts",
            "get --raw /api/v1/namespaces/default/pods/../secrets",
            "get --raw /apis/../api/v1/secrets",
        ] {
            assert_eq!(
                refused(&list, line).code,
                ErrorCode::VerbNotAllowed,
                "{line}"
            );
        }
        allowed(&list, "get --raw /api/v1/namespaces/default/pods?limit=1");
    }

    #[test]
    fn file_flags_and_cluster_info_dump_are_refused() {
        let list = Allowlist::default();
        for line in [
            "get -f https://example.com/x.yaml",
            "get --filename=x.yaml",
            "describe -k dir",
            "get -Rf dir",
            "cluster-info dump",
        ] {
            let refusal = refused(&list, line);
            assert_eq!(refusal.code, ErrorCode::VerbNotAllowed, "{line}");
        }
    }

    #[test]
    fn unreadable_argv_is_a_bad_request() {
        let list = Allowlist::default();
        for line in [
            "",
            "-n default",
            "--frobnicate get pods",
            "-x get pods",
            "get pods -n",
        ] {
            assert_eq!(refused(&list, line).code, ErrorCode::BadRequest, "`{line}`");
        }
    }

    #[test]
    fn env_lists_accept_only_read_only_verbs() {
        let list = Allowlist::from_env_list(" get ,describe,auth  can-i,, ").unwrap();
        assert_eq!(
            list.verbs.iter().map(String::as_str).collect::<Vec<_>>(),
            ["auth can-i", "describe", "get"]
        );
        assert!(!list.allow_secrets);
        assert_eq!(
            Allowlist::from_env_list("get,delete"),
            Err(AllowlistError::NotReadOnly {
                verb: "delete".into()
            })
        );
        assert_eq!(Allowlist::from_env_list(" , "), Err(AllowlistError::Empty));
        let all = Allowlist::from_env_list(&READ_ONLY_VERBS.join(",")).unwrap();
        assert_eq!(all, Allowlist::default());
    }

    #[test]
    fn versions_are_short_stable_and_distinguish_lists() {
        let default = Allowlist::default();
        assert_eq!(default.version(), Allowlist::default().version());
        assert_eq!(default.version().len(), 15);
        assert!(default.version().starts_with("v1-"));
        assert_ne!(
            default.version(),
            default.clone().with_secrets(true).version()
        );
        assert_ne!(
            default.version(),
            Allowlist::from_env_list("get").unwrap().version()
        );
    }
}
