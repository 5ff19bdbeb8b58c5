//! A [`SecretStore`] on HashiCorp Vault or OpenBao (KV version 2).
//!
//! Each connection's credentials are one KV v2 secret at
//! `<mount>/data/<base>/<orgs|users>/<tenant id>/<connector>/<connection id>`
//! holding `{"schema_version": 1, "secrets": {...}}`; records keep the reference
//! `vault:<mount>/<base>/<orgs|users>/<tenant id>/<connector>/<connection id>`.
//! Organisations and users have folders of their own, so an organisation and a
//! user with the same id never share one. Path segments keep `[A-Za-z0-9_.-]` and
//! percent-encode everything else, so no tenant can name a path outside its own
//! folder. Secrets written in the earlier layout (`<base>/<tenant id>/…`) are moved
//! by [`VaultSecretStore::migrate_legacy_layout`].
//!
//! Patchbay never creates mounts. The token (static or from AppRole) needs the
//! `default` policy (token lookup and renewal) plus, for mount `patchbay` and
//! base path `tenants`:
//!
//! ```hcl
//! path "patchbay/config"              { capabilities = ["read"] }
//! path "patchbay/data/tenants/*"      { capabilities = ["create", "read", "update"] }
//! path "patchbay/metadata/tenants"    { capabilities = ["list"] }
//! path "patchbay/metadata/tenants/*"  { capabilities = ["delete", "list"] }
//! ```
//!
//! Every call is bounded by `PATCHBAY_VAULT_TIMEOUT_SECS`; outages surface as
//! [`Unavailable`](patchbay_core::ErrorKind::Unavailable) errors with the message
//! `credential store unavailable` and a hint naming the cause. Resolved secrets are
//! cached in memory for `PATCHBAY_VAULT_CACHE_TTL_SECS`.

mod cache;
pub mod clock;
mod config;
mod failure;
mod migrate;
mod path;
mod session;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use patchbay_core::{Error, Result, RevealedJson};
use serde_json::{json, Value};
use vaultrs::api::kv2::requests::{
    DeleteSecretMetadataRequest, ListSecretsRequest, ReadSecretRequest, SetSecretRequest,
    SetSecretRequestOptions,
};

use crate::secrets::{version_conflict, SecretLocation, SecretRef, SecretStore, SecretVersion};
use cache::SecretCache;
use clock::{Clock, SystemClock};
pub use config::{
    VaultAuth, VaultConfig, ADDR_ENV, APPROLE_MOUNT, CACERT_ENV, CACHE_TTL_ENV, DEFAULT_CACHE_TTL,
    DEFAULT_KV_BASE_PATH, DEFAULT_KV_MOUNT, DEFAULT_TIMEOUT, KV_BASE_PATH_ENV, KV_MOUNT_ENV,
    NAMESPACE_ENV, ROLE_ID_ENV, SECRET_ID_ENV, TIMEOUT_ENV, TOKEN_ENV,
};
use failure::Failure;
pub use failure::UNAVAILABLE;
pub use migrate::LayoutMigration;
use path::Layout;
pub use path::SCHEME;
use session::Session;
pub use session::TokenStats;

/// The `schema_version` written next to the secrets; bumped if the layout of `secrets` changes.
pub const SCHEMA_VERSION: u64 = 1;

/// Credentials in Vault KV v2; see the [module documentation](self) for layout and policy.
pub struct VaultSecretStore {
    session: Arc<Session>,
    layout: Layout,
    cache: SecretCache,
    clock: Arc<dyn Clock>,
    renewal: Option<tokio::task::AbortHandle>,
}

impl fmt::Debug for VaultSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultSecretStore")
            .field("mount", &self.layout.mount)
            .field("base_path", &self.layout.base_path)
            .field("token_stats", &self.session.stats())
            .finish_non_exhaustive()
    }
}

impl Drop for VaultSecretStore {
    fn drop(&mut self) {
        if let Some(renewal) = &self.renewal {
            renewal.abort();
        }
    }
}

