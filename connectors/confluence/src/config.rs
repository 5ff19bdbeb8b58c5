//! Non-secret settings of a connection to Confluence.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to Confluence, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfluenceConfig {
    /// The account's name, as Confluence reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
