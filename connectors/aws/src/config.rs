//! Non-secret settings of a connection to Amazon Web Services.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to Amazon Web Services, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsConfig {
    /// The account's name, as Amazon Web Services reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