impl VaultSecretStore {
    /// Authenticates, checks that the mount exists and is KV v2, and starts
    /// token renewal.
    ///
    /// A missing mount is [`InvalidConfig`](patchbay_core::ErrorKind::InvalidConfig) on
    /// `VAULT_KV_MOUNT`; an unreachable or sealed Vault is
    /// [`Unavailable`](patchbay_core::ErrorKind::Unavailable).
    pub async fn connect(config: VaultConfig) -> Result<Self> {
        Self::connect_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`VaultSecretStore::connect`], counting cache lifetimes, token expiry and
    /// renewals on `clock` (a [`clock::ManualClock`] lets tests move time).
    pub async fn connect_with_clock(config: VaultConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        let layout = Layout {
            mount: config.mount.clone(),
            base_path: config.base_path.clone(),
        };
        let policy = format!(
            "read on {mount}/config, create/read/update on {mount}/data/{base}/* and delete on \
             {mount}/metadata/{base}/*",
            mount = layout.mount,
            base = layout.base_path
        );
        let (session, plan) = Session::open(&config, policy, Arc::clone(&clock)).await?;
        let session = Arc::new(session);
        let store = Self {
            renewal: plan.map(|plan| session.spawn_renewal(plan)),
            session,
            layout,
            cache: SecretCache::new(config.cache_ttl, Arc::clone(&clock)),
            clock,
        };
        store.check_mount().await?;
        tracing::info!(
            address = %config.address,
            mount = %store.layout.mount,
            base_path = %store.layout.base_path,
            "using Vault for credentials"
        );
        Ok(store)
    }

    /// How many AppRole logins and token renewals have succeeded.
    pub fn token_stats(&self) -> TokenStats {
        self.session.stats()
    }

    fn data_path(&self, path: &str) -> String {
        format!("{}/data/{path}", self.layout.mount)
    }

    /// The command that creates the mount, for hints.
    fn enable_command(&self) -> String {
        let mount = &self.layout.mount;
        format!(
            "`bao secrets enable -path={mount} kv-v2` (or `vault secrets enable -path={mount} kv-v2`)"
        )
    }

    /// The error for a failed call on `path`; a vanished mount is named as such.
    fn vault_error(&self, failure: Failure, path: &str) -> Error {
        if is_missing_mount(&failure) {
            return Error::invalid_config(
                KV_MOUNT_ENV,
                format!(
                    "Vault has no secrets engine mounted at `{}`",
                    self.layout.mount
                ),
            )
            .with_hint(format!(
                "create it with {}; Patchbay never creates mounts",
                self.enable_command()
            ));
        }
        self.session.error(failure, path)
    }

