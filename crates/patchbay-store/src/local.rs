//! The embedded default [`SecretStore`]: one AES-256-GCM encrypted JSON file.
//!
//! `<data_dir>/secrets.json` maps entry ids to `{"version": n, "sealed":
//! base64(nonce || ciphertext)}`. Each entry is sealed under the [`MasterKey`] with
//! a fresh 96-bit nonce and its own id as associated data, so entries cannot be
//! swapped undetected. The version grows with every write of the entry, for
//! check-and-set updates; files written before versions existed hold the bare
//! sealed string, read as version 1.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use patchbay_core::{Error, ErrorKind, Result, RevealedJson};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::secrets::{version_conflict, SecretLocation, SecretRef, SecretStore, SecretVersion};

/// The environment variable that carries the master key.
pub const MASTER_KEY_ENV: &str = "PATCHBAY_MASTER_KEY";

/// The key file used when [`MASTER_KEY_ENV`] is not set.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The encrypted secrets file inside the data directory.
pub const SECRETS_FILE: &str = "secrets.json";

const SCHEME: &str = "local";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const KEY_FORMAT: &str =
    "must be 32 random bytes, base64-encoded; generate one with `openssl rand -base64 32`";

/// The 256-bit key that encrypts local secrets; zeroised on drop, never printed.
pub struct MasterKey(Zeroizing<[u8; KEY_LEN]>);

/// Where [`MasterKey::resolve`] found the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// From `PATCHBAY_MASTER_KEY`.
    Environment,
    /// From an existing key file.
    File(PathBuf),
    /// Newly generated and written to this file; the operator should back it up.
    Generated(PathBuf),
}

impl MasterKey {
    /// Wraps 32 raw key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh key from the operating system's random source.
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }

    /// Finds the master key: `PATCHBAY_MASTER_KEY` (`env_value`) if set and not
    /// blank, else `<data_dir>/master.key`, else a new key written to that file.
    ///
    /// A blank `env_value` counts as unset, as container tooling often passes
    /// undefined variables through as empty strings.
    pub fn resolve(env_value: Option<&str>, data_dir: &Path) -> Result<(Self, KeySource)> {
        if let Some(value) = env_value.filter(|value| !value.trim().is_empty()) {
            let key = Self::decode(value)
                .ok_or_else(|| Error::invalid_config(MASTER_KEY_ENV, KEY_FORMAT))?;
            return Ok((key, KeySource::Environment));
        }
        let path = data_dir.join(MASTER_KEY_FILE);
        match Self::read_key_file(&path)? {
            Some(key) => Ok((key, KeySource::File(path))),
            None => {
                create_private_dir(data_dir)?;
                Self::write_new_key_file(&path)
            }
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let bytes = Zeroizing::new(BASE64.decode(text.trim()).ok()?);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return None;
        }
        key.copy_from_slice(&bytes);
        Some(Self(key))
    }

    fn encode(&self) -> Zeroizing<String> {
        Zeroizing::new(BASE64.encode(self.0.as_ref()))
    }

    fn read_key_file(path: &Path) -> Result<Option<Self>> {
        let metadata = match fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(key_file_error(path, &error)),
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let path = path.display();
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "master key file {path} is accessible to other users (mode {mode:04o}); \
                     run `chmod 600 {path}`"
                ),
            )
            .with_hint(format!("run `chmod 600 {path}` and restart")));
        }
        let text =
            Zeroizing::new(fs::read_to_string(path).map_err(|error| key_file_error(path, &error))?);
        Self::decode(&text).map(Some).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("master key file {} {KEY_FORMAT}", path.display()),
            )
            .with_hint(format!(
                "restore the key file from backup, or set {MASTER_KEY_ENV}"
            ))
        })
    }

    fn write_new_key_file(path: &Path) -> Result<(Self, KeySource)> {
        let key = Self::generate();
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        let mut file = match created {
            Ok(file) => file,
            // Another process generated the key first: use that one.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                return Self::read_key_file(path)?
                    .map(|key| (key, KeySource::File(path.to_path_buf())))
                    .ok_or_else(|| key_file_error(path, &error));
            }
            Err(error) => return Err(key_file_error(path, &error)),
        };
        let mut line = key.encode();
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.sync_all())
            .and_then(|()| sync_parent(path))
            .map_err(|error| key_file_error(path, &error))?;
        Ok((key, KeySource::Generated(path.to_path_buf())))
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.0.as_ref()))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

