//! The secret-store contract.

use std::fmt;

use async_trait::async_trait;
use patchbay_core::{Error, ErrorKind, Result, RevealedJson, Tenant};
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

/// The owner a secret is filed under. Organisations and users are kept apart, so an
/// organisation and a user with the same id never share a folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SecretTenant {
    /// Connections of an organisation (every member sees them).
    Org(String),
    /// Connections of a user acting without an organisation.
    User(String),
}

impl SecretTenant {
    /// The folder kind: `orgs` or `users`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Org(_) => "orgs",
            Self::User(_) => "users",
        }
    }

    /// The organisation or user id.
    pub fn id(&self) -> &str {
        match self {
            Self::Org(id) | Self::User(id) => id,
        }
    }
}

impl From<&Tenant> for SecretTenant {
    /// The organisation when there is one, else the user: whoever owns the connection.
    fn from(tenant: &Tenant) -> Self {
        match &tenant.org_id {
            Some(org) => Self::Org(org.clone()),
            None => Self::User(tenant.user_id.clone()),
        }
    }
}

/// What a new secret belongs to; backends derive its path from this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretLocation {
    /// The owner of the connection.
    pub tenant: SecretTenant,
    /// The connector id.
    pub connector: String,
    /// The connection id.
    pub connection_id: String,
}

impl SecretLocation {
    /// The location of the secret of connection `connection_id` of `connector`, owned by `tenant`.
    pub fn new(
        tenant: &Tenant,
        connector: impl Into<String>,
        connection_id: impl Into<String>,
    ) -> Self {
        Self {
            tenant: SecretTenant::from(tenant),
            connector: connector.into(),
            connection_id: connection_id.into(),
        }
    }
}

/// A secret's version: it changes with every write, so a writer can tell whether the
/// secret changed since it read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretVersion(pub u64);

impl fmt::Display for SecretVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
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

    /// Reads a secret and its current version from the backend itself, bypassing any
    /// cache; `NotFound` if it is gone. Pair it with [`SecretStore::update_if_version`].
    async fn get_versioned(&self, reference: &SecretRef) -> Result<(RevealedJson, SecretVersion)>;

    /// Overwrites a secret only if it is still at `expected` (check-and-set) and
    /// returns the new version. [`ErrorKind::Conflict`] when another writer changed it
    /// since `expected` was read; `NotFound` when it is gone. See [`modify`].
    async fn update_if_version(
        &self,
        reference: &SecretRef,
        expected: SecretVersion,
        value: &RevealedJson,
    ) -> Result<SecretVersion>;

    /// Reads a secret; `NotFound` if it is gone.
    async fn get(&self, reference: &SecretRef) -> Result<RevealedJson>;

    /// Reads a secret from the backend itself, bypassing any cache, so a value
    /// another replica just wrote (a refreshed token) is seen.
    async fn get_uncached(&self, reference: &SecretRef) -> Result<RevealedJson>;

    /// Deletes a secret and every version of it; deleting a missing secret succeeds.
    async fn delete(&self, reference: &SecretRef) -> Result<()>;

    /// The references of every secret this store holds, so that secrets no connection
    /// points to (a connect stopped between storing its secret and its record) can be
    /// found and removed.
    async fn list(&self) -> Result<Vec<SecretRef>>;

    /// Checks the backend is reachable and usable.
    async fn health(&self) -> Result<()>;

    /// A short name for health reports (`local`, `vault`).
    fn backend(&self) -> &'static str;
}

/// How many times [`modify`] reads, changes and writes before giving up to other writers.
pub const MODIFY_ATTEMPTS: usize = 5;

/// The conflict error of a check-and-set write that found the secret changed.
pub(crate) fn version_conflict(reference: &SecretRef, expected: SecretVersion) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("secret {reference} changed since version {expected} was read"),
    )
    .with_hint("read the secret again and re-apply the change")
}

/// Changes a secret without losing concurrent writes: reads the latest version,
/// applies `change` to it, and writes with check-and-set; when another writer got
/// there first, reads again and re-applies, at most [`MODIFY_ATTEMPTS`] times.
///
/// `change` must be a pure function of the latest value, as it may run several times.
/// Returns the value written.
pub async fn modify<S, F>(store: &S, reference: &SecretRef, mut change: F) -> Result<RevealedJson>
where
    S: SecretStore + ?Sized,
    F: FnMut(&RevealedJson) -> Result<RevealedJson> + Send,
{
    for _ in 0..MODIFY_ATTEMPTS {
        let (latest, version) = store.get_versioned(reference).await?;
        let next = change(&latest)?;
        match store.update_if_version(reference, version, &next).await {
            Ok(_) => return Ok(next),
            Err(error) if error.kind() == ErrorKind::Conflict => continue,
            Err(error) => return Err(error),
        }
    }
    Err(Error::new(
        ErrorKind::Conflict,
        format!(
            "secret {reference} kept changing under other writers; gave up after \
             {MODIFY_ATTEMPTS} attempts"
        ),
    )
    .with_hint("try again; if it keeps failing, something is rewriting the secret in a loop"))
}
