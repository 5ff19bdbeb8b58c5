//! Non-secret settings of a connection to Hello.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to Hello, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloConfig {
    /// The account's name, as Hello reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