fn key_file_error(path: &Path, error: &io::Error) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        format!("cannot use master key file {}: {error}", path.display()),
    )
    .with_hint(format!(
        "make the data directory readable and writable by Patchbay, or set {MASTER_KEY_ENV}"
    ))
}

/// Creates `dir` (and parents) with mode 0700 if it does not exist.
fn create_private_dir(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| {
            Error::unavailable(format!(
                "cannot create data directory {}: {error}",
                dir.display()
            ))
            .with_hint("create it yourself, owned by the Patchbay user, with `chmod 700`")
        })
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

/// Writes `contents` to `path` so that readers see the old or the new file,
/// never a torn one, and the result survives a power cut.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".secrets.json.")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|error| error.error)?;
    File::open(dir)?.sync_all()
}

/// One sealed secret and its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredEntry")]
struct Entry {
    version: u64,
    sealed: String,
}

/// An entry as found in the file: versioned, or a bare sealed string from before versions.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredEntry {
    Versioned { version: u64, sealed: String },
    Unversioned(String),
}

impl From<StoredEntry> for Entry {
    fn from(stored: StoredEntry) -> Self {
        match stored {
            StoredEntry::Versioned { version, sealed } => Self { version, sealed },
            StoredEntry::Unversioned(sealed) => Self { version: 1, sealed },
        }
    }
}

type Entries = BTreeMap<String, Entry>;

/// Secrets encrypted with AES-256-GCM in `<data_dir>/secrets.json`.
///
/// This process must be the only writer of the file: reads are served from
/// the copy loaded at [`LocalSecretStore::open`] and kept in step by writes.
pub struct LocalSecretStore {
    dir: PathBuf,
    path: PathBuf,
    cipher: Aes256Gcm,
    entries: RwLock<Arc<Entries>>,
    writer: tokio::sync::Mutex<()>,
}

