//! Non-secret settings of a connection to Google Cloud.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to Google Cloud, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpConfig {
    /// The account's name, as Google Cloud reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
