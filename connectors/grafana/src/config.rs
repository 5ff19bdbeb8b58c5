//! Non-secret settings of a connection to Grafana.

use serde::{Deserialize, Serialize};

/// Non-secret settings of a connection to Grafana, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrafanaConfig {
    /// The account's name, as Grafana reports it during validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_name: Option<String>,
}
