//! Tokens of in-cluster agents (the Kubernetes connector's kubectl agent): only
//! their SHA-256 and a display prefix are stored, bound to the connection (the
//! cluster) they were issued for.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether an agent token still authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentTokenStatus {
    /// Authenticates until its expiry.
    Active,
    /// Revoked by a person (disconnect or token revoke); never authenticates again.
    Revoked,
    /// Passed its expiry; written the first time an agent presents it afterwards.
    Expired,
}

impl AgentTokenStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }

    /// Parses the stored text form.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "active" => Self::Active,
            "revoked" => Self::Revoked,
            "expired" => Self::Expired,
            _ => return None,
        })
    }
}

/// One agent token: its hash, never the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentTokenRecord {
    /// The connection (cluster) the token was issued for; the server's cluster id.
    pub connection_id: String,
    /// The cluster's display name, sent to the agent in `connected`.
    pub cluster_name: String,
    /// SHA-256 of the token, hex.
    pub token_hash: String,
    /// The first characters of the token, to recognise it in a list; too short to
    /// authenticate.
    pub token_prefix: String,
    /// Active, revoked or expired.
    pub status: AgentTokenStatus,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops authenticating, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When an agent last authenticated with it.
    pub last_connected_at: Option<DateTime<Utc>>,
    /// When an agent last sent a heartbeat with it.
    pub last_heartbeat: Option<DateTime<Utc>>,
    /// The version the agent reported in `register`.
    pub agent_version: Option<String>,
    /// The capabilities the agent reported in `register` (concurrency, output cap,
    /// allowlist version).
    pub capabilities: Option<serde_json::Value>,
}

impl AgentTokenRecord {
    /// Whether the token has passed its expiry at `now` (aware timestamps on both sides).
    pub fn is_expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|expires_at| expires_at <= now)
    }
}

/// What an agent just did, recorded on its token; `None` fields keep their value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentActivity {
    /// The agent authenticated at this time.
    pub connected_at: Option<DateTime<Utc>>,
    /// The agent sent a heartbeat at this time.
    pub heartbeat_at: Option<DateTime<Utc>>,
    /// The version it reported.
    pub agent_version: Option<String>,
    /// The capabilities it reported.
    pub capabilities: Option<serde_json::Value>,
}
