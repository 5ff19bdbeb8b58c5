//! Moving secrets from the layout that filed organisations and users in one folder
//! (`<base>/<tenant id>/…`) to the one that keeps them apart (`<base>/<orgs|users>/…`).
//!
//! Each secret is copied to its new path, the record is pointed at the copy (keeping
//! the old reference as retired), and only then is the old secret deleted and the
//! retired reference forgotten. Every step can be repeated, so an interrupted run is
//! finished by the next one: a copy is overwritten, a moved record is not listed
//! again, and a retired reference still recorded is deleted.

use patchbay_core::{ErrorKind, Result};

use super::VaultSecretStore;
use crate::records::{ConnectionRecord, RecordStore};
use crate::secrets::SecretLocation;

/// How often a copy is retried while something keeps writing the old secret.
const COPY_ATTEMPTS: usize = 5;

/// What [`VaultSecretStore::migrate_legacy_layout`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayoutMigration {
    /// Secrets moved to the new layout.
    pub moved: usize,
    /// Connections left as they were: their old secret was missing (they need
    /// reconnecting), or they were disconnected while being moved.
    pub missing: usize,
    /// Old secrets of earlier, interrupted runs deleted now.
    pub cleaned_up: usize,
}

impl VaultSecretStore {
    /// Moves every secret `records` still references in the earlier layout to the
    /// current one. Safe to run at every start, on several replicas at once, and after
    /// an interruption; replicas still running an older Patchbay cannot read moved
    /// secrets, so upgrade them together.
    pub async fn migrate_legacy_layout(
        &self,
        records: &dyn RecordStore,
    ) -> Result<LayoutMigration> {
        let mut outcome = LayoutMigration {
            cleaned_up: self.delete_retired(records).await?,
            ..LayoutMigration::default()
        };
        let prefix = format!(
            "{}:{}/{}/",
            super::SCHEME,
            self.layout.mount,
            self.layout.base_path
        );
        for record in records.connections_with_secret_prefix(&prefix).await? {
            if self.layout.parse_legacy(&record.secret_ref).is_none() {
                continue;
            }
            if self.move_secret(records, &record).await? {
                outcome.moved += 1;
            } else {
                outcome.missing += 1;
            }
        }
        if outcome != LayoutMigration::default() {
            tracing::info!(
                moved = outcome.moved,
                missing = outcome.missing,
                cleaned_up = outcome.cleaned_up,
                "moved Vault secrets to the orgs/ and users/ layout"
            );
        }
        Ok(outcome)
    }

    /// Moves one connection's secret; false when the old secret is missing or the
    /// connection was disconnected meanwhile.
    async fn move_secret(
        &self,
        records: &dyn RecordStore,
        record: &ConnectionRecord,
    ) -> Result<bool> {
        let old_ref = &record.secret_ref;
        let Some(old_path) = self.layout.parse_legacy(old_ref) else {
            return Ok(false);
        };
        let location = SecretLocation::new(&record.tenant, &record.connector, &record.id);
        let new_path = self.layout.secret_path(&location)?;
        let new_ref = self.layout.reference(&new_path);

        let mut copied = false;
        for _ in 0..COPY_ATTEMPTS {
            let (value, version) = match self.read(old_ref, old_path).await {
                Ok(read) => read,
                Err(error) if error.kind() == ErrorKind::NotFound => {
                    tracing::warn!(connection = %record.id, reference = %old_ref, "the secret of a connection is missing from Vault; reconnect the connection");
                    return Ok(false);
                }
                Err(error) => return Err(error),
            };
            let current = match self.read(&new_ref, &new_path).await {
                Ok((_, version)) => version,
                Err(error) if error.kind() == ErrorKind::NotFound => 0,
                Err(error) => return Err(error),
            };
            match self.write(&new_path, &value, current).await {
                Ok(_) => {}
                // Another replica is copying the same secret: read both again.
                Err(failure) if failure.is_cas_mismatch() => continue,
                Err(failure) => return Err(self.vault_error(failure, &self.data_path(&new_path))),
            }
            // A token refreshed meanwhile at the old path must not be left behind.
            if self.read(old_ref, old_path).await?.1 == version {
                copied = true;
                break;
            }
        }
        self.cache.invalidate(&new_ref.0);
        if !copied {
            return Err(patchbay_core::Error::unavailable(format!(
                "secret {old_ref} kept changing while it was being moved to {new_ref}"
            ))
            .with_hint("restart Patchbay once other replicas stop writing it; the move resumes"));
        }

        if records
            .move_secret_ref(&record.id, old_ref, &new_ref)
            .await?
        {
            self.delete_path(old_path).await?;
            self.cache.invalidate(&old_ref.0);
            records
                .forget_retired_secret_ref(&record.id, old_ref)
                .await?;
            return Ok(true);
        }
        // The record changed meanwhile: another replica moved it, or it was disconnected.
        let still_used = records
            .connections_with_secret_prefix(&new_ref.0)
            .await?
            .iter()
            .any(|other| other.secret_ref == new_ref);
        if !still_used {
            self.delete_path(&new_path).await?;
        }
        Ok(still_used)
    }

    /// Deletes the old secrets that interrupted runs moved but did not delete.
    async fn delete_retired(&self, records: &dyn RecordStore) -> Result<usize> {
        let mut deleted = 0;
        for (id, reference) in records.retired_secret_refs().await? {
            if let Some(path) = self.layout.parse_legacy(&reference) {
                self.delete_path(path).await?;
                self.cache.invalidate(&reference.0);
                deleted += 1;
            }
            records.forget_retired_secret_ref(&id, &reference).await?;
        }
        Ok(deleted)
    }
}
