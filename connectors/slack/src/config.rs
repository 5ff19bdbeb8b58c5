//! Connection settings: what a Slack connection keeps outside the secret store.
//!
//! Slack has no connect form; the settings come from the `oauth.v2.access` answer
//! (workspace, bot user, granted scopes) and app-level events are routed by the
//! workspace id kept here.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Slack has no connect form: a workspace is connected through the OAuth flow.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectOptions {}

/// Non-secret settings of a Slack connection, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlackConfig {
    /// The workspace id (`T…`); app-level events are routed by it.
    pub team_id: String,
    /// The workspace name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_name: Option<String>,
    /// The Enterprise Grid organisation id (`E…`), for Grid workspaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_id: Option<String>,
    /// The bot's user id (`U…`), which mentions carry as `<@U…>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_user_id: Option<String>,
    /// The Slack app id (`A…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The Slack user who installed the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installer_user_id: Option<String>,
    /// The bot scopes Slack granted.
    #[serde(default)]
    pub granted_scopes: Vec<String>,
}

impl SlackConfig {
    /// Whether Slack granted `scope` to the bot.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.granted_scopes.iter().any(|granted| granted == scope)
    }
}
