//! Non-secret settings of a Google Cloud connection: how it authenticates, who it
//! is, which projects it can reach and which of them the user picked.

use serde::{Deserialize, Serialize};

/// Most projects a connection may select: validation makes four calls per project.
pub const MAX_SELECTED_PROJECTS: usize = 10;
/// Most accessible projects kept in the config to show the picker.
pub const MAX_LISTED_PROJECTS: usize = 100;
/// When no project is picked, all accessible projects are selected if there are at
/// most this many (the reference asks for a choice above five).
pub const AUTO_SELECT_LIMIT: usize = 5;

/// How the connection authenticates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// A Google account through OAuth 2.0; tokens in the token slot.
    #[default]
    Oauth,
    /// An uploaded service-account JSON key; access tokens minted per use.
    ServiceAccount,
}

/// A project the credentials can reach, as Resource Manager lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    /// The project id (`tokyo-rain-123`), which operations take as `project`.
    pub project_id: String,
    /// The display name, when the project has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The resource name (`projects/415104041262`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Non-secret settings of a connection to Google Cloud, stored in the records database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpConfig {
    /// OAuth or service account.
    #[serde(default)]
    pub auth_type: AuthType,
    /// The Google account's email (OAuth) or the service account's `client_email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The `project_id` of an uploaded service-account key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_project_id: Option<String>,
    /// The projects the user asked for when connecting (the `projects` option or field).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested_projects: Vec<String>,
    /// The projects the credentials could reach at the last validation (at most
    /// [`MAX_LISTED_PROJECTS`]), for the picker.
    #[serde(default)]
    pub accessible_projects: Vec<ProjectSummary>,
    /// The projects operations may use; every operation's `project` is one of these.
    #[serde(default)]
    pub projects: Vec<String>,
    /// The OAuth scopes Google granted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_scopes: Vec<String>,
}

impl GcpConfig {
    /// Settings for an OAuth grant with the projects asked for and the scopes granted.
    pub fn oauth(requested_projects: Vec<String>, granted_scopes: Vec<String>) -> Self {
        Self {
            auth_type: AuthType::Oauth,
            requested_projects,
            granted_scopes,
            ..Self::default()
        }
    }

    /// Settings for a service-account key.
    pub fn service_account(
        client_email: String,
        key_project_id: String,
        requested_projects: Vec<String>,
    ) -> Self {
        Self {
            auth_type: AuthType::ServiceAccount,
            email: Some(client_email),
            key_project_id: Some(key_project_id),
            requested_projects,
            ..Self::default()
        }
    }
}

/// Whether `id` looks like a Google Cloud project id: 6 to 30 characters of
/// lower-case letters, digits and hyphens, starting with a letter (older projects
/// may also carry a `domain:` prefix).
pub fn is_project_id(id: &str) -> bool {
    let bare = id.rsplit(':').next().unwrap_or(id);
    (6..=30).contains(&bare.len())
        && bare.starts_with(|c: char| c.is_ascii_lowercase())
        && bare
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | ':' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_follow_google_s_rules() {
        for good in ["tokyo-rain-123", "acme-prod", "example.com:legacy-1"] {
            assert!(is_project_id(good), "{good}");
        }
        for bad in [
            "short",
            "1starts-with-digit",
            "UPPER-case-1",
            "has space 1",
            "a/b-cdef",
            "",
        ] {
            assert!(!is_project_id(bad), "{bad}");
        }
    }
}