impl fmt::Debug for LocalSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSecretStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalSecretStore {
    /// Opens (or starts) the secrets file in `data_dir`, creating the directory
    /// with mode 0700 if it is missing.
    ///
    /// Blocking: call it at startup, before serving requests.
    pub fn open(data_dir: &Path, key: MasterKey) -> Result<Self> {
        let dir = data_dir.to_path_buf();
        let path = dir.join(SECRETS_FILE);
        create_private_dir(&dir)?;
        let entries = load_entries(&path)?;
        Ok(Self {
            dir,
            path,
            cipher: key.cipher(),
            entries: RwLock::new(Arc::new(entries)),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// The secrets file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn snapshot(&self) -> Arc<Entries> {
        Arc::clone(
            &self
                .entries
                .read()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    fn seal(&self, id: &str, value: &RevealedJson) -> Result<String> {
        let plaintext = Zeroizing::new(serde_json::to_vec(value.expose()).map_err(|error| {
            Error::internal(format!("cannot serialise secret for storage: {error}"))
        })?);
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| Error::internal("cannot encrypt secret"))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(BASE64.encode(sealed))
    }

    fn open_entry(&self, reference: &SecretRef, id: &str, sealed: &str) -> Result<RevealedJson> {
        let corrupt = || {
            Error::internal(format!(
                "secret {reference} in {} is corrupt",
                self.path.display()
            ))
            .with_hint("restore secrets.json from backup and reconnect the affected connection")
        };
        let bytes = BASE64.decode(sealed).map_err(|_| corrupt())?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = Zeroizing::new(
            self.cipher
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: id.as_bytes(),
                    },
                )
                .map_err(|_| {
                    Error::internal(format!(
                        "cannot decrypt secret {reference}: the master key does not match the \
                         one it was written with"
                    ))
                    .with_hint(format!(
                        "start Patchbay with the original {MASTER_KEY_ENV} or master.key; if the \
                         key is right, secrets.json was modified outside Patchbay"
                    ))
                })?,
        );
        serde_json::from_slice(&plaintext)
            .map(RevealedJson::new)
            .map_err(|_| corrupt())
    }

    /// Applies `change` to a copy of the entries, persists it, then publishes it.
    async fn write_with<T>(&self, change: impl FnOnce(&mut Entries) -> Result<T>) -> Result<T> {
        let _writer = self.writer.lock().await;
        let mut entries = (*self.snapshot()).clone();
        let outcome = change(&mut entries)?;
        let contents = serde_json::to_vec_pretty(&entries)
            .map_err(|error| Error::internal(format!("cannot serialise secrets file: {error}")))?;
        let path = self.path.clone();
        blocking(move || {
            write_atomically(&path, &contents).map_err(|error| {
                Error::unavailable(format!("cannot write {}: {error}", path.display()))
                    .with_hint("check free disk space and that the data directory is writable")
            })
        })
        .await?;
        *self
            .entries
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(entries);
        Ok(outcome)
    }
}

fn load_entries(path: &Path) -> Result<Entries> {
    let contents = match fs::read(path) {
        Ok(contents) => contents,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Entries::new()),
        Err(error) => {
            return Err(
                Error::unavailable(format!("cannot read {}: {error}", path.display()))
                    .with_hint("make the file readable by the Patchbay user (mode 600)"),
            )
        }
    };
    serde_json::from_slice(&contents).map_err(|error| {
        Error::internal(format!(
            "{} is not a JSON object of encrypted secrets: {error}",
            path.display()
        ))
        .with_hint("restore secrets.json from backup")
    })
}

/// Runs blocking file work off the async executor.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::internal(format!("secret store task failed: {error}")))?
}

/// The entry id of a `local:<id>` reference.
fn entry_id(reference: &SecretRef) -> Result<&str> {
    if reference.scheme() != SCHEME {
        return Err(Error::new(
            ErrorKind::InvalidConfig,
            format!("secret {reference} does not belong to the local secret store"),
        )
        .with_hint(format!(
            "it was written by the `{}` backend; configure Patchbay to use that backend",
            reference.scheme()
        )));
    }
    Ok(reference.path())
}

fn missing(reference: &SecretRef) -> Error {
    Error::not_found(format!("secret {reference} not found"))
        .with_hint("reconnect the connection to store its credentials again")
}

#[async_trait]
impl SecretStore for LocalSecretStore {
    async fn put(&self, location: &SecretLocation, value: &RevealedJson) -> Result<SecretRef> {
        let id = uuid::Uuid::new_v4().to_string();
        let sealed = self.seal(&id, value)?;
        let reference = SecretRef(format!("{SCHEME}:{id}"));
        self.write_with(|entries| {
            entries.insert(id, Entry { version: 1, sealed });
            Ok(())
        })
        .await?;
        tracing::debug!(
            connector = %location.connector,
            connection_id = %location.connection_id,
            reference = %reference,
            "stored secret"
        );
        Ok(reference)
    }

    fn reference_for(&self, _location: &SecretLocation) -> Option<SecretRef> {
        // The file is replaced by an atomic rename: a failed put leaves nothing.
        None
    }

    async fn get_versioned(&self, reference: &SecretRef) -> Result<(RevealedJson, SecretVersion)> {
        let id = entry_id(reference)?;
        let entries = self.snapshot();
        let entry = entries.get(id).ok_or_else(|| missing(reference))?;
        let value = self.open_entry(reference, id, &entry.sealed)?;
        Ok((value, SecretVersion(entry.version)))
    }

