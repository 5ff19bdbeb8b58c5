//! The secret-store contract.

use std::fmt;

use async_trait::async_trait;
use patchbay_core::{Result, RevealedJson};
use serde::{Deserialize, Serialize};

/// Where a secret lives, as stored in records: `local:<id>` or `vault:<mount>/<path>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

impl SecretRef {
    /// The backend prefix (`local`, `vault`).
    pub fn scheme(&self) -> &str {
        self.0.split_once(':').map_or("", |(scheme, _)| scheme)
    }

    /// Everything after the scheme.
    pub fn path(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, path)| path)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a new secret belongs to; backends derive its path from this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretLocation {
    /// The tenant segment: the org id if any, else the user id.
    pub tenant: String,
    /// The connector id.
    pub connector: String,
    /// The connection id.
    pub connection_id: String,
}

/// Stores credentials by reference.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Writes a new secret and returns its reference.
    async fn put(&self, location: &SecretLocation, value: &RevealedJson) -> Result<SecretRef>;

    /// The reference a `put` to `location` writes, for backends where a failed
    /// `put` may still have been carried out (a timeout against a slow server), so
    /// the caller can remove what may have been written. `None` where a failed
    /// write never leaves anything behind.
    fn reference_for(&self, location: &SecretLocation) -> Option<SecretRef>;

    /// Overwrites an existing secret (token rotation).
    async fn update(&self, reference: &SecretRef, value: &RevealedJson) -> Result<()>;

    /// Reads a secret; `NotFound` if it is gone.
    async fn get(&self, reference: &SecretRef) -> Result<RevealedJson>;

    /// Reads a secret from the backend itself, bypassing any cache, so a value
    /// another replica just wrote (a refreshed token) is seen.
    async fn get_uncached(&self, reference: &SecretRef) -> Result<RevealedJson>;

    /// Deletes a secret and every version of it; deleting a missing secret succeeds.
    async fn delete(&self, reference: &SecretRef) -> Result<()>;

    /// Checks the backend is reachable and usable.
    async fn health(&self) -> Result<()>;

    /// A short name for health reports (`local`, `vault`).
    fn backend(&self) -> &'static str;
}
