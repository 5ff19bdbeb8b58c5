//! Non-secret settings of a connection to an AWS account.

use serde::{Deserialize, Serialize};

/// How Patchbay reaches the account; the only method is role assumption.
pub const CONNECTION_METHOD: &str = "sts_assume_role";

/// Non-secret settings of a connection to one AWS account, stored in the records
/// database. The ExternalId is not here: it lives in the secret store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwsConfig {
    /// The role Patchbay assumes, `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// A second, read-only role; when set, queries use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_role_arn: Option<String>,
    /// The region queries run in unless they name another.
    pub region: String,
    /// The customer's account id, from the role ARN.
    pub account_id: String,
    /// Always `sts_assume_role`.
    #[serde(default = "connection_method")]
    pub connection_method: String,
    /// Whether the main role differs from the read-only one (it may act, not only read).
    #[serde(default)]
    pub can_execute: bool,
    /// The assumed identity's ARN seen at validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assumed_arn: Option<String>,
}

fn connection_method() -> String {
    CONNECTION_METHOD.to_owned()
}

impl AwsConfig {
    /// The role queries assume: the read-only one when there is one.
    pub fn query_role(&self) -> &str {
        self.read_only_role_arn.as_deref().unwrap_or(&self.role_arn)
    }
}