    async fn update_if_version(
        &self,
        reference: &SecretRef,
        expected: SecretVersion,
        value: &RevealedJson,
    ) -> Result<SecretVersion> {
        let id = entry_id(reference)?;
        let sealed = self.seal(id, value)?;
        // The check and the write happen under the writer lock, so no write lands between them.
        self.write_with(|entries| match entries.get_mut(id) {
            Some(entry) if entry.version == expected.0 => {
                *entry = Entry {
                    version: entry.version + 1,
                    sealed,
                };
                Ok(SecretVersion(entry.version))
            }
            Some(_) => Err(version_conflict(reference, expected)),
            None => Err(missing(reference)),
        })
        .await
    }

    async fn get(&self, reference: &SecretRef) -> Result<RevealedJson> {
        self.get_versioned(reference).await.map(|(value, _)| value)
    }

    // This store keeps no cache in front of its file: every read is current.
    async fn get_uncached(&self, reference: &SecretRef) -> Result<RevealedJson> {
        self.get(reference).await
    }

    async fn delete(&self, reference: &SecretRef) -> Result<()> {
        let id = entry_id(reference)?;
        if !self.snapshot().contains_key(id) {
            return Ok(());
        }
        self.write_with(|entries| {
            entries.remove(id);
            Ok(())
        })
        .await
    }

    async fn list(&self) -> Result<Vec<SecretRef>> {
        Ok(self
            .snapshot()
            .keys()
            .map(|id| SecretRef(format!("{SCHEME}:{id}")))
            .collect())
    }

    async fn health(&self) -> Result<()> {
        let dir = self.dir.clone();
        blocking(move || {
            tempfile::Builder::new()
                .prefix(".health.")
                .tempfile_in(&dir)
                .map(drop)
                .map_err(|error| {
                    Error::unavailable(format!(
                        "secret store directory {} is not writable: {error}",
                        dir.display()
                    ))
                    .with_hint("check free disk space and the directory's owner and permissions")
                })
        })
        .await
    }

    fn backend(&self) -> &'static str {
        SCHEME
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CANARY: &str = "canary-7f3a9c1e-super-secret";

    fn location() -> SecretLocation {
        let tenant = patchbay_core::Tenant {
            user_id: "user-1".into(),
            org_id: Some("org-1".into()),
        };
        SecretLocation::new(&tenant, "datadog", "conn-1")
    }

