//! The JSON messages of the agent protocol: v1 as the original agent speaks it,
//! plus the optional extensions.

use serde::{Deserialize, Serialize};

/// One WebSocket text frame of the protocol, tagged by its `type` field.
///
/// Extension fields are `Option`s skipped when absent, so a v1 peer reads what
/// it knows and ignores the rest. A `type` this crate does not know parses as
/// [`Message::Unknown`], which both sides drop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Agent → host, right after connecting.
    Register {
        /// The agent's own idea of its cluster id; advisory only, the service
        /// binds the cluster to the token.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster_id: Option<String>,
        /// The agent's version (the chart's `AGENT_VERSION`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_version: Option<String>,
        /// Extension: the protocol version the agent speaks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol_version: Option<u32>,
        /// Extension: the agent's limits and allowlist.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capabilities: Option<Capabilities>,
    },
    /// Host → agent, once authenticated: the cluster the token belongs to.
    Connected {
        /// The server-assigned cluster id.
        #[serde(default)]
        cluster_id: String,
        /// The cluster's display name.
        #[serde(default)]
        cluster_name: String,
    },
    /// Agent → host, every [`crate::HEARTBEAT_INTERVAL`].
    Heartbeat {
        /// The agent's idea of its cluster id (advisory).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster_id: Option<String>,
    },
    /// Host → agent, answering a heartbeat.
    HeartbeatAck,
    /// Host → agent: run kubectl once.
    KubectlCommand {
        /// Correlates the answer (a UUID).
        command_id: String,
        /// The arguments without `kubectl`, as one string (v1). Agents that
        /// speak the extensions use `args` instead; v1 agents split this on whitespace.
        command: String,
        /// Seconds before the agent kills the command.
        #[serde(default = "default_timeout")]
        timeout: u64,
        /// Extension: the exact argv without `kubectl`. Used when present.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        args: Option<Vec<String>>,
    },
    /// Agent → host: how a command ended.
    CommandResponse {
        /// The `command_id` of the command.
        command_id: String,
        /// Whether kubectl exited with 0.
        success: bool,
        /// Standard output (lossy UTF-8), cut at the agent's output cap.
        output: String,
        /// Standard error when the command failed, else `null`.
        error: Option<String>,
        /// kubectl's exit code, or 124 (timeout), 130 (cancelled), 127 (no kubectl).
        return_code: i32,
        /// Extension: whether the output was cut at the cap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        truncated: Option<bool>,
        /// Extension: how long the command ran.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        /// Extension: the same in microseconds, precise enough to subtract from a
        /// round trip measured outside the agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_us: Option<u64>,
        /// Extension: how many bytes of standard output kubectl wrote before the cut.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stdout_bytes: Option<u64>,
    },
    /// Extension, host → agent: kill a running command.
    Cancel {
        /// The `command_id` of the command to kill.
        command_id: String,
    },
    /// Extension, agent → host: a command was refused, or a frame made no sense.
    Error {
        /// The command this is about, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command_id: Option<String>,
        /// What went wrong, for machines.
        code: ErrorCode,
        /// What went wrong, for people.
        message: String,
    },
    /// A message type this crate does not know; dropped by both sides.
    #[serde(other)]
    Unknown,
}

fn default_timeout() -> u64 {
    crate::DEFAULT_TIMEOUT_SECS
}

/// What an agent reports about itself in `register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    /// How many commands the agent runs at once before answering `busy`.
    pub max_concurrency: u32,
    /// Where the agent cuts a command's output.
    pub max_output_bytes: u64,
    /// [`crate::allowlist::Allowlist::version`] of the agent's allowlist.
    pub allowlist_version: String,
}

/// The `code` of an [`Message::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The agent's allowlist refused the command.
    VerbNotAllowed,
    /// The agent already runs as many commands as it may.
    Busy,
    /// The frame or the command was malformed.
    BadRequest,
    /// A code this crate does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::VerbNotAllowed => "verb_not_allowed",
            ErrorCode::Busy => "busy",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message {
    /// Parses one text frame. Unknown `type`s give [`Message::Unknown`]; a frame
    /// that is not JSON, has no `type` or has ill-typed fields is an error.
    pub fn parse(text: &str) -> Result<Message, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The message as one JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("every message field is a string, number, bool or list of strings")
    }

    /// A `kubectl_command` for `argv` (without `kubectl`), carrying both the v1
    /// `command` string and the exact `args`.
    pub fn kubectl_command(command_id: impl Into<String>, argv: Vec<String>, timeout: u64) -> Self {
        Message::KubectlCommand {
            command_id: command_id.into(),
            command: shell_join(&argv),
            timeout,
            args: Some(argv),
        }
    }

    /// The argv of a `kubectl_command`: `args` when present, else the v1
    /// `command` split on whitespace. `None` for other messages.
    pub fn kubectl_argv(&self) -> Option<Vec<String>> {
        match self {
            Message::KubectlCommand { command, args, .. } => Some(
                args.clone()
                    .unwrap_or_else(|| argv_from_v1_command(command)),
            ),
            _ => None,
        }
    }
}

/// Joins argv into the v1 `command` string. v1 agents split it on whitespace
/// without unquoting, so an argument is quoted (POSIX single quotes) only when
/// it holds whitespace, a quote or a backslash, or is empty: every argv a v1
/// agent can run at all reaches it unchanged. Written here rather than with a
/// shell-quoting crate because those also quote `=`, `*` or `{`, which a v1
/// agent would pass to kubectl literally.
pub fn shell_join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|arg| quote_for_v1(arg.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote_for_v1(arg: &str) -> String {
    let needs_quotes = arg.is_empty()
        || arg
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\'));
    if needs_quotes {
        format!("'{}'", arg.replace('\'', r#"'\''"#))
    } else {
        arg.to_owned()
    }
}

/// How a v1 agent reads the `command` string: split on whitespace, no quoting.
pub fn argv_from_v1_command(command: &str) -> Vec<String> {
    command.split_whitespace().map(str::to_owned).collect()
}