    /// Fails unless the mount exists and is a KV version 2 engine.
    async fn check_mount(&self) -> Result<()> {
        let mount = &self.layout.mount;
        let config_path = format!("{mount}/config");
        let client = self
            .session
            .client()
            .map_err(|failure| self.vault_error(failure, &config_path))?;
        let outcome = self
            .session
            .bounded(vaultrs::kv2::config::read(&*client, mount))
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(failure) if is_missing_mount(&failure) => {
                Err(self.vault_error(failure, &config_path))
            }
            // A KV v1 mount reads `<mount>/config` as a secret named `config`.
            Err(failure) if failure.is_status(404) || matches!(failure, Failure::Malformed(_)) => {
                Err(Error::invalid_config(
                    KV_MOUNT_ENV,
                    format!("the secrets engine at `{mount}` is not KV version 2"),
                )
                .with_hint(format!(
                    "upgrade it with `bao kv enable-versioning {mount}`, or create a new mount \
                     with {} and set {KV_MOUNT_ENV}",
                    self.enable_command()
                )))
            }
            Err(failure) => Err(self.vault_error(failure, &config_path)),
        }
    }

    /// Reads the secret at `path` inside the mount and its version.
    async fn read(&self, reference: &SecretRef, path: &str) -> Result<(RevealedJson, u64)> {
        let data_path = self.data_path(path);
        let client = self
            .session
            .client()
            .map_err(|failure| self.vault_error(failure, &data_path))?;
        let request = ReadSecretRequest::builder()
            .mount(self.layout.mount.as_str())
            .path(path)
            .build()
            .map_err(|error| Error::internal(format!("cannot build Vault request: {error}")))?;
        let response = self
            .session
            .bounded(vaultrs::api::exec_with_result(&*client, request))
            .await
            .map_err(|failure| {
                if failure.is_status(404) && !is_missing_mount(&failure) {
                    missing(reference)
                } else {
                    self.vault_error(failure, &data_path)
                }
            })?;
        let secrets = unwrap_stored(reference, response.data)?;
        Ok((secrets, response.metadata.version))
    }

    /// Writes a new version of the secret at `path` if it is at version `cas`
    /// (0: it must not exist yet); returns the new version.
    async fn write(&self, path: &str, value: &RevealedJson, cas: u64) -> Result<u64, Failure> {
        let client = self.session.client()?;
        let cas = u32::try_from(cas).map_err(|_| Failure::Malformed("version out of range"))?;
        let request = SetSecretRequest::builder()
            .mount(self.layout.mount.as_str())
            .path(path)
            .data(json!({ "schema_version": SCHEMA_VERSION, "secrets": value.expose() }))
            .options(SetSecretRequestOptions { cas })
            .build()
            .map_err(|_| Failure::Malformed("the request could not be built"))?;
        self.session
            .bounded(vaultrs::api::exec_with_result(&*client, request))
            .await
            .map(|metadata| metadata.version)
    }

    /// Deletes the secret at `path` inside the mount with every version; a missing one is fine.
    async fn delete_path(&self, path: &str) -> Result<()> {
        let metadata_path = format!("{}/metadata/{path}", self.layout.mount);
        let client = self
            .session
            .client()
            .map_err(|failure| self.vault_error(failure, &metadata_path))?;
        let request = DeleteSecretMetadataRequest::builder()
            .mount(self.layout.mount.as_str())
            .path(path)
            .build()
            .map_err(|error| Error::internal(format!("cannot build Vault request: {error}")))?;
        match self
            .session
            .bounded(vaultrs::api::exec_with_empty(&*client, request))
            .await
        {
            Ok(()) => Ok(()),
            Err(failure) if failure.is_status(404) && !is_missing_mount(&failure) => Ok(()),
            Err(failure) => Err(self.vault_error(failure, &metadata_path)),
        }
    }
}

impl VaultSecretStore {
    /// The keys directly in the folder at `path` (sub-folders end in `/`); none when
    /// the folder does not exist.
    async fn list_folder(&self, path: &str) -> Result<Vec<String>> {
        let metadata_path = format!("{}/metadata/{path}", self.layout.mount);
        let client = self
            .session
            .client()
            .map_err(|failure| self.vault_error(failure, &metadata_path))?;
        let request = ListSecretsRequest::builder()
            .mount(self.layout.mount.as_str())
            .path(path)
            .build()
            .map_err(|error| Error::internal(format!("cannot build Vault request: {error}")))?;
        match self
            .session
            .bounded(vaultrs::api::exec_with_result(&*client, request))
            .await
        {
            Ok(listed) => Ok(listed.keys),
            Err(failure) if failure.is_status(404) && !is_missing_mount(&failure) => Ok(Vec::new()),
            Err(failure) => Err(self.vault_error(failure, &metadata_path)),
        }
    }
}

/// Whether Vault said no engine is mounted at the path.
fn is_missing_mount(failure: &Failure) -> bool {
    failure.is_status(404) && failure.mentions("no handler for route")
}

fn missing(reference: &SecretRef) -> Error {
    Error::not_found(format!("secret {reference} not found"))
        .with_hint("reconnect the connection to store its credentials again")
}

/// The `secrets` of a stored `{"schema_version": 1, "secrets": ...}` map.
fn unwrap_stored(reference: &SecretRef, mut data: Value) -> Result<RevealedJson> {
    let version = data.get("schema_version").and_then(Value::as_u64);
    match (version, data.get_mut("secrets")) {
        (Some(SCHEMA_VERSION), Some(secrets)) => Ok(RevealedJson::new(secrets.take())),
        (Some(version), Some(_)) => Err(Error::internal(format!(
            "secret {reference} has schema_version {version}, which this Patchbay cannot read"
        ))
        .with_hint("upgrade Patchbay to the version that wrote it")),
        _ => Err(Error::internal(format!(
            "secret {reference} is not in Patchbay's format (schema_version and secrets)"
        ))
        .with_hint("it was written by another tool; reconnect the connection to replace it")),
    }
}