    fn secret(api_key: &str) -> RevealedJson {
        RevealedJson::new(json!({ "api_key": api_key, "app_key": "second-value" }))
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn read_file_entries(dir: &Path) -> Entries {
        serde_json::from_slice(&fs::read(dir.join(SECRETS_FILE)).unwrap()).unwrap()
    }

    fn write_file_entries(dir: &Path, entries: &Entries) {
        fs::write(dir.join(SECRETS_FILE), serde_json::to_vec(entries).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn list_names_every_stored_secret() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap();
        assert!(store.list().await.unwrap().is_empty());
        let first = store.put(&location(), &secret("first")).await.unwrap();
        let second = store.put(&location(), &secret("second")).await.unwrap();
        let mut listed = store.list().await.unwrap();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        let mut expected = vec![first.clone(), second];
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(listed, expected);
        store.delete(&first).await.unwrap();
        assert_eq!(store.list().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn round_trip_update_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap();
        let reference = store.put(&location(), &secret(CANARY)).await.unwrap();
        assert_eq!(reference.scheme(), "local");
        assert!(
            uuid::Uuid::parse_str(reference.path()).is_ok(),
            "{reference}"
        );
        assert_eq!(store.get(&reference).await.unwrap(), secret(CANARY));

        let (_, version) = store.get_versioned(&reference).await.unwrap();
        assert_eq!(version, SecretVersion(1));
        let written = store
            .update_if_version(&reference, version, &secret("rotated"))
            .await
            .unwrap();
        assert_eq!(written, SecretVersion(2));
        assert_eq!(store.get(&reference).await.unwrap(), secret("rotated"));

        store.delete(&reference).await.unwrap();
        let error = store.get(&reference).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
        store.delete(&reference).await.unwrap();
    }

    #[tokio::test]
    async fn secrets_survive_reopen_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = [7u8; KEY_LEN];
        let reference = {
            let store = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
            store.put(&location(), &secret(CANARY)).await.unwrap()
        };
        let store = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        assert_eq!(store.get(&reference).await.unwrap(), secret(CANARY));
    }

    #[tokio::test]
    async fn file_holds_no_plaintext() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap();
        let reference = store.put(&location(), &secret(CANARY)).await.unwrap();
        let contents = fs::read_to_string(dir.path().join(SECRETS_FILE)).unwrap();
        assert!(contents.contains(reference.path()), "{contents}");
        assert!(!contents.contains(CANARY));
        assert!(!contents.contains("api_key"));
        assert!(!contents.contains("second-value"));
    }

    #[tokio::test]
    async fn another_key_cannot_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let key = MasterKey::generate();
        let key_text = key.encode();
        let store = LocalSecretStore::open(dir.path(), key).unwrap();
        let reference = store.put(&location(), &secret(CANARY)).await.unwrap();

        let intruder = LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap();
        let error = intruder.get(&reference).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert_eq!(
            error.message(),
            format!(
                "cannot decrypt secret {reference}: the master key does not match the one it \
                 was written with"
            )
        );
        let printed = format!("{error} {error:?} {:?}", error.hint());
        assert!(!printed.contains(key_text.as_str()));
        assert!(!printed.contains(CANARY));
    }

    #[tokio::test]
    async fn tampered_ciphertext_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let key = [9u8; KEY_LEN];
        let store = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        let reference = store.put(&location(), &secret(CANARY)).await.unwrap();

        let mut entries = read_file_entries(dir.path());
        let entry = entries.get_mut(reference.path()).unwrap();
        let mut bytes = BASE64.decode(&entry.sealed).unwrap();
        bytes[NONCE_LEN] ^= 0x01;
        entry.sealed = BASE64.encode(bytes);
        write_file_entries(dir.path(), &entries);

        let reopened = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        let error = reopened.get(&reference).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert!(
            error.message().starts_with("cannot decrypt secret"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn swapped_entries_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let key = [3u8; KEY_LEN];
        let store = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        let first = store.put(&location(), &secret("first-key")).await.unwrap();
        let second = store.put(&location(), &secret("second-key")).await.unwrap();

        let mut entries = read_file_entries(dir.path());
        let first_sealed = entries[first.path()].clone();
        let second_sealed = entries[second.path()].clone();
        entries.insert(first.path().to_owned(), second_sealed);
        entries.insert(second.path().to_owned(), first_sealed);
        write_file_entries(dir.path(), &entries);

        let reopened = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        for reference in [&first, &second] {
            let error = reopened.get(reference).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Internal, "{reference}");
        }
    }

