//! Non-secret settings of a PagerDuty connection and the region's fixed API host.
//!
//! PagerDuty serves US accounts at `api.pagerduty.com` and EU accounts at
//! `api.eu.pagerduty.com`; a connection picks one of these two fixed hosts, never a
//! URL the tenant types, so no address policy is needed for the API base.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The REST API of US accounts.
pub const US_API_BASE: &str = "https://api.pagerduty.com";
/// The REST API of EU accounts.
pub const EU_API_BASE: &str = "https://api.eu.pagerduty.com";

/// Where the PagerDuty account lives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// A US account (`app.pagerduty.com`, API `api.pagerduty.com`).
    #[default]
    Us,
    /// An EU account (`app.eu.pagerduty.com`, API `api.eu.pagerduty.com`).
    Eu,
}

impl Region {
    /// The REST API base of this region.
    pub fn api_base(self) -> &'static str {
        match self {
            Self::Us => US_API_BASE,
            Self::Eu => EU_API_BASE,
        }
    }

    /// `us` or `eu`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Us => "us",
            Self::Eu => "eu",
        }
    }

    /// Reads `us` or `eu` (any case, blank meaning `us`); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "us" => Some(Self::Us),
            "eu" => Some(Self::Eu),
            _ => None,
        }
    }
}

/// How the connection authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// A REST API key, sent as `Authorization: Token token=<key>`.
    ApiToken,
    /// An OAuth access token, sent as `Authorization: Bearer <token>`.
    Oauth,
}

/// Non-secret settings of a PagerDuty connection, stored in the records database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PagerdutyConfig {
    /// API token or OAuth.
    pub auth_type: AuthType,
    /// The account's region, which picks the API host.
    #[serde(default)]
    pub api_region: Region,
    /// A name the user gave the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The account subdomain (`acme` of `acme.pagerduty.com`), filled by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_subdomain: Option<String>,
    /// The email of the user the credentials act as (none for account-level keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_email: Option<String>,
    /// The name of that user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Whether the API key is an account-level key (not tied to a user).
    #[serde(default)]
    pub account_level_key: bool,
    /// OAuth: the scopes PagerDuty granted (it silently drops scopes it does not know).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub granted_scopes: Vec<String>,
}

impl PagerdutyConfig {
    /// Settings for a new connection, before validation fills in the account.
    pub fn new(auth_type: AuthType, api_region: Region) -> Self {
        Self {
            auth_type,
            api_region,
            display_name: None,
            account_subdomain: None,
            user_email: None,
            user_name: None,
            account_level_key: false,
            granted_scopes: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_pick_fixed_hosts() {
        assert_eq!(Region::parse("EU").unwrap().api_base(), EU_API_BASE);
        assert_eq!(Region::parse("").unwrap().api_base(), US_API_BASE);
        assert_eq!(Region::parse("https://evil.example"), None);
    }
}
