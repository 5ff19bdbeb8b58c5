//! Who owns a connection.

use serde::{Deserialize, Serialize};

/// The owner of connections and alerts: a user, optionally inside an organisation.
///
/// Connections belong to the organisation when there is one (every member sees
/// them), otherwise to the user alone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Tenant {
    /// The user acting.
    pub user_id: String,
    /// The organisation the user acts for, if any.
    pub org_id: Option<String>,
}

impl Tenant {
    /// A tenant for a user acting alone.
    pub fn user(user_id: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            org_id: None,
        }
    }

    /// The key that scopes records: `org:<id>` or `user:<id>`.
    pub fn scope_key(&self) -> String {
        match &self.org_id {
            Some(org) => format!("org:{org}"),
            None => format!("user:{}", self.user_id),
        }
    }
}