    #[tokio::test]
    async fn files_and_directory_are_private() {
        let root = tempfile::tempdir().unwrap();
        let data_dir = root.path().join("data");
        let (key, source) = MasterKey::resolve(None, &data_dir).unwrap();
        assert_eq!(source, KeySource::Generated(data_dir.join(MASTER_KEY_FILE)));
        let store = LocalSecretStore::open(&data_dir, key).unwrap();
        store.put(&location(), &secret(CANARY)).await.unwrap();

        assert_eq!(mode(&data_dir), 0o700);
        assert_eq!(mode(&data_dir.join(MASTER_KEY_FILE)), 0o600);
        assert_eq!(mode(&data_dir.join(SECRETS_FILE)), 0o600);
        let leftovers: Vec<_> = fs::read_dir(&data_dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .filter(|name| name != MASTER_KEY_FILE && name != SECRETS_FILE)
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn generated_key_is_reused_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (key, source) = MasterKey::resolve(None, dir.path()).unwrap();
        let key_path = dir.path().join(MASTER_KEY_FILE);
        assert_eq!(source, KeySource::Generated(key_path.clone()));
        let reference = LocalSecretStore::open(dir.path(), key)
            .unwrap()
            .put(&location(), &secret(CANARY))
            .await
            .unwrap();

        let (key, source) = MasterKey::resolve(Some(""), dir.path()).unwrap();
        assert_eq!(source, KeySource::File(key_path));
        let store = LocalSecretStore::open(dir.path(), key).unwrap();
        assert_eq!(store.get(&reference).await.unwrap(), secret(CANARY));
    }

    #[test]
    fn environment_key_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let encoded = BASE64.encode([5u8; KEY_LEN]);
        let (key, source) = MasterKey::resolve(Some(&format!(" {encoded}\n")), dir.path()).unwrap();
        assert_eq!(source, KeySource::Environment);
        assert_eq!(key.0.as_ref(), &[5u8; KEY_LEN]);
        assert!(!dir.path().join(MASTER_KEY_FILE).exists());
    }

    #[test]
    fn bad_environment_key_names_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        for value in [
            "not base64!",
            &BASE64.encode([1u8; 16]),
            &BASE64.encode([1u8; 33]),
        ] {
            let error = MasterKey::resolve(Some(value), dir.path()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{value}");
            assert_eq!(error.field(), Some("PATCHBAY_MASTER_KEY"));
            assert!(error.to_string().contains("PATCHBAY_MASTER_KEY"), "{error}");
            assert!(
                error.message().contains("openssl rand -base64 32"),
                "{error}"
            );
        }
    }

    #[test]
    fn key_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        fs::write(&path, BASE64.encode([2u8; KEY_LEN])).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let error = MasterKey::resolve(None, dir.path()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert!(error.message().contains("chmod 600"), "{error}");

        fs::set_permissions(&path, Permissions::from_mode(0o400)).unwrap();
        let (key, source) = MasterKey::resolve(None, dir.path()).unwrap();
        assert_eq!(source, KeySource::File(path));
        assert_eq!(key.0.as_ref(), &[2u8; KEY_LEN]);
    }