#[async_trait]
impl SecretStore for VaultSecretStore {
    async fn put(&self, location: &SecretLocation, value: &RevealedJson) -> Result<SecretRef> {
        let path = self.layout.secret_path(location)?;
        let reference = self.layout.reference(&path);
        match self.write(&path, value, 0).await {
            Ok(_) => {
                self.cache.invalidate(&reference.0);
                tracing::debug!(%reference, "stored secret in Vault");
                Ok(reference)
            }
            Err(failure) if failure.is_cas_mismatch() => Err(Error::internal(format!(
                "a secret already exists at {reference}"
            ))
            .with_hint("connection ids must be unique; delete the old connection first")),
            Err(failure) => Err(self.vault_error(failure, &self.data_path(&path))),
        }
    }

    fn reference_for(&self, location: &SecretLocation) -> Option<SecretRef> {
        let path = self.layout.secret_path(location).ok()?;
        Some(self.layout.reference(&path))
    }

    async fn get_versioned(&self, reference: &SecretRef) -> Result<(RevealedJson, SecretVersion)> {
        let path = self.layout.parse(reference)?;
        let generation = self.cache.generation();
        let read_at = self.clock.now();
        let (value, version) = self.read(reference, path).await?;
        self.cache.insert(&reference.0, &value, read_at, generation);
        Ok((value, SecretVersion(version)))
    }

    async fn update_if_version(
        &self,
        reference: &SecretRef,
        expected: SecretVersion,
        value: &RevealedJson,
    ) -> Result<SecretVersion> {
        let path = self.layout.parse(reference)?;
        // KV v2 treats check-and-set 0 as "must not exist": no read ever returns version 0.
        if expected.0 == 0 {
            return Err(version_conflict(reference, expected));
        }
        let outcome = self.write(path, value, expected.0).await;
        self.cache.invalidate(&reference.0);
        match outcome {
            Ok(version) => {
                tracing::debug!(%reference, version, "updated secret in Vault");
                Ok(SecretVersion(version))
            }
            Err(failure) if failure.is_cas_mismatch() => {
                // A deleted secret also fails the check: it must not come back as a conflict.
                self.read(reference, path).await?;
                Err(version_conflict(reference, expected))
            }
            Err(failure) => Err(self.vault_error(failure, &self.data_path(path))),
        }
    }

    async fn get(&self, reference: &SecretRef) -> Result<RevealedJson> {
        let path = self.layout.parse(reference)?;
        if let Some(value) = self.cache.get(&reference.0) {
            return Ok(value);
        }
        let generation = self.cache.generation();
        let read_at = self.clock.now();
        let (value, _) = self.read(reference, path).await?;
        self.cache.insert(&reference.0, &value, read_at, generation);
        Ok(value)
    }

    async fn get_uncached(&self, reference: &SecretRef) -> Result<RevealedJson> {
        self.get_versioned(reference).await.map(|(value, _)| value)
    }

    async fn delete(&self, reference: &SecretRef) -> Result<()> {
        let path = self.layout.parse(reference)?;
        let outcome = self.delete_path(path).await;
        self.cache.invalidate(&reference.0);
        if outcome.is_ok() {
            tracing::debug!(%reference, "deleted secret and its versions from Vault");
        }
        outcome
    }

    async fn list(&self) -> Result<Vec<SecretRef>> {
        // Every secret lies under the base path, in either layout: walk its folders.
        let mut folders = vec![self.layout.base_path.clone()];
        let mut references = Vec::new();
        while let Some(folder) = folders.pop() {
            for key in self.list_folder(&folder).await? {
                match key.strip_suffix('/') {
                    Some(sub_folder) => folders.push(format!("{folder}/{sub_folder}")),
                    None => references.push(self.layout.reference(&format!("{folder}/{key}"))),
                }
            }
        }
        Ok(references)
    }

    async fn health(&self) -> Result<()> {
        let path = "auth/token/lookup-self";
        let client = self
            .session
            .client()
            .map_err(|failure| self.vault_error(failure, path))?;
        self.session
            .bounded(vaultrs::token::lookup_self(&*client))
            .await
            .map(|_| ())
            .map_err(|failure| self.vault_error(failure, path))
    }

    fn backend(&self) -> &'static str {
        "vault"
    }
}
