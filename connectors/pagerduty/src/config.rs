//! Non-secret settings of a connection to PagerDuty.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to PagerDuty, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerdutyConfig {
    /// The account's name, as PagerDuty reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