    #[test]
    fn malformed_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MASTER_KEY_FILE);
        fs::write(&path, "too-short").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o600)).unwrap();
        let error = MasterKey::resolve(None, dir.path()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert!(error.message().contains("32 random bytes"), "{error}");
    }

    #[test]
    fn master_key_debug_is_redacted() {
        let key = MasterKey::from_bytes([0xAB; KEY_LEN]);
        let printed = format!("{key:?}");
        assert_eq!(printed, "MasterKey([redacted])");
        assert!(!printed.contains(key.encode().as_str()));
    }

    #[tokio::test]
    async fn delete_removes_the_entry_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap();
        let kept = store.put(&location(), &secret("kept")).await.unwrap();
        let deleted = store.put(&location(), &secret(CANARY)).await.unwrap();
        assert_eq!(read_file_entries(dir.path()).len(), 2);

        store.delete(&deleted).await.unwrap();
        let entries = read_file_entries(dir.path());
        assert!(!entries.contains_key(deleted.path()));
        assert!(entries.contains_key(kept.path()));
        assert_eq!(store.get(&kept).await.unwrap(), secret("kept"));
    }

    #[tokio::test]
    async fn update_of_a_missing_secret_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap();
        let reference = SecretRef(format!("local:{}", uuid::Uuid::new_v4()));
        let error = store
            .update_if_version(&reference, SecretVersion(1), &secret(CANARY))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
        let error = crate::secrets::modify(&store, &reference, |latest| Ok(latest.clone()))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert!(!dir.path().join(SECRETS_FILE).exists());
    }

    #[tokio::test]
    async fn a_writer_holding_a_stale_read_gets_a_conflict_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let key = [6u8; KEY_LEN];
        let store = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        let reference = store.put(&location(), &secret("r0")).await.unwrap();
        let (_, first_read) = store.get_versioned(&reference).await.unwrap();
        let (_, second_read) = store.get_versioned(&reference).await.unwrap();
        assert_eq!(first_read, second_read);

        store
            .update_if_version(&reference, first_read, &secret("r1"))
            .await
            .unwrap();
        let error = store
            .update_if_version(&reference, second_read, &secret("stale"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Conflict);
        assert_eq!(
            error.message(),
            format!("secret {reference} changed since version 1 was read")
        );
        assert_eq!(store.get(&reference).await.unwrap(), secret("r1"));

        // The version survives a restart, so a stale writer is caught after one too.
        drop(store);
        let reopened = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        let (value, version) = reopened.get_versioned(&reference).await.unwrap();
        assert_eq!((value, version), (secret("r1"), SecretVersion(2)));
        let error = reopened
            .update_if_version(&reference, second_read, &secret("stale"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Conflict);
    }

    #[tokio::test]
    async fn concurrent_modifications_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap());
        let reference = store
            .put(&location(), &RevealedJson::new(json!({ "counter": 0 })))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                let reference = reference.clone();
                tokio::spawn(async move {
                    crate::secrets::modify(&*store, &reference, |latest| {
                        let counter = latest.expose()["counter"].as_u64().unwrap();
                        Ok(RevealedJson::new(json!({ "counter": counter + 1 })))
                    })
                    .await
                    .unwrap()
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let (value, version) = store.get_versioned(&reference).await.unwrap();
        assert_eq!(value, RevealedJson::new(json!({ "counter": 4 })));
        assert_eq!(version, SecretVersion(5));
    }

    #[tokio::test]
    async fn files_from_before_versions_read_as_version_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = [4u8; KEY_LEN];
        let reference = {
            let store = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
            store.put(&location(), &secret(CANARY)).await.unwrap()
        };
        let unversioned: BTreeMap<String, String> = read_file_entries(dir.path())
            .into_iter()
            .map(|(id, entry)| (id, entry.sealed))
            .collect();
        fs::write(
            dir.path().join(SECRETS_FILE),
            serde_json::to_vec(&unversioned).unwrap(),
        )
        .unwrap();

        let store = LocalSecretStore::open(dir.path(), MasterKey::from_bytes(key)).unwrap();
        let (value, version) = store.get_versioned(&reference).await.unwrap();
        assert_eq!((value, version), (secret(CANARY), SecretVersion(1)));
        store
            .update_if_version(&reference, version, &secret("rotated"))
            .await
            .unwrap();
        let entry = &read_file_entries(dir.path())[reference.path()];
        assert_eq!(entry.version, 2);
    }

    #[tokio::test]
    async fn foreign_references_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap();
        let error = store
            .get(&SecretRef("vault:secret/patchbay/conn-1".into()))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert!(error.hint().unwrap().contains("vault"));
    }

    #[tokio::test]
    async fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap());
        let tasks: Vec<_> = (0..20)
            .map(|index| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .put(&location(), &secret(&format!("key-{index}")))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut references = Vec::new();
        for task in tasks {
            references.push(task.await.unwrap());
        }
        assert_eq!(read_file_entries(dir.path()).len(), 20);
        for (index, reference) in references.iter().enumerate() {
            let value = store.get(reference).await.unwrap();
            assert_eq!(value, secret(&format!("key-{index}")));
        }
    }

    #[tokio::test]
    async fn health_fails_when_the_directory_is_gone() {
        let root = tempfile::tempdir().unwrap();
        let data_dir = root.path().join("data");
        let store = LocalSecretStore::open(&data_dir, MasterKey::generate()).unwrap();
        store.health().await.unwrap();
        assert_eq!(store.backend(), "local");

        fs::remove_dir_all(&data_dir).unwrap();
        let error = store.health().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert!(error.message().contains("not writable"), "{error}");
    }
}
