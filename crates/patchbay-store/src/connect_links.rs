//! One-time connect links: an operator hands a person a link that opens the
//! Connectors page at one connector's form, acting for one named user, without an
//! API key. Only SHA-256 hashes of the link token and of the browser session it
//! opens are stored.

use chrono::{DateTime, Utc};
use patchbay_core::Tenant;

/// How long the browser session a link opens lasts, from the moment it is opened.
pub const CONNECT_LINK_SESSION: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// How long links are kept after their expiry (and their session's), so an old link
/// is still told apart from a forged one; older rows are purged on insert.
pub const CONNECT_LINK_RETENTION: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// One connect link: who it acts for and which connector it opens.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectLinkRecord {
    /// A random id, for logs and listings.
    pub id: String,
    /// SHA-256 of the link's token, hex.
    pub token_hash: String,
    /// The user (and organisation) the link connects for.
    pub tenant: Tenant,
    /// The connector whose form it opens; the session may connect only this one.
    pub connector: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// After this it cannot be opened.
    pub expires_at: DateTime<Utc>,
    /// When it was opened (it opens once).
    pub opened_at: Option<DateTime<Utc>>,
    /// When the browser session it opened ends.
    pub session_expires_at: Option<DateTime<Utc>>,
}

/// What opening a link found.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenedLink {
    /// Unused and within its lifetime: it is used now, and the session is bound.
    Opened(ConnectLinkRecord),
    /// Opened before: links work once.
    AlreadyUsed,
    /// Never opened, but past its expiry.
    Expired,
    /// Never issued here, or purged.
    Unknown,
}
