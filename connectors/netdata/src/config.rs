//! Non-secret settings of a connection to Netdata.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to Netdata, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetdataConfig {
    /// The account's name, as Netdata reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
