//! Non-secret settings of a connection to Microsoft Azure.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to Microsoft Azure, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AzureConfig {
    /// The account's name, as Microsoft Azure reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
