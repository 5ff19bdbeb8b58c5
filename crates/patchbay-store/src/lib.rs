//! Patchbay storage.
//!
//! Three stores, each a trait so backends can be swapped without touching the host:
//! [`SecretStore`] keeps credentials (the embedded default is an AES-256-GCM
//! encrypted file), [`RecordStore`] keeps connection records, API keys and
//! alerts (the embedded default is SQLite). Records hold only a [`SecretRef`],
//! never a secret.
#![deny(missing_docs)]

pub mod ingest;
pub mod local;
pub mod records;
pub mod secrets;
pub mod sqlite;

pub use ingest::AlertIngestor;
pub use local::LocalSecretStore;
pub use records::{
    AlertPage, ApiKeyRecord, ConnectionRecord, ConnectionStatus, NewAlert, RecordStore,
    StoredAlert,
};
pub use secrets::{SecretLocation, SecretRef, SecretStore};
pub use sqlite::SqliteRecordStore;
