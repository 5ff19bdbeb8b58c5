//! Non-secret settings of a connection to OVHcloud.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to OVHcloud, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OvhConfig {
    /// The account's name, as OVHcloud reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
