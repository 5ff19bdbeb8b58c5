//! Picks the [`RecordStore`] backend from `DATABASE_URL`.

use std::sync::Arc;

use patchbay_core::{Error, Result};

use crate::postgres::PostgresRecordStore;
use crate::records::RecordStore;
use crate::sqlite::SqliteRecordStore;

const ACCEPTED_FORMS: &str = "use `sqlite://<path>?mode=rwc`, a plain file path, \
     or `postgres://user:password@host:5432/database` (also `postgresql://`)";

/// Opens the records database named by `url`: `sqlite:` URLs and plain file paths open
/// SQLite, `postgres://` and `postgresql://` URLs open PostgreSQL.
pub async fn open_record_store(url: &str) -> Result<Arc<dyn RecordStore>> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Arc::new(PostgresRecordStore::open(url).await?));
    }
    if url.starts_with("sqlite:") || (!url.is_empty() && !url.contains("://")) {
        return Ok(Arc::new(SqliteRecordStore::open(url).await?));
    }
    // Only the scheme is named: the rest of the URL may carry a password.
    let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
    let message = if scheme.is_empty() {
        "DATABASE_URL is empty".to_owned()
    } else {
        format!("unsupported records database `{scheme}://` in DATABASE_URL")
    };
    Err(Error::invalid_config("DATABASE_URL", message).with_hint(ACCEPTED_FORMS))
}

#[cfg(test)]
mod tests {
    use patchbay_core::ErrorKind;

    use super::*;

    async fn open_failure(url: &str) -> Error {
        match open_record_store(url).await {
            Ok(_) => panic!("the records database opened unexpectedly"),
            Err(error) => error,
        }
    }

    #[tokio::test]
    async fn sqlite_urls_and_plain_paths_open_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.db");
        open_record_store(plain.to_str().unwrap())
            .await
            .unwrap()
            .health()
            .await
            .unwrap();
        assert!(plain.exists());

        let url = format!("sqlite://{}?mode=rwc", dir.path().join("url.db").display());
        open_record_store(&url)
            .await
            .unwrap()
            .health()
            .await
            .unwrap();
        assert!(dir.path().join("url.db").exists());
    }

    #[tokio::test]
    async fn postgres_urls_reach_the_postgres_backend() {
        for scheme in ["postgres", "postgresql"] {
            let error = open_failure(&format!(
                "{scheme}://patchbay:pw-canary@127.0.0.1:notaport/db"
            ))
            .await;
            assert_eq!(error.kind(), ErrorKind::InvalidConfig);
            assert_eq!(error.field(), Some("DATABASE_URL"));
            assert!(
                error
                    .message()
                    .starts_with("invalid PostgreSQL database URL"),
                "{error}"
            );
            assert!(!format!("{error:?}").contains("pw-canary"));
        }
    }

    #[tokio::test]
    async fn other_schemes_are_refused_with_the_accepted_forms() {
        let error = open_failure("mysql://root:pw-canary@db.internal/patchbay").await;
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("DATABASE_URL"));
        assert_eq!(
            error.message(),
            "unsupported records database `mysql://` in DATABASE_URL"
        );
        let hint = error.hint().unwrap();
        assert!(
            hint.contains("sqlite://") && hint.contains("postgres://"),
            "{hint}"
        );
        assert!(!format!("{error:?}").contains("pw-canary"));

        let error = open_failure("  ").await;
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("DATABASE_URL"));
    }
}
