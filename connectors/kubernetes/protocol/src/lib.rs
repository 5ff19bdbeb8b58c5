//! The protocol between Patchbay and its in-cluster kubectl agent.
//!
//! Both sides depend on this crate so they cannot disagree: the WebSocket path
//! and headers, the JSON messages (protocol v1 plus its extensions), the close
//! reasons that tell an agent to stop retrying, the limits, and the read-only
//! [`allowlist`] of kubectl invocations that both the agent and the service enforce.
//!
//! Version 1 is the wire format of the original agent and stays readable by it:
//! every extension field is optional and skipped when absent, and unknown
//! message types parse as [`Message::Unknown`] so either side can drop them.

#![deny(missing_docs)]

pub mod allowlist;
mod close;
#[cfg(feature = "fake")]
pub mod fake;
mod message;

use std::time::Duration;

pub use close::{CloseReason, POLICY_VIOLATION};
pub use message::{argv_from_v1_command, shell_join, Capabilities, ErrorCode, Message};

/// The WebSocket path the agent connects to on the service.
pub const AGENT_PATH: &str = "/kubectl-agent";
/// The protocol version this crate speaks: v1 plus the extensions
/// (`cancel`, `error`, capabilities, response metrics, terminal 4xxx closes).
pub const PROTOCOL_VERSION: u32 = 1;
/// The upgrade header in which the agent sends its protocol version. A host that
/// sees it may close with the terminal 4xxx codes instead of 1008.
pub const PROTOCOL_HEADER: &str = "x-patchbay-agent-protocol";
/// Every agent token starts with this prefix, so scanners and people recognise it.
pub const TOKEN_PREFIX: &str = "pbk8s_";
/// How often each side sends a WebSocket ping.
pub const PING_INTERVAL: Duration = Duration::from_secs(20);
/// How long a ping may wait for its pong before the connection counts as dead.
pub const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the agent sends an application `heartbeat`.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);
/// A cluster whose last heartbeat is older than this shows as stale.
pub const STALE_AFTER: Duration = Duration::from_secs(180);
/// The largest WebSocket frame (and message) either side accepts.
pub const MAX_FRAME_BYTES: usize = 10 * 1024 * 1024;
/// The default cap on a command's output, kept below [`MAX_FRAME_BYTES`].
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// A command's timeout when the service gives none.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// The longest timeout a command may ask for.
pub const MAX_TIMEOUT_SECS: u64 = 300;
/// The return code of a command the agent killed at its timeout (as `timeout(1)` does).
pub const TIMEOUT_RETURN_CODE: i32 = 124;
/// The return code of a command the agent killed on `cancel` (as for SIGINT).
pub const CANCELLED_RETURN_CODE: i32 = 130;
/// The return code when the agent could not find kubectl (as a shell does).
pub const NOT_FOUND_RETURN_CODE: i32 = 127;
